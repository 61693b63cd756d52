"""Adaptive bit probabilities addressed by hashed contexts, shared by all segments.

Part of scheme ``cm1`` (lmar 0.1 archives): frozen bitstream, never change, decode only.

Why one flat table: every context order (and the small direct maps) lives in its own region of a single
int32 array, so one gather and one scatter per binary decision serve all of them for all segments.

Determinism and sharing: several segments may hit the same slot in the same step (the order-0 map is hit
by all of them at the first decision of every byte). Their updates are combined as if the k observations
had arrived one after another: the slot moves toward the *mean* target with weight k / (n + k + 0.5),
and its count grows by k. Each duplicate contributes an integer share and the shares are summed with
``np.add.at``, which does not depend on the order of segments; the count write is identical for every
duplicate. Nothing depends on how numpy orders duplicate writes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

P_ONE = 65535


def dup_counts(flat: np.ndarray) -> np.ndarray:
    """For each element of ``flat``, how many elements share its value (itself included)."""
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    return counts[inverse]


class CounterBank:
    """Regions of 16-bit probabilities with hit counts; column j of an index matrix addresses region j."""

    def __init__(self, sizes: Sequence[int]) -> None:
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        total = int(sum(sizes))
        self.p = np.full(total, 1 << 15, dtype=np.int32)
        self.n = np.zeros(total, dtype=np.uint8)  # counts are capped at 255 (see limits)

    def lookup(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, counts) at absolute indices ``idx`` [S, C]."""
        return self.p[idx].astype(np.int64), self.n[idx].astype(np.int64)

    def update(self, idx: np.ndarray, p: np.ndarray, n: np.ndarray, bits: np.ndarray, limits: np.ndarray) -> None:
        """Move each looked-up slot toward the coded bit; ``p``/``n`` are what :meth:`lookup` returned.

        ``limits`` [C] caps the hit count per column: a low cap keeps a context adaptive.
        """
        flat = idx.ravel()
        k = dup_counts(flat).reshape(idx.shape)
        rate = (k << 17) // (2 * (n + k) + 1)  # 65536 * k / (n + k + 0.5)
        share = ((bits[:, None] * P_ONE - p) * rate) // (k << 16)
        # Same dtype on both sides keeps numpy on its fast ufunc.at path (30x faster than a casting one).
        np.add.at(self.p, flat, share.ravel().astype(np.int32))
        self.p[flat] = np.minimum(np.maximum(self.p[flat], 0), P_ONE)
        self.n[flat] = np.minimum(n + k, limits).ravel()
