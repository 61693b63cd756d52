"""Every table of one block's context mixer, sized from the block and shaped by the scheme's :class:`Layout`.

Why one object: the compiled step (:func:`.mixer_step.code_step`) takes its tables as plain arrays
(numba compiles one signature for all schemes); this class builds them, cold, in one place, and a mixer
prior (:mod:`.prior`) adds its learnt changes to the ones named in :data:`.prior.TABLES`.
"""
from __future__ import annotations

import numpy as np

from .fixedpoint import STRETCH_LIMIT, exp_table, squash_table, stretch_table
from .mixer_layout import N_HASHED, PER_CTX, Layout, class_table

#: A fresh hash slot: slow P(1) = fast P(1) = 1/2, never seen.
EMPTY_SLOT = 32768 | (32768 << 16)


def _rate_table() -> np.ndarray:
    """rate[n] = 65536 / (n + 1.5): a slot seen n times moves by 1/(n+1.5) toward each new bit."""
    n = np.arange(256, dtype=np.int64)
    return (131072 // (2 * n + 3)).astype(np.int64)


def _apm_init(contexts: int) -> np.ndarray:
    knots = (np.arange(33, dtype=np.int64) - 16) * 128
    sq = squash_table()[np.clip(knots, -STRETCH_LIMIT, STRETCH_LIMIT) + STRETCH_LIMIT] * 16
    return np.tile(sq, contexts).astype(np.int64)


def _mixer_init(n_ctx: int) -> np.ndarray:
    w = np.full(1 + PER_CTX * n_ctx + 6, int(0.12 * 65536), dtype=np.int64)
    w[0] = 0
    nn = 1 + PER_CTX * n_ctx
    w[nn] = int(0.45 * 65536)
    w[nn + 1] = int(0.2 * 65536)
    return w


class MixerTables:
    """Every table of one block's predictor plus per-segment histories; sized from the block."""

    def __init__(self, segments: int, size: int, hidden: int, lay: Layout) -> None:
        hb = int(min(22, max(16, (size * 8).bit_length())))
        self.hash_bits = hb
        n_hashed = N_HASHED + len(lay.extra)
        n_ctx = 2 + n_hashed
        total = 256 + 65536 + n_hashed * (1 << hb)
        # One 64-bit word per slot (one cache miss per lookup): slow P(1) | fast P(1) << 16 | count << 32 |
        # check byte << 40 | last four bits seen << 48. A fresh slot is 1/2, 1/2, unseen.
        self.slots = np.full(total, EMPTY_SLOT, dtype=np.int64)
        self.limits = np.array([lay.lim_direct, lay.lim_direct] + [lay.lim_hashed] * n_hashed, dtype=np.int64)
        rows = sum(lay.sets)
        self.mw = np.tile(_mixer_init(n_ctx), (rows, 1)).astype(np.int32 if lay.flags & 2 else np.int64)
        self.set_off = np.concatenate([[0], np.cumsum(lay.sets)[:-1]]).astype(np.int64)
        fin = np.full(len(lay.sets) + 1, int(65536 / len(lay.sets)), dtype=np.int64)
        fin[-1] = 0
        self.fw = np.tile(fin, (lay.final_rows, 1))
        self.opts = lay.opts()
        self.apm = _apm_init(256 + 65536 + 65536 + (65536 if lay.flags & 1 else 0))
        self.nn_apm = _apm_init(2 * 65536)
        self.cmap = _apm_init(n_ctx * 64)
        # Online logistic regression from the network's last hidden state to each bit (one row per
        # partial byte): learns on this very data what the network's fixed output layer misses.
        self.hw = np.zeros((256, hidden), dtype=np.int64)
        self.msm = np.full(64, 32768, dtype=np.int64)
        self.msn = np.zeros(64, dtype=np.int64)
        mb = int(min(22, max(12, size.bit_length() + 1)))
        self.match_bits = mb
        self.mt = np.zeros(1 << mb, dtype=np.int64)
        self.hist = np.zeros(segments, dtype=np.uint64)
        # The classes (:func:`.mixer_layout.class_table`) of the last 16 bytes, 4 bits each (cm4's contexts).
        self.classes = np.zeros(segments, dtype=np.uint64)
        # The current line's class runs (hash of the sequence of classes, run lengths dropped) and the
        # length of the current run.
        self.shape = np.zeros((segments, 2), dtype=np.uint64)
        self.w0 = np.zeros(segments, dtype=np.uint64)
        self.w1 = np.zeros(segments, dtype=np.uint64)
        self.w2 = np.zeros(segments, dtype=np.uint64)
        # Line geometry per segment: where the current and the previous line start (absolute positions).
        self.lines = np.full((segments, 2), -1, dtype=np.int64)
        self.mptr = np.zeros(segments, dtype=np.int64)
        self.mlen = np.zeros(segments, dtype=np.int64)
        self.stretch = stretch_table().astype(np.int64)
        self.squash = squash_table().astype(np.int64)
        self.expt = exp_table().astype(np.int64)
        self.rate = _rate_table()
        self.ctab = class_table()

    def args(self, lo: int = 0, hi: int | None = None) -> tuple:
        """Arguments of :func:`.mixer_step.code_step` after the coder's: the shared tables, and segments [lo, hi)."""
        seg = slice(lo, hi)
        return (self.slots, self.limits, np.int64(self.hash_bits), self.mw, self.set_off, self.fw, self.opts, self.apm,
                self.nn_apm, self.hw, self.cmap, self.msm, self.msn, self.mt, np.int64(self.match_bits),
                self.hist[seg], self.classes[seg], self.shape[seg], self.w0[seg], self.w1[seg], self.w2[seg],
                self.lines[seg], self.mptr[seg], self.mlen[seg], self.stretch, self.squash, self.expt, self.rate,
                self.ctab)
