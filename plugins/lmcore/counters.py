"""Adaptive bit probabilities addressed by hashed contexts, shared by all segments.

Why one flat table: every context order (and the small direct maps) lives in its own region of a single
int32 array, so one gather and one scatter per binary decision serve all of them for all segments.

Determinism with shared tables: several segments may hit the same slot in the same step. Their updates
are computed from the same old value and *summed* (``np.add.at``), which does not depend on the order of
segments, then clipped; the count update writes the same value for every duplicate. No result depends on
how numpy orders duplicate writes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

P_ONE = 65535
_COUNT_CAP = 1023


def _rate_table() -> np.ndarray:
    """rate[n] = 65536 / (n + 1.5): a fresh context adapts fast, an experienced one averages."""
    n = np.arange(_COUNT_CAP + 1, dtype=np.int64)
    return (2 * 65536) // (2 * n + 3)


class CounterBank:
    """Regions of 16-bit probabilities with hit counts; column j of an index matrix addresses region j."""

    def __init__(self, sizes: Sequence[int], limits: Sequence[int]) -> None:
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        total = int(sum(sizes))
        self.p = np.full(total, 1 << 15, dtype=np.int32)
        self.n = np.zeros(total, dtype=np.int16)
        self.limits = np.asarray(limits, dtype=np.int64)
        self.rate = _rate_table()

    def lookup(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, counts) at absolute indices ``idx`` [S, C]."""
        return self.p[idx].astype(np.int64), self.n[idx].astype(np.int64)

    def update(self, idx: np.ndarray, p: np.ndarray, n: np.ndarray, bits: np.ndarray) -> None:
        """Move each looked-up slot toward the coded bit; ``p``/``n`` are what :meth:`lookup` returned."""
        target = bits[:, None] * P_ONE
        delta = ((target - p) * self.rate[n]) >> 16
        flat = idx.ravel()
        np.add.at(self.p, flat, delta.ravel())
        self.p[flat] = np.minimum(np.maximum(self.p[flat], 0), P_ONE)
        self.n[flat] = np.minimum(n + 1, self.limits).ravel()
