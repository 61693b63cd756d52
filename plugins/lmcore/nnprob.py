"""Network logits -> integer byte distribution -> probability of each binary decision.

Why integers right away: the float logits are the only thing allowed to depend on the machine. They are
rounded to 1/16 nat, turned into integer weights through a fixed exp table, and every later step is exact
integer arithmetic, so encoder and decoder agree whenever the logits agree (and usually even when they
differ in the last few ulps, since rounding absorbs them).
"""
from __future__ import annotations

import numpy as np

from .fixedpoint import EXP_RANGE, LOGIT_SCALE, exp_table


def byte_cdf(logits: np.ndarray) -> np.ndarray:
    """Cumulative integer weights [B, 257] (column 0 is 0); every byte keeps a weight of at least 1."""
    lg = np.nan_to_num(logits.astype(np.float64, copy=False), nan=0.0, posinf=1e4, neginf=-1e4)
    q = np.floor(np.clip(lg, -1e4, 1e4) * LOGIT_SCALE + 0.5).astype(np.int64)
    d = np.minimum(q.max(axis=1, keepdims=True) - q, EXP_RANGE - 1)
    w = exp_table()[d] + 1
    cdf = np.zeros((w.shape[0], 257), dtype=np.int64)
    np.cumsum(w, axis=1, out=cdf[:, 1:])
    return cdf


def node_prob(cdf: np.ndarray, c0: np.ndarray, bit: int) -> np.ndarray:
    """12-bit P(next bit = 1) at decision ``bit`` (0 = most significant) given the partial byte ``c0``.

    ``c0`` carries a leading 1 (1..255 as in the bitwise coder); the subtree below it is the byte range
    [lo, hi) and its upper half [mid, hi) is "bit = 1".
    """
    width = 256 >> bit
    lo = (c0 - (1 << bit)) * width
    rows = np.arange(cdf.shape[0])
    c_lo = cdf[rows, lo]
    c_mid = cdf[rows, lo + (width >> 1)]
    c_hi = cdf[rows, lo + width]
    p = ((c_hi - c_mid) << 12) // (c_hi - c_lo)
    return np.clip(p, 1, 4095)
