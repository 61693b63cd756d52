"""Export the integer byte network (``intnet``) as the one-step ONNX graph of scheme ``cm6``.

Contract (what ``runtime.IntStepModel`` drives):
  file ``plugins/models/<name>.onnx``, opset 17, one step per call, batch B dynamic;
  inputs  ``byte`` int64 [B] (0..255, 256 = start of segment), ``state`` int32 [L, B, H] (Q15, zeros at start);
  outputs ``logits`` int32 [B, 256] (1/16 nats), ``state_out`` int32 [L, B, H].
Only integer operators: Gather (the layer-0 input table, the gate tables), MatMulInteger (uint8 operand
with zero point 128 x int8 weights in [-64, 63]), Cast, Add, Sub, Mul, BitShift of unsigned values (a
floor shift: a signed value is first lifted to non-negative by a multiple of 2^bits), Clip, Split,
Squeeze, Concat; int32 except the accumulator rescale (int64). An earlier int64 cell cost 21-27 % more
CPU per step (same integers). The graph is checked against the numpy reference (``intnet.step``) with onnxruntime on random
states and real text before it is written; a shipped file is never replaced (members record its hash).

    .venv/bin/python tools/lm/export_int_onnx.py --params work-data/v3i.npz --name bytegru-v3i \
        --card-extra work-data/v3i-card.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quantize_int import load_params  # noqa: E402

from lmar.plugins.lmcore import intnet  # noqa: E402
from lmar.plugins.lmcore.intnet import A_ZERO, LUT_HALF, SHIFT, IntParams  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "plugins" / "models"
OPSET = 17
#: Lift before a floor division: a multiple of every divisor used, far above any |value| (< 2^47).
LIFT = 1 << 54


class _Graph:
    """A tiny builder: every helper returns the name of its output."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.h, self.nh = helper, numpy_helper
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def const(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(self.nh.from_array(np.asarray(arr), name))
        return name

    def scalar(self, value: int, dtype=np.int64) -> str:
        self._n += 1
        return self.const(f"k{self._n}", np.array(value, dtype=dtype))

    def op(self, kind: str, *inputs: str, **attrs) -> str:
        self._n += 1
        out = f"{kind.lower()}{self._n}"
        self.nodes.append(self.h.make_node(kind, list(inputs), [out], **attrs))
        return out

    def ops(self, kind: str, inputs: list[str], n_out: int, **attrs) -> list[str]:
        self._n += 1
        outs = [f"{kind.lower()}{self._n}_{i}" for i in range(n_out)]
        self.nodes.append(self.h.make_node(kind, inputs, outs, **attrs))
        return outs

    def cast(self, x: str, to: int) -> str:
        return self.op("Cast", x, to=to)


def build(p: IntParams, name: str):
    """The step graph. int32 everywhere but the accumulator rescale (int64: acc * mult needs ~43 bits);
    :func:`check_bounds` proves every int32 intermediate fits. A signed floor shift lifts the value to
    non-negative, shifts it as unsigned and takes the lift back off; the state update's product may use
    all of int32, so there the lift is the unsigned wrap of Cast int32 -> uint32 plus 2^31 (modular
    arithmetic, defined in C++ and the same on every CPU)."""
    from onnx import TensorProto, helper

    g = _Graph()
    I64, I32, U8, U32, U64 = (TensorProto.INT64, TensorProto.INT32, TensorProto.UINT8, TensorProto.UINT32,
                              TensorProto.UINT64)
    L, H = p.layers, p.hidden
    emb = g.const("emb_table", p.emb.astype(np.int32))
    sig = g.const("lut_sigmoid", p.sig.astype(np.int32))
    tanh = g.const("lut_tanh", p.tanh.astype(np.int32))
    zp = g.const("a_zero_point", np.array(A_ZERO, dtype=np.uint8))
    split2 = g.const("split2", np.array([2 * H, H], dtype=np.int64))
    split11 = g.const("split11", np.array([H, H], dtype=np.int64))

    def i32(v: int) -> str:
        return g.scalar(v, np.int32)

    def shr_u32(x: str, bits: int) -> str:
        """x >> bits of a uint32 tensor, as int32 (the result is below 2^31)."""
        return g.cast(g.op("BitShift", x, g.scalar(bits, np.uint32), direction="RIGHT"), I32)

    def operand(h: str) -> str:
        """uint8 clip((h + 128) >> 8, -127, 127) + 128, as intnet.operand, for a state within +-32768
        (what the cell produces): (h + 128 + 128 * 256) >> 8 is non-negative and holds the zero point."""
        q = shr_u32(g.cast(g.op("Add", h, i32(128 + A_ZERO * 256)), U32), 8)
        return g.cast(g.op("Clip", q, i32(A_ZERO - 127), i32(A_ZERO + 127)), U8)

    def linear(a_u8: str, key: str, w: np.ndarray, m: np.ndarray, c: np.ndarray) -> str:
        """(acc * m + c) >> SHIFT: int64 with the lift folded into c, back to int32 (|result| < 2^30)."""
        acc = g.op("MatMulInteger", a_u8, g.const(f"w_{key}", w), zp)
        y = g.op("Mul", g.cast(acc, I64), g.const(f"m_{key}", m.astype(np.int64)))
        y = g.op("Add", y, g.const(f"c_{key}", c.astype(np.int64) + LIFT))  # the bias, the half, the lift
        y = g.op("BitShift", g.cast(y, U64), g.scalar(SHIFT, np.uint64), direction="RIGHT")
        return g.op("Sub", g.cast(y, I32), i32(LIFT >> SHIFT))

    def lut(table: str, pre: str) -> str:
        idx = g.op("Clip", pre, i32(-LUT_HALF), i32(LUT_HALF - 1))
        return g.op("Gather", table, g.op("Add", idx, i32(LUT_HALF)), axis=0)

    # Each layer's state stays [1, B, H] (a Split of the input, no Gather/Unsqueeze); products and sums
    # broadcast, and the logits lose the leading axis at the end.
    states = g.ops("Split", ["state"], L, axis=0) if L > 1 else ["state"]
    outs = []
    x = g.op("Gather", emb, "byte", axis=0)
    for layer in range(L):
        h = states[layer]
        if layer:
            x = linear(operand(outs[-1]), f"ih{layer}", p.w_ih[layer], p.m_ih[layer], p.c_ih[layer])
        gh = linear(operand(h), f"hh{layer}", p.w_hh[layer], p.m_hh[layer], p.c_hh[layer])
        xrz, xn = g.ops("Split", [x, split2], 2, axis=-1)
        hrz, hn = g.ops("Split", [gh, split2], 2, axis=-1)
        r, z = g.ops("Split", [lut(sig, g.op("Add", xrz, hrz)), split11], 2, axis=-1)  # both gates, one lookup
        # (r * hn + 2^14) >> 15 with |r * hn| < 2^30 (check_bounds): lifted by 2^30, shifted, 2^15 off.
        rh = g.cast(g.op("Add", g.op("Mul", r, hn), i32((1 << 30) + (1 << 14))), U32)
        n = lut(tanh, g.op("Add", xn, g.op("Sub", shr_u32(rh, 15), i32(1 << 15))))
        # ((32768 - z) * (n - h) + 2^14) >> 15: the product fits int32 but not with a lift, so it is
        # lifted by 2^31 in uint32 (Cast wraps a negative value modulo 2^32; the sum is then in [0, 2^32)).
        keep = g.op("Sub", i32(intnet.ONE), z)
        prod = g.cast(g.op("Mul", keep, g.op("Sub", n, h)), U32)
        prod = g.op("Add", prod, g.scalar((1 << 31) + (1 << 14), np.uint32))
        outs.append(g.op("Add", h, g.op("Sub", shr_u32(prod, 15), i32(1 << 16))))
    logits = linear(operand(outs[-1]), "out", p.w_out, p.m_out, p.c_out)
    axes0 = g.const("axes0", np.array([0], dtype=np.int64))
    g.nodes.append(helper.make_node("Squeeze", [logits, axes0], ["logits"]))
    g.nodes.append(helper.make_node("Concat", outs, ["state_out"], axis=0) if L > 1
                   else helper.make_node("Identity", outs, ["state_out"]))
    graph = helper.make_graph(
        g.nodes, name,
        [helper.make_tensor_value_info("byte", I64, ["B"]), helper.make_tensor_value_info("state", I32, [L, "B", H])],
        [helper.make_tensor_value_info("logits", I32, ["B", 256]),
         helper.make_tensor_value_info("state_out", I32, [L, "B", H])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="lmar")
    model.ir_version = 8
    # The c_* initializers hold each rescale's constant plus the lift (intnet.load_onnx takes it back off).
    helper.set_model_props(model, {"lmar.intnet.lift": str(LIFT)})
    return model


def rescale_bound(w: np.ndarray, m: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Per output row, a bound on |(acc * m + c) >> SHIFT| over every operand (|a - 128| <= 127)."""
    return ((127 * np.abs(w.astype(np.int64)).sum(axis=0) * m + np.abs(c)) >> SHIFT) + 1


def check_bounds(p: IntParams) -> None:
    """What the int32 graph assumes, proved from the integers: the int64 rescale stays below the lift,
    its result fits int32 with the 2^30 taken off, ``r * hn`` stays below 2^30 (r <= 2^15), and the
    sigmoid table never reaches 0 or 2^15, so ``(2^15 - z) * (n - h)`` plus the half fits int32."""
    amax = 127 * p.hidden * 64
    H = p.hidden
    for m, c in [*zip(p.m_hh, p.c_hh), *zip(p.m_ih[1:], p.c_ih[1:]), (p.m_out, p.c_out)]:
        worst = amax * int(np.abs(m).max()) + int(np.abs(c).max())
        if worst >= 1 << 50:
            raise SystemExit(f"export_int_onnx: an accumulator rescale can reach {worst:.3g} (>= 2^50)")
    mats = [(p.w_hh[i], p.m_hh[i], p.c_hh[i]) for i in range(p.layers)]
    mats += [(p.w_ih[i], p.m_ih[i], p.c_ih[i]) for i in range(1, p.layers)] + [(p.w_out, p.m_out, p.c_out)]
    if max(int(rescale_bound(*t).max()) for t in mats) >= 1 << 29:
        raise SystemExit("export_int_onnx: a rescaled pre-activation can leave int32")
    for i in range(p.layers):
        hn = int(rescale_bound(p.w_hh[i][:, 2 * H:], p.m_hh[i][2 * H:], p.c_hh[i][2 * H:]).max())
        if intnet.ONE * hn > (1 << 30) - (1 << 14):
            raise SystemExit(f"export_int_onnx: layer {i}: r * hn can reach 2^15 * {hn} (>= 2^30)")
    if int(p.sig.min()) < 1 or int(p.sig.max()) >= intnet.ONE or int(np.abs(p.tanh).max()) > intnet.ONE:
        raise SystemExit("export_int_onnx: gate tables out of range")


def verify(path: Path, p: IntParams, text: bytes, batches=(1, 5, 33)) -> None:
    """onnxruntime and the numpy reference agree bit for bit: random states, then real text."""
    from lmar.plugins.lmcore import runtime

    sess = runtime._session(str(path), "verify", "CPUExecutionProvider")
    rng = np.random.default_rng(0)
    for b in batches:
        byte = rng.integers(0, 257, b).astype(np.int64)
        state = rng.integers(-32768, 32769, (p.layers, b, p.hidden)).astype(np.int32)
        lo, so = sess.run(["logits", "state_out"], {"byte": byte, "state": state})
        lr, sr = intnet.step(p, byte, state)
        if not (np.array_equal(lo, lr) and np.array_equal(so, sr)):
            raise SystemExit(f"export_int_onnx: onnxruntime and the reference differ (random, batch {b})")
    segs = np.frombuffer(text[: 8 * 512], np.uint8).reshape(8, -1).astype(np.int64)
    state = np.zeros((p.layers, 8, p.hidden), np.int32)
    ref = state.copy()
    prev = np.full(8, 256, np.int64)
    for t in range(segs.shape[1]):
        lo, state = sess.run(["logits", "state_out"], {"byte": prev, "state": state})
        lr, ref = intnet.step(p, prev, ref)
        if not (np.array_equal(lo, lr) and np.array_equal(state, ref)):
            raise SystemExit(f"export_int_onnx: onnxruntime and the reference differ (text, step {t})")
        prev = segs[:, t]


def checked_bytes(model, check) -> bytes:
    """The serialised ``model`` once ``onnx.checker`` accepts it and ``check(path)`` passes on it saved to a
    temporary file (onnxruntime against the reference): nothing reaches plugins/models before that."""
    import onnx

    onnx.checker.check_model(model)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "m.onnx"
        onnx.save(model, str(tmp_path))
        check(tmp_path)
        return tmp_path.read_bytes()


def add_output_args(ap: argparse.ArgumentParser) -> None:
    """The arguments every integer exporter takes: the model's name, the text it is verified on, --force."""
    ap.add_argument("--name", required=True)
    ap.add_argument("--text", type=Path, default=ROOT.parent / "shared" / "corpus" / "text" / "alice29.txt")
    ap.add_argument("--force", action="store_true", help="replace an unshipped file of that name")


def output_and_text(args: argparse.Namespace, prog: str) -> tuple[Path, bytes] | None:
    """The model file to write and the text to verify it on; None (after saying why) when that file exists
    and ``--force`` was not given: a shipped model is never replaced by accident."""
    out = MODELS / f"{args.name}.onnx"
    if out.exists() and not args.force:
        print(f"{prog}: {out} exists; a shipped model is never replaced", file=sys.stderr)
        return None
    return out, (args.text.read_bytes() if args.text.is_file() else bytes(range(256)) * 16)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, required=True, help="integer parameters (quantize_int.py --out)")
    ap.add_argument("--card-extra", type=Path, help="JSON merged into the card (training facts, evaluation)")
    add_output_args(ap)
    args = ap.parse_args(argv)
    target = output_and_text(args, "export_int_onnx")
    if target is None:
        return 2
    out, text = target
    p = load_params(args.params)
    check_bounds(p)
    model = build(p, args.name)
    blob = checked_bytes(model, lambda path: verify(path, p, text))
    out.write_bytes(blob)
    card = {"name": args.name, "arch": "gru", "numerics": "integer", "layers": p.layers, "hidden": p.hidden,
            "vocab_in": int(p.emb.shape[0]), "bos": 256, "opset": OPSET,
            "onnx_sha256": hashlib.sha256(blob).hexdigest(), "onnx_bytes": len(blob),
            "integer": {"weights": "int8 in [-64, 63], one scale per output row", "activations": "uint8 1..255 "
                        "(Q15 state >> 8, zero point 128)", "gate_bits": intnet.GATE_BITS, "lut_size": intnet.LUT_SIZE,
                        "shift": SHIFT, "logit_scale": intnet.LOGIT_SCALE, "pair_sum_bound": intnet.pair_sum_bound()}}
    if args.card_extra:
        card.update(json.loads(args.card_extra.read_text()))
    old_card = out.with_suffix(".json")
    if old_card.is_file():  # --force on an unshipped model: the same integers keep their mixer prior
        card.setdefault("mixer_priors", json.loads(old_card.read_text()).get("mixer_priors", {}))
    old_card.write_text(json.dumps(card, indent=2) + "\n")
    print(f"{out.name}: {len(blob):,d} bytes, sha256 {card['onnx_sha256'][:12]}...; onnxruntime == reference")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
