"""The bitwise context-mixing predictor that turns the network's guess into a sharper one.

Part of scheme ``cm1`` (lmar 0.1 archives): frozen bitstream, never change, decode only.

Per binary decision and per live segment it gathers: the network's bit probability, an order-0 map,
hashed order-1..6 and word contexts, and the match model; a gated mixer (weight sets chosen by different
contexts, then a small final mixer) combines their stretched probabilities, and APMs refine the result.
All state is integer and all segments share it; see :mod:`.cm1_counters` for why sharing is safe.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cm1_counters import CounterBank
from ..fixedpoint import stretch_table
from .cm1_match import MatchModel, len_bucket
from .cm1_mixer import Apm, Mixer, clamp

_G1 = np.uint64(0x9E3779B97F4A7C15)
_G2 = np.uint64(0xBF58476D1CE4E5B9)
_G3 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class PredictorConfig:
    """cm1's parameters; part of its bitstream (members were only ever written with the defaults)."""

    orders: tuple[int, ...] = (1, 2, 3, 4, 6)
    hash_bits_max: int = 23
    match_bits: int = 22
    match_min: int = 6
    context_limit: int = 255
    mixer_lr: int = 80
    final_lr: int = 16
    apm_rate: int = 5
    word_bigram: bool = True
    apm_weight: int = 3
    nn_apm: bool = True


def _mix64(x: np.ndarray) -> np.ndarray:
    x = x * _G1
    x = x ^ (x >> np.uint64(29))
    return x * _G2


class Predictor:
    """State for ``segments`` lockstep segments of one block of ``size`` bytes."""

    def __init__(self, segments: int, size: int, cfg: PredictorConfig) -> None:
        self.cfg = cfg
        self.S = segments
        k = len(cfg.orders) + 1 + int(cfg.word_bigram)  # + word (and previous word) contexts
        self.k = k
        # Tables grow with the block (about one slot per coded decision, up to the cap): small inputs stay
        # fast and light, big ones do not drown their long contexts in collisions.
        hb = min(cfg.hash_bits_max, max(16, (size * 8).bit_length() + 1))
        # Regions: order-0 (by partial byte), match map (bucket x expected bit), then the hashed contexts.
        # Low count caps keep the contexts adaptive; the shared small maps can average over more hits.
        self.bank = CounterBank([256, 2 * MatchModel.BUCKETS] + [1 << hb] * k)
        self.limits = np.array([255, 255] + [cfg.context_limit] * k)
        self.hash_off = self.bank.offsets[2:][None, :]
        self.hash_shift = np.uint64(64 - hb)
        self.masks = np.array([(1 << (8 * o)) - 1 for o in cfg.orders], dtype=np.uint64)[None, :]
        self.tags = (np.arange(1, len(cfg.orders) + 1, dtype=np.uint64) << np.uint64(56))[None, :]
        self.match = MatchModel(segments, size, min(cfg.match_bits, max(12, size.bit_length() + 1)), cfg.match_min)
        self.hist = np.zeros(segments, dtype=np.uint64)
        self.word = np.zeros(segments, dtype=np.uint64)
        self.word_prev = np.zeros(segments, dtype=np.uint64)
        self.ctx = np.zeros((segments, k), dtype=np.uint64)
        # Inputs: bias, network, order-0, match, k contexts.
        self.inputs = 4 + k + int(cfg.nn_apm)
        self._x = np.zeros((segments, self.inputs), dtype=np.int64)
        self._x[:, 0] = 256
        self._idx = np.zeros((segments, 2 + k), dtype=np.int64)
        self._actx = np.zeros((segments, 3), dtype=np.int64)
        # Weight sets chosen by: partial byte, match state, previous byte, context confidence x bit.
        sets = [256, 2 * MatchModel.BUCKETS, 256, 8 * (k + 1)]
        self.mixer = Mixer(sets, self.inputs, 0.2, cfg.mixer_lr)
        self.final = Mixer([256], len(sets), 1 / len(sets), cfg.final_lr)
        self._sel = np.zeros((segments, len(sets)), dtype=np.int64)
        self.apm = Apm([256, 1 << 16, 1 << 16], cfg.apm_rate)
        # The network's probability recalibrated per (previous byte, partial byte): where it is reliable.
        self.nn_apm = Apm([1 << 16], cfg.apm_rate) if cfg.nn_apm else None
        self.stretch = stretch_table()
        self.n = segments

    # -- per byte ------------------------------------------------------------------------------------
    def begin_byte(self, n: int, buf: np.ndarray) -> None:
        """Prepare the contexts of the ``n`` live segments for their next byte."""
        self.n = n
        hist = self.hist[:n]
        ctx = self.ctx[:n]
        no = len(self.cfg.orders)
        ctx[:, :no] = _mix64((hist[:, None] & self.masks) + self.tags)
        ctx[:, no] = _mix64(self.word[:n] ^ _G3)
        if self.cfg.word_bigram:
            ctx[:, no + 1] = _mix64((self.word[:n] + self.word_prev[:n] * _G2) ^ _G1)
        self.c1 = (hist & np.uint64(255)).astype(np.int64)
        c2 = ((hist >> np.uint64(8)) & np.uint64(255)).astype(np.int64)
        self.c12 = ((self.c1 * 0x2F1 + c2 * 0x1D3) & 0xFF) << 8
        self.match.begin_byte(buf, n)
        self.mbucket = len_bucket(self.match.mlen[:n])

    def end_byte(self, byte: np.ndarray, buf: np.ndarray, pos: np.ndarray, filled: int) -> None:
        """Fold the coded bytes of the live segments into their histories (``buf`` already holds them)."""
        n = self.n
        b = byte.astype(np.uint64)
        self.hist[:n] = (self.hist[:n] << np.uint64(8)) | b
        low = byte | 32
        letter = (low >= 97) & (low <= 122)
        word = self.word[:n]
        ended = ~letter & (word != 0)
        self.word_prev[:n] = np.where(ended, word, self.word_prev[:n])
        self.word[:n] = np.where(letter, (word + low.astype(np.uint64)) * _G2, np.uint64(0))
        self.match.end_byte(buf, byte, pos, self.hist[:n], np.full(n, filled, dtype=np.int64))

    # -- per decision --------------------------------------------------------------------------------
    def predict(self, bit: int, c0: np.ndarray, p_nn: np.ndarray) -> np.ndarray:
        """16-bit P(bit = 1) for each live segment at decision ``bit`` with partial byte ``c0``."""
        n, k = self.n, self.k
        e = self.match.expected[:n]
        ok = (e >> (8 - bit)) == c0
        mslot = np.where(ok, self.mbucket * 2 + ((e >> (7 - bit)) & 1), 0)
        idx = self._idx[:n]
        idx[:, 0] = c0
        idx[:, 1] = mslot + self.bank.offsets[1]
        cm = (c0.astype(np.uint64) * _G3)[:, None]
        idx[:, 2:] = (((self.ctx[:n] ^ cm) * _G1) >> self.hash_shift).astype(np.int64) + self.hash_off
        p, cnt = self.bank.lookup(idx)
        seen = cnt[:, 2:] > 0
        st = self.stretch[p >> 4]
        x = self._x[:n]
        x[:, 1] = self.stretch[p_nn]
        x[:, 2:4] = st[:, :2]
        x[:, 4 : 4 + k] = st[:, 2:] * seen  # a context never seen says nothing (not "50/50")
        nknots = None
        if self.nn_apm is not None:
            pn, nknots = self.nn_apm.refine((c0 | (self.c1 << 8))[:, None], x[:, 1])
            x[:, 4 + k] = self.stretch[pn[:, 0] >> 4]
        sel = self._sel[:n]
        sel[:, 0] = c0
        sel[:, 1] = mslot
        sel[:, 2] = self.c1
        sel[:, 3] = np.count_nonzero(seen, axis=1) * 8 + bit
        rows, st1, p1 = self.mixer.mix(sel, x)
        frows, sf, pf = self.final.mix(c0[:, None], st1)
        sf, pf = sf[:, 0], pf[:, 0]
        actx = self._actx[:n]
        actx[:, 0] = c0
        actx[:, 1] = c0 | (self.c1 << 8)
        actx[:, 2] = c0 | self.c12
        a, knots = self.apm.refine(actx, sf)
        self._saved = (idx, p, cnt, x, rows, p1, st1, frows, pf, knots, nknots)
        w = self.cfg.apm_weight
        out = (pf * 16 + a.sum(axis=1) * w) // (1 + 3 * w)
        return clamp(out, 1, 65535)

    def update(self, bits: np.ndarray) -> None:
        idx, p, cnt, x, rows, p1, st1, frows, pf, knots, nknots = self._saved
        b = bits.astype(np.int64)
        self.bank.update(idx, p, cnt, b, self.limits)
        self.mixer.learn(rows, x, p1, b)
        self.final.learn(frows, st1, pf[:, None], b)
        self.apm.learn(knots, b)
        if nknots is not None:
            self.nn_apm.learn(nknots, b)
