"""The integer byte network (scheme ``cm6``): one GRU step in integer arithmetic, numpy reference.

Why integers: a payload decodes only if the decoder sees exactly the network outputs the encoder saw.
Float32 GEMMs and ``exp``/``tanh`` differ in the last bits between SIMD paths (SSE, AVX2, AVX-512, NEON)
and ONNX Runtime builds; the old float network decodes only on a CPU with the same float behaviour.
Every operation here has one exact result on any machine: int8 weights, uint8 activations, int32
accumulation, rescaling by an integer multiply, an added constant (the bias and the rounding half) and
an arithmetic right shift, and gate nonlinearities read from integer tables stored in the model.

This module is the *reference*: the shipped model is an ONNX graph of the same step
(``tools/lm/export_int_onnx.py``) run by ONNX Runtime, and the tests check the two agree bit for bit.

Number formats (all stored in the model, see :class:`IntParams`):

* hidden state ``h``: int32, Q15 (``h / 32768`` is the float hidden value), always within +-32768;
* matmul operand: ``clip((h + 128) >> 8, -127, 127) + 128`` as uint8 (zero point 128), i.e. 1..255;
* weights: int8 in [-64, 63], one real scale per output row, so a pair of products in ONNX Runtime's
  AVX2 u8 x s8 kernel (``vpmaddubsw``, int16 with saturation) is at most 2 * 255 * 64 = 32640 < 32767
  (:func:`pair_sum_bound`);
* gate pre-activations: int64 in units of 2^-GATE_BITS, from ``(acc * mult[row] + const[row]) >> SHIFT``;
* gates: ``sigmoid``/``tanh`` tables of ``LUT_SIZE`` Q15 entries indexed by the clipped pre-activation;
* output: integer logits in 1/16 nats (the mixer's own quantisation, :data:`LOGIT_SCALE`), and the mixer's
  hidden input ``(h + 256) >> 9`` (the mixer's 1/64 units).

Rounding is always "add half, then shift right arithmetically" (floor), which numpy's ``>>`` on int64 is.
The matrix products are taken in float64: every operand and partial sum is an integer below 2^53, so
the result is exact whatever the summation order, and BLAS makes the reference fast enough to evaluate.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Pre-activations are in units of 2^-GATE_BITS; the tables cover [-LUT_HALF, LUT_HALF) of those units.
GATE_BITS = 8
LUT_HALF = 2048
LUT_SIZE = 2 * LUT_HALF
#: Gate values and the hidden state are Q15.
ONE = 1 << 15
#: Right shift of every rescale: ``(acc * mult + const) >> SHIFT``.
SHIFT = 24
#: Weight range: int8 within [W_MIN, W_MAX]; activations uint8 within [A_MIN, A_MAX] (zero point 128).
W_MIN, W_MAX = -64, 63
A_ZERO, A_MIN, A_MAX = 128, 1, 255
#: Logits come out in 1/LOGIT_SCALE nats (the mixer's quantisation of float logits, mixer_step.code_step).
LOGIT_SCALE = 16
#: The mixer reads the hidden state in 1/HID_SCALE units, clipped to +-127 (mixer_step.code_step).
HID_SCALE = 64


def pair_sum_bound() -> int:
    """Largest |a1*w1 + a2*w2| an u8 x s8 kernel can form from two adjacent products (must fit int16)."""
    return 2 * max(abs(A_MIN), abs(A_MAX)) * max(abs(W_MIN), abs(W_MAX))


@dataclass
class IntParams:
    """Every integer of the network. Gate order in each [.., 3H] array: reset r, update z, candidate n.

    ``emb`` is layer 0's whole input side (embedding times input weights plus biases) as one table per
    input byte, in gate units: a lookup is exact and cheaper than a product. For layer l: ``w_hh[l]``
    [H, 3H] int8 with ``m_hh``/``c_hh`` [3H] (multiplier, constant = bias + half, both int64); layers
    above 0 also ``w_ih[l]`` etc. for their input (the layer below's new state). ``w_out`` [H, 256].
    """

    emb: np.ndarray
    w_hh: list[np.ndarray]
    m_hh: list[np.ndarray]
    c_hh: list[np.ndarray]
    w_ih: list[np.ndarray]  # w_ih[0] is an empty placeholder (layer 0 uses emb)
    m_ih: list[np.ndarray]
    c_ih: list[np.ndarray]
    w_out: np.ndarray
    m_out: np.ndarray
    c_out: np.ndarray
    sig: np.ndarray
    tanh: np.ndarray

    @property
    def layers(self) -> int:
        return len(self.w_hh)

    @property
    def hidden(self) -> int:
        return int(self.w_hh[0].shape[0])

    def same_integers(self, other: "IntParams") -> bool:
        """Every integer equal (dtypes aside): two graphs of one network compute the same step."""
        pairs = [(self.emb, other.emb), (self.w_out, other.w_out), (self.m_out, other.m_out),
                 (self.c_out, other.c_out), (self.sig, other.sig), (self.tanh, other.tanh)]
        for name in ("w_hh", "m_hh", "c_hh", "w_ih", "m_ih", "c_ih"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if len(mine) != len(theirs):
                return False
            pairs += list(zip(mine, theirs))
        return all(a.shape == b.shape and np.array_equal(a.astype(np.int64), b.astype(np.int64)) for a, b in pairs)

    def check(self) -> None:
        """Refuse parameters outside the ranges the saturation bound assumes."""
        for w in [*self.w_hh, *self.w_ih[1:], self.w_out]:
            if w.dtype != np.int8 or w.min(initial=0) < W_MIN or w.max(initial=0) > W_MAX:
                raise ValueError("integer network: a weight is outside [-64, 63]")
        if self.sig.shape != (LUT_SIZE,) or self.tanh.shape != (LUT_SIZE,):
            raise ValueError("integer network: gate tables have the wrong size")


#: Names of the ONNX initializers that hold :class:`IntParams` (the export and :func:`load_onnx` share them).
def onnx_names(layers: int) -> dict[str, str]:
    names = {"emb": "emb_table", "w_out": "w_out", "m_out": "m_out", "c_out": "c_out", "sig": "lut_sigmoid",
             "tanh": "lut_tanh"}
    for layer in range(layers):
        for kind in ("hh", "ih"):
            if kind == "ih" and layer == 0:
                continue
            for part in ("w", "m", "c"):
                names[f"{part}_{kind}{layer}"] = f"{part}_{kind}{layer}"
    return names


def load_onnx(path: Path) -> IntParams:
    """The integers of a shipped integer ONNX model (needs the ``onnx`` package: tools and tests only).

    Graph 1 (``tools/lm/export_int_onnx.py``) stores them as they are, its ``c_*`` plus a lift; graph 2
    (``export_int_onnx_g2.py``, model property ``lmar.intnet.graph`` = "2") stacks the recurrent
    weights, rotates the tables and folds constants, which this undoes.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    props = {p.key: p.value for p in model.metadata_props}
    if props.get("lmar.intnet.graph") == "2":
        return _unfold_graph2(init)
    # The graph's c_* hold the constant plus the lift of its floor division (a multiple of 2^SHIFT).
    lift = int(props.get("lmar.intnet.lift", "0"))
    for k in [k for k in init if k.startswith("c_")]:
        init[k] = init[k] - lift
    layers = sum(1 for k in init if k.startswith("w_hh"))
    get = init.__getitem__
    p = IntParams(
        emb=get("emb_table"),
        w_hh=[get(f"w_hh{i}") for i in range(layers)], m_hh=[get(f"m_hh{i}") for i in range(layers)],
        c_hh=[get(f"c_hh{i}") for i in range(layers)],
        w_ih=[np.zeros((0, 0), np.int8)] + [get(f"w_ih{i}") for i in range(1, layers)],
        m_ih=[np.zeros(0, np.int64)] + [get(f"m_ih{i}") for i in range(1, layers)],
        c_ih=[np.zeros(0, np.int64)] + [get(f"c_ih{i}") for i in range(1, layers)],
        w_out=get("w_out"), m_out=get("m_out"), c_out=get("c_out"),
        sig=get("lut_sigmoid").reshape(-1), tanh=get("lut_tanh").reshape(-1))
    p.check()
    return p


def _unfold_graph2(init: dict[str, np.ndarray]) -> IntParams:
    """Graph 2's constants back to :class:`IntParams` (the inverse of ``export_int_onnx_g2.fold``)."""
    def signed(a: np.ndarray) -> np.ndarray:  # uint64 constants hold int64 values modulo 2^64
        return a.astype(np.uint64).view(np.int64).reshape(a.shape)

    w_hh = init["w_hh"]
    layers, hidden = int(w_hh.shape[0]), int(w_hh.shape[1])
    emb = init["emb_table"].astype(np.int32).copy()
    emb[:, 2 * hidden:] += ONE
    c_ih = [np.zeros(0, np.int64)]
    for layer in range(1, layers):
        c = signed(init[f"c_ih{layer}"]).copy()
        c[2 * hidden:] += ONE << SHIFT
        c_ih.append(c)
    p = IntParams(
        emb=emb, w_hh=list(w_hh), m_hh=list(signed(init["m_hh"])[:, 0, :]), c_hh=list(signed(init["c_hh"])[:, 0, :]),
        w_ih=[np.zeros((0, 0), np.int8)] + [init[f"w_ih{i}"] for i in range(1, layers)],
        m_ih=[np.zeros(0, np.int64)] + [signed(init[f"m_ih{i}"]) for i in range(1, layers)],
        c_ih=c_ih, w_out=init["w_out"], m_out=signed(init["m_out"]), c_out=signed(init["c_out"]),
        sig=np.roll(init["lut_sigmoid_rot"].reshape(-1), LUT_HALF), tanh=np.roll(init["lut_tanh_rot"].reshape(-1), LUT_HALF))
    p.check()
    return p


def operand(h: np.ndarray) -> np.ndarray:
    """The uint8 matmul operand of a Q15 state: 1/128 units, clipped to +-127, plus the zero point."""
    return (np.clip((h.astype(np.int64) + 128) >> 8, -127, 127) + A_ZERO).astype(np.uint8)


def _matmul(a_u8: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sum_k (a - 128) * w exactly (float64 holds every partial sum: |sum| < 2^53)."""
    a = a_u8.astype(np.float64) - A_ZERO
    return (a @ w.astype(np.float64)).astype(np.int64)


def _rescale(acc: np.ndarray, mult: np.ndarray, const: np.ndarray) -> np.ndarray:
    return (acc * mult + const) >> SHIFT


def _lut(table: np.ndarray, pre: np.ndarray) -> np.ndarray:
    return table[np.clip(pre, -LUT_HALF, LUT_HALF - 1) + LUT_HALF].astype(np.int64)


def _cell(xi: np.ndarray, gh: np.ndarray, h: np.ndarray, p: IntParams) -> np.ndarray:
    """GRU cell on gate-unit pre-activations: xi (input side) and gh (recurrent side), each [B, 3H]."""
    H = h.shape[1]
    r = _lut(p.sig, xi[:, :H] + gh[:, :H])
    z = _lut(p.sig, xi[:, H:2 * H] + gh[:, H:2 * H])
    n = _lut(p.tanh, xi[:, 2 * H:] + ((r * gh[:, 2 * H:] + (1 << 14)) >> 15))
    return h + (((ONE - z) * (n - h) + (1 << 14)) >> 15)


def step(p: IntParams, byte: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One step: (byte int64 [B], state int32 [L, B, H]) -> (logits int32 [B, 256] in 1/16 nats, state)."""
    hs = state.astype(np.int64)
    out = np.empty_like(hs)
    x = p.emb[byte].astype(np.int64)
    for layer in range(p.layers):
        h = hs[layer]
        if layer:
            x = _rescale(_matmul(operand(out[layer - 1]), p.w_ih[layer]), p.m_ih[layer], p.c_ih[layer])
        gh = _rescale(_matmul(operand(h), p.w_hh[layer]), p.m_hh[layer], p.c_hh[layer])
        out[layer] = _cell(x, gh, h, p)
    logits = _rescale(_matmul(operand(out[-1]), p.w_out), p.m_out, p.c_out)
    return logits.astype(np.int32), out.astype(np.int32)


def hidden_units(hid: np.ndarray) -> np.ndarray:
    """What the mixer makes of a hidden input value: ``floor(v * 64 + 0.5)`` (:func:`.mixer_step.code_step`).

    Graph 1 hands it ``k / 64`` with k = (h + 256) >> 9, graph 2 ``h / 2^15``; both read back k."""
    return np.floor(hid.astype(np.float64) * HID_SCALE + 0.5).astype(np.int64)


def mixer_inputs(logits: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float32 arrays the mixer reads, holding exact integers' values.

    The mixer rounds ``logit * 16`` and ``hidden * 64`` to integers (:func:`.mixer_step.code_step`);
    handing it ``q / 16`` and ``k / 64`` (exact in float32 for |q|, |k| < 2^24) makes it read back q and k exactly.
    """
    lg = logits.astype(np.float32) / np.float32(LOGIT_SCALE)
    top = state[-1].astype(np.int64)
    hid = ((top + 256) >> 9).astype(np.float32) / np.float32(HID_SCALE)
    return np.ascontiguousarray(lg), np.ascontiguousarray(hid)
