"""How a block is cut into segments that are coded in lockstep.

Why lockstep: one batched network call per byte position serves every segment, so the per-call overhead
is shared; segments must be long enough that restarting the network's context costs little. The plan is
a pure function of (length, params) so the decoder rebuilds it from the member header alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmentPlan:
    """``count`` segments; segment i covers [starts[i], starts[i] + lengths[i]); lengths never increase."""

    size: int
    count: int
    seg_len: int
    starts: np.ndarray
    lengths: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.lengths[0]) if self.count else 0

    def live(self, t: int) -> int:
        """Number of segments that still have a byte at offset ``t`` (always a prefix of the segments)."""
        return int(np.count_nonzero(self.lengths > t))

    def live_counts(self) -> list[int]:
        """:meth:`live` of every step at once: lengths never increase, so it is one search, not a count
        per step (a block's walk asks at every step)."""
        return np.searchsorted(-self.lengths, -np.arange(self.steps), side="left").tolist()


def plan_segments(size: int, min_segment: int, max_segments: int) -> SegmentPlan:
    """Equal segments of ceil(size / count) bytes; the last one takes the remainder."""
    if size <= 0:
        z = np.zeros(0, dtype=np.int64)
        return SegmentPlan(0, 0, 0, z, z)
    count = max(1, min(max_segments, size // max(1, min_segment)))
    seg_len = -(-size // count)
    count = -(-size // seg_len)  # drop empty tail segments
    starts = np.arange(count, dtype=np.int64) * seg_len
    lengths = np.minimum(seg_len, size - starts)
    return SegmentPlan(size, count, seg_len, starts, lengths)
