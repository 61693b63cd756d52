"""Match model: find the latest earlier occurrence of the current context and predict its next byte.

Part of scheme ``cm1`` (lmar 0.1 archives): frozen bitstream, never change, decode only.

Why it matters: long repeats (URLs, boilerplate, repeated lines) are where a small network and finite
context orders lose most; following a pointer predicts them almost for free.

All reads go to the *reconstruction* buffer, which holds exactly the bytes already coded (zeros elsewhere)
in encoder and decoder alike, so the pointer logic cannot see bytes the decoder does not have yet.
"""
from __future__ import annotations

import numpy as np

MIN_LEN = 6
VERIFY = 24
MAX_LEN = 65535
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)


def len_bucket(mlen: np.ndarray) -> np.ndarray:
    """0 = no match, 1..15 exact, then 8-wide steps up to 31."""
    return np.where(mlen < 16, mlen, np.minimum(16 + ((mlen - 16) >> 3), 31))


class MatchModel:
    """Per-segment match pointers into the block, and one table of context hash -> next position."""

    BUCKETS = 32

    def __init__(self, segments: int, size: int, table_bits: int, min_len: int = MIN_LEN) -> None:
        self.bits = table_bits
        self.min_len = min_len
        self._key_mask = np.uint64((1 << (8 * min(min_len, 8))) - 1)
        self.table = np.zeros(1 << table_bits, dtype=np.int64)  # position of the byte after the context, +1
        self.ptr = np.zeros(segments, dtype=np.int64)
        self.mlen = np.zeros(segments, dtype=np.int64)
        self.expected = np.zeros(segments, dtype=np.int64)  # predicted byte | 256, 0 when no match
        self.size = size
        self._shift = np.uint64(64 - table_bits)
        self._back = np.arange(1, VERIFY + 1, dtype=np.int64)

    def begin_byte(self, buf: np.ndarray, n: int) -> None:
        """Fetch the predicted byte of each live segment (called before its 8 decisions)."""
        has = self.mlen[:n] > 0
        self.expected[:n] = np.where(has, buf[np.minimum(self.ptr[:n], self.size - 1)].astype(np.int64) | 256, 0)

    def end_byte(self, buf: np.ndarray, byte: np.ndarray, pos: np.ndarray, hist: np.ndarray, filled: np.ndarray) -> None:
        """Advance pointers after ``byte`` was coded at ``pos`` (already written into ``buf``).

        ``hist`` is the last 8 bytes of each segment (newest lowest), ``filled`` how many bytes of the
        segment are known; ``pos``, ``byte`` cover the live segments.
        """
        n = len(pos)
        ptr, mlen = self.ptr[:n], self.mlen[:n]
        hit = (mlen > 0) & ((self.expected[:n] & 255) == byte) & (self.expected[:n] > 0)
        mlen[:] = np.where(hit, np.minimum(mlen + 1, MAX_LEN), 0)
        ptr[:] = np.where(hit, ptr + 1, 0)
        mlen[ptr >= self.size] = 0
        ready = filled >= self.min_len
        key = (hist & self._key_mask) * _GOLD
        h = ((key ^ (key >> np.uint64(29))) * _MIX >> self._shift).astype(np.int64)
        # Look up a new candidate where there is no current match, and check how far back it agrees.
        want = ready & (mlen == 0)
        cand = self.table[h]
        want &= cand > 0
        if want.any():
            back_c = cand[:, None] - 1 - self._back[None, :]
            back_p = pos[:, None] + 1 - self._back[None, :]
            valid = (back_c >= 0) & (back_p >= 0)
            same = valid & (buf[np.maximum(back_c, 0)] == buf[np.maximum(back_p, 0)])
            run = np.where(same.all(axis=1), VERIFY, np.argmin(same, axis=1))
            good = want & (run >= self.min_len)
            mlen[:] = np.where(good, run, mlen)
            ptr[:] = np.where(good, cand - 1, ptr)
        # Record this context -> next position; duplicates resolve to the largest position, order-free.
        hr, pr = h[ready], pos[ready] + 2
        self.table[hr] = 0
        np.maximum.at(self.table, hr, pr)
