"""Gated logistic mixing and adaptive probability maps (APM/SSE), in fixed point.

Part of scheme ``cm1`` (lmar 0.1 archives): frozen bitstream, never change, decode only.

Why fixed point: the mixer's weights are learned online by encoder and decoder separately; integer
arithmetic makes their updates identical on every machine. Weights are shared by all segments; when
several segments update the same weight row in one step their updates are summed (order-free) after
scaling by 1/sqrt(duplicates), so a row hit by every segment at once does not take a giant step.

Several weight sets are stored in one array and selected together ([S, m] row indices), so mixing m
sets costs the same number of numpy calls as mixing one: per-call overhead, not arithmetic, dominates.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..fixedpoint import STRETCH_LIMIT, squash_table

_MAXDUP = 8192


def _dup_scale() -> np.ndarray:
    c = np.arange(1, _MAXDUP + 1, dtype=np.float64)
    # sqrt is correctly rounded in IEEE arithmetic, so this table is identical everywhere.
    return np.concatenate([[65536], np.floor(65536.0 / np.sqrt(c)).astype(np.int64)])


_DUP = _dup_scale()


def clamp(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """np.clip without its per-call overhead (which is ~20 us, more than the work here)."""
    return np.minimum(np.maximum(x, lo), hi)


class Mixer:
    """Weight sets of sizes ``rows``; each segment picks one row per set and gets one output per set."""

    def __init__(self, rows: Sequence[int], inputs: int, init: float, lr: int) -> None:
        self.offsets = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)[None, :]
        self.total = int(sum(rows))
        self.w = np.full((self.total, inputs), int(init * 65536), dtype=np.int64)
        self.lr = lr
        self.squash = squash_table()
        self._cols = np.arange(inputs, dtype=np.int64)[None, :]

    def mix(self, sel: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For inputs ``x`` [S, I] and per-set rows ``sel`` [S, m] (set-relative): (rows, stretch, p12) [S, m]."""
        rows = sel + self.offsets
        dot = (self.w[rows] * x[:, None, :]).sum(axis=2) >> 16
        st = clamp(dot, -STRETCH_LIMIT, STRETCH_LIMIT)
        return rows, st, self.squash[st + STRETCH_LIMIT]

    def learn(self, rows: np.ndarray, x: np.ndarray, p: np.ndarray, bits: np.ndarray) -> None:
        flat = rows.ravel()
        dup = np.bincount(flat, minlength=self.total)[rows]
        err = (((bits[:, None] << 12) - p) * self.lr * _DUP[np.minimum(dup, _MAXDUP)]) >> 16
        dw = (x[:, None, :] * err[:, :, None] + (1 << 15)) >> 16
        # Flattened 1-D ufunc.at on matching dtypes is numpy's fast path; 2-D row indexing is ~5x slower.
        inputs = self.w.shape[1]
        cells = (flat[:, None] * inputs + self._cols).ravel()
        np.add.at(self.w.reshape(-1), cells, dw.reshape(-1))


class Apm:
    """Refines a probability given contexts: 33 interpolation knots over the stretch domain per context.

    Several maps (one per context kind) live in one table; ``ctx`` [S, m] holds set-relative contexts.
    """

    def __init__(self, contexts: Sequence[int], rate: int) -> None:
        knots = (np.arange(33, dtype=np.int64) - 16) * 128
        sq = squash_table()[clamp(knots, -STRETCH_LIMIT, STRETCH_LIMIT) + STRETCH_LIMIT] * 16
        self.offsets = (np.concatenate([[0], np.cumsum(contexts)[:-1]]).astype(np.int64) * 33)[None, :]
        self.t = np.tile(sq, int(sum(contexts)))
        self.rate = rate

    def refine(self, ctx: np.ndarray, st: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(16-bit probabilities [S, m], knot to train [S, m]) for stretched input ``st`` [S]."""
        pos = (st + 2048) * 32
        j = pos >> 12
        w = (pos & 4095)[:, None]
        base = ctx * 33 + self.offsets + j[:, None]
        p = (self.t[base] * (4096 - w) + self.t[base + 1] * w) >> 12
        return p, base + (w >> 11)

    def learn(self, knot: np.ndarray, bits: np.ndarray) -> None:
        flat = knot.ravel()
        _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
        scale = _DUP[np.minimum(counts[inverse], _MAXDUP)].reshape(knot.shape)
        delta = (((bits[:, None] * 65535) - self.t[knot]) * scale) >> (16 + self.rate)
        np.add.at(self.t, flat, delta.ravel())
        self.t[flat] = clamp(self.t[flat], 16, 65535 - 16)
