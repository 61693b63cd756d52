"""Network logits -> integer byte weights -> probability of every binary decision of the next byte.

Part of scheme ``cm1`` (lmar 0.1 archives): frozen bitstream, never change, decode only.

Why integers right away: the float logits are the only thing allowed to depend on the machine. They are
rounded to 1/16 nat, turned into integer weights through a fixed exp table, and every later step is exact
integer arithmetic, so encoder and decoder agree whenever the logits agree (and usually even when they
differ in the last few ulps, since rounding absorbs them).

Why a whole table per byte: the 255 decision nodes of a byte form a binary tree; summing weights up the
tree once per byte (8 vector ops) lets each of the 8 decisions read its probability with one gather.
"""
from __future__ import annotations

import numpy as np

from ..fixedpoint import EXP_RANGE, LOGIT_SCALE, exp_table


def byte_weights(logits: np.ndarray) -> np.ndarray:
    """Integer weights [B, 256] >= 1 from float logits [B, 256] (softmax up to a common factor)."""
    lg = np.nan_to_num(logits.astype(np.float64), nan=0.0, posinf=1e4, neginf=-1e4)
    q = np.floor(np.clip(lg, -1e4, 1e4) * LOGIT_SCALE + 0.5).astype(np.int64)
    d = np.minimum(q.max(axis=1, keepdims=True) - q, EXP_RANGE - 1)
    return exp_table()[d] + 1


def node_table(weights: np.ndarray) -> np.ndarray:
    """12-bit P(bit = 1) [B, 256] at each node ``c0`` (1..255, leading-1 partial byte); column 0 unused.

    Heap layout: node i has children 2i (bit 0) and 2i+1 (bit 1); leaves 256..511 are the bytes.
    """
    b = weights.shape[0]
    tree = np.zeros((b, 512), dtype=np.int64)
    tree[:, 256:] = weights
    for lo in (128, 64, 32, 16, 8, 4, 2, 1):
        tree[:, lo : 2 * lo] = tree[:, 2 * lo : 4 * lo : 2] + tree[:, 2 * lo + 1 : 4 * lo : 2]
    out = np.full((b, 256), 2048, dtype=np.int64)
    out[:, 1:] = np.minimum(np.maximum((tree[:, 3:512:2] << 12) // tree[:, 1:256], 1), 4095)
    return out
