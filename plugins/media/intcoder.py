"""Compact coding of small integer side information (LPC orders, reflection coefficients, flags).

Each column of values is coded as ``v >> k`` with a fitted two-sided geometric table plus ``k`` uniform
low bits, ``k`` and the table chosen per column by the encoder to minimise the size. All columns share one
range-coder stream, so a column costs three header bytes instead of a stream flush. The decoder must know
each column's length (it follows from values decoded before it).
"""
from __future__ import annotations

import numpy as np

from lmar.errors import CodecError
from lmar.plugins.rangecoder import RangeCoderError, RangeDecoder, RangeEncoder

from .residual_coder import ALPHABET, ESCAPE, NGRID, RANGE, _model_for, best_grid, corrupt

_MAXK = 23  # low bits per value: the range coder's uniform model takes at most 2**24 symbols


def _cost(v: np.ndarray, k: int) -> tuple[float, int]:
    q = v >> k
    sym = np.where((q < -RANGE) | (q >= RANGE), ESCAPE, q + RANGE)
    hist = np.bincount(sym, minlength=ALPHABET).astype(np.float64)
    grid, bits = best_grid(hist, False)
    return bits + k * v.size + 32.0 * hist[ESCAPE], grid


class Writer:
    def __init__(self) -> None:
        self.enc = RangeEncoder()
        self.head: list[int] = []

    def column(self, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.int64)
        if v.size == 0:
            return
        # q must mostly fit the table's +-RANGE; past that, each extra low bit only helps while it pays
        k = max(0, int(np.abs(v).max()).bit_length() - 9)
        best = _cost(v, k) + (k,)
        while k < _MAXK:
            k += 1
            got = _cost(v, k) + (k,)
            if got[0] >= best[0]:
                break
            best = got
        _, grid, k = best
        self.head += [k, grid & 255, grid >> 8]
        q = v >> k
        esc = (q < -RANGE) | (q >= RANGE)
        sym = np.where(esc, ESCAPE, q + RANGE)
        self.enc.encode_table(sym, _model_for(0, grid))
        if esc.any():  # raw 32-bit two's complement in two 16-bit halves
            u = q[esc] & 0xFFFFFFFF
            both = np.stack([u >> 16, u & 0xFFFF], axis=1).reshape(-1)
            self.enc.encode_uniform(both, 1 << 16)
        if k:
            self.enc.encode_uniform(v & ((1 << k) - 1), 1 << k)

    def finish(self) -> bytes:
        words = self.enc.get_compressed()
        head = bytes(self.head)
        return len(head).to_bytes(4, "little") + head + words.size.to_bytes(4, "little") + words.astype("<u4").tobytes()


class Reader:
    def __init__(self, payload: bytes, pos: int) -> None:
        try:
            nh = int.from_bytes(payload[pos : pos + 4], "little")
            self.head = payload[pos + 4 : pos + 4 + nh]
            pos += 4 + nh
            nw = int.from_bytes(payload[pos : pos + 4], "little")
            words = np.frombuffer(payload, "<u4", nw, pos + 4).astype(np.uint32)
        except ValueError:
            raise CodecError("audio: truncated side information") from None
        if len(self.head) != nh or len(payload) < pos + 4:
            raise CodecError("audio: truncated side information")
        self.end = pos + 4 + 4 * nw
        self.dec = RangeDecoder(words)
        self.at = 0

    def column(self, n: int) -> np.ndarray:
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        if self.at + 3 > len(self.head):
            raise CodecError("audio: side information header exhausted")
        k, grid = self.head[self.at], self.head[self.at + 1] | (self.head[self.at + 2] << 8)
        self.at += 3
        if k > _MAXK or grid >= NGRID:
            raise CodecError("audio: bad side information header")
        try:
            sym = self.dec.decode_table(_model_for(0, grid), n)
            q = sym - RANGE
            esc = sym == ESCAPE
            if esc.any():
                both = self.dec.decode_uniform(np.full(2 * int(esc.sum()), 1 << 16, np.int64))
                u = (both[0::2] << 16) | both[1::2]
                q[esc] = u - ((u & 0x80000000) << 1)
            low = self.dec.decode_uniform(np.full(n, 1 << k, np.int64)) if k else 0
        except RangeCoderError:
            raise corrupt("side information") from None
        return (q << k) + low
