"""Turn a float :class:`~model.ByteGRU` into the integers of :mod:`lmar.plugins.lmcore.intnet`.

Why per-row scales: the weights must stay within [-64, 63] (the saturation bound of ONNX Runtime's AVX2
u8 x s8 kernel, see ``intnet.pair_sum_bound``), so every output row gets its own real scale and the
rescale multiplier of that row absorbs it. Layer 0's input side is a table per input byte (embedding
times input weights plus biases), computed in float64 and rounded once.

Used by ``quantize_int.py`` (post-training quantisation, evaluation) and ``qat.py`` (fine-tuning).
"""
from __future__ import annotations

import numpy as np
import torch

from lmar.plugins.lmcore import intnet
from lmar.plugins.lmcore.intnet import GATE_BITS, LUT_HALF, LUT_SIZE, ONE, SHIFT, W_MAX, W_MIN, IntParams

#: Operand units: the Q15 state >> 8, i.e. 1/128.
A_UNIT = 1.0 / 128


def row_scale(w: np.ndarray, clip: float = 1.0) -> np.ndarray:
    """Real scale of each row so its largest |weight| (times ``clip``) maps to W_MAX."""
    m = np.abs(w).max(axis=1) * clip
    return np.where(m > 0, m / W_MAX, 1.0)


def quant_rows(w: np.ndarray, clip: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(int8 weights [rows, cols], real scale per row)."""
    s = row_scale(w, clip)
    q = np.clip(np.round(w / s[:, None]), W_MIN, W_MAX).astype(np.int8)
    return q, s


def luts() -> tuple[np.ndarray, np.ndarray]:
    """Q15 sigmoid and tanh of (i - LUT_HALF) / 2^GATE_BITS, rounded once here and stored in the model."""
    x = (np.arange(LUT_SIZE, dtype=np.float64) - LUT_HALF) / (1 << GATE_BITS)
    sig = np.round(ONE / (1.0 + np.exp(-x))).astype(np.int32)
    tanh = np.round(ONE * np.tanh(x)).astype(np.int32)
    return sig, tanh


def _mult(scale: np.ndarray, out_units: float) -> np.ndarray:
    """Integer multiplier taking acc (A_UNIT * scale units) to 1/out_units units, times 2^SHIFT."""
    return np.round(scale * A_UNIT * out_units * (1 << SHIFT)).astype(np.int64)


def _const(bias: np.ndarray, out_units: float) -> np.ndarray:
    return (np.round(bias.astype(np.float64) * out_units * (1 << SHIFT)) + (1 << (SHIFT - 1))).astype(np.int64)


def from_float(sd: dict[str, torch.Tensor], layers: int, clip: float = 1.0) -> IntParams:
    """Post-training quantisation of a ByteGRU state dict (torch gate order r, z, n)."""
    g = float(1 << GATE_BITS)
    a = {k: v.detach().double().numpy() for k, v in sd.items()}
    H = a["gru.weight_hh_l0"].shape[1]
    zn = np.concatenate([np.ones(2 * H), np.zeros(H)])  # recurrent biases of r and z join the input side
    emb = a["embed.weight"] @ a["gru.weight_ih_l0"].T + a["gru.bias_ih_l0"] + zn * a["gru.bias_hh_l0"]
    p = IntParams(emb=np.round(emb * g).astype(np.int32), w_hh=[], m_hh=[], c_hh=[],
                  w_ih=[np.zeros((0, 0), np.int8)], m_ih=[np.zeros(0, np.int64)], c_ih=[np.zeros(0, np.int64)],
                  w_out=np.zeros(0, np.int8), m_out=np.zeros(0, np.int64), c_out=np.zeros(0, np.int64),
                  sig=np.zeros(0), tanh=np.zeros(0))
    for layer in range(layers):
        w, s = quant_rows(a[f"gru.weight_hh_l{layer}"], clip)
        p.w_hh.append(np.ascontiguousarray(w.T))
        p.m_hh.append(_mult(s, g))
        p.c_hh.append(_const((1 - zn) * a[f"gru.bias_hh_l{layer}"], g))
        if layer:
            w, s = quant_rows(a[f"gru.weight_ih_l{layer}"], clip)
            p.w_ih.append(np.ascontiguousarray(w.T))
            p.m_ih.append(_mult(s, g))
            p.c_ih.append(_const(a[f"gru.bias_ih_l{layer}"] + zn * a[f"gru.bias_hh_l{layer}"], g))
    w, s = quant_rows(a["head.weight"], clip)
    p.w_out = np.ascontiguousarray(w.T)
    p.m_out = _mult(s, intnet.LOGIT_SCALE)
    p.c_out = _const(a["head.bias"], intnet.LOGIT_SCALE)
    p.sig, p.tanh = luts()
    p.check()
    return p
