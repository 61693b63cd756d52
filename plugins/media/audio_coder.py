"""Lossless coding of PCM sample arrays: stereo decorrelation, per-frame LPC, NLMS, adaptive arithmetic coding.

Long inputs are cut into independent segments of :data:`SEGMENT` samples per channel, which bounds
memory. Each segment: a small header, the side information (stereo mode per frame, LPC order, NLMS on/off
and quantised reflection coefficients per row, range-coded by :mod:`intcoder`), then the residual stream
of :mod:`residual_coder`. Rows are (frame, coded channel) pairs; all rows of a segment have the same
length so the decoder advances every row one position per vectorised step.
"""
from __future__ import annotations

import struct

import numpy as np

from lmar.errors import CodecError

from . import cascade, intcoder, lpc, residual_coder

_HEAD = struct.Struct("<QBBIBB")  # samples per channel, channels, max order, frame length, NLMS taps, step
#: second-stage NLMS (taps, log2 step): the first is the default, the others are tried once the frame
#: length is settled (a longer, faster filter suits some music and noisy speech)
NLMS_CONFIGS = ((16, 11), (32, 12))
# stereo modes: which two signals a frame codes
LR, MS, LS, RS = 0, 1, 2, 3


def _frame_len(n: int, target: int) -> int:
    frames = max(1, -(-n // target))
    return -(-n // frames)


def _frames(sig: np.ndarray, f: int, n: int) -> np.ndarray:
    out = np.zeros(f * n, dtype=np.int64)
    out[: sig.size] = sig
    return out.reshape(f, n)


SEGMENT = 1 << 21  # samples per channel per independent segment (peak memory stays near 0.3 GB)
#: longest frame the search tries: the decoder takes one vectorised step per position of a frame, so
#: 16384 cost twice the decoding time of 8192 for ~0.2% on the one file that preferred it
MAX_FRAME = 8192


def _wasted_bits(x: np.ndarray) -> int:
    """Low bits that are zero in every sample (e.g. 16-bit audio in a 24-bit container): not worth coding."""
    acc = int(np.bitwise_or.reduce(x.reshape(-1))) if x.size else 0
    return 0 if acc == 0 else min((acc & -acc).bit_length() - 1, 31)


def encode(x: np.ndarray, frame_target: int = 0, pmax: int = lpc.PMAX) -> bytes:
    """Code samples ``x`` (n, channels) int64, segment by segment."""
    parts = []
    for start in range(0, len(x), SEGMENT):
        seg = x[start : start + SEGMENT]
        wasted = _wasted_bits(seg)
        body = bytes([wasted]) + _encode_segment(seg >> wasted, frame_target, pmax)
        parts.append(struct.pack("<I", len(body)) + body)
    return struct.pack("<II", len(parts), SEGMENT) + b"".join(parts)


def decode(payload: bytes, pos: int, total: int, chans: int) -> np.ndarray:
    """Inverse of :func:`encode`; returns (total, chans) int64 and insists on using the whole payload."""
    try:
        nseg, seglen = struct.unpack_from("<II", payload, pos)
    except struct.error:
        raise CodecError("audio: truncated stream") from None
    if seglen == 0 or nseg != -(-total // seglen):
        raise CodecError("audio: segment count does not match the sample count")
    pos += 8
    out = []
    for i in range(nseg):
        try:
            (size,) = struct.unpack_from("<I", payload, pos)
        except struct.error:
            raise CodecError("audio: truncated stream") from None
        seg = payload[pos + 4 : pos + 4 + size]
        if len(seg) != size or size == 0 or seg[0] > 31:
            raise CodecError("audio: truncated or bad segment")
        out.append(_decode_segment(seg[1:], min(seglen, total - i * seglen), chans) << seg[0])
        pos += 4 + size
    if pos != len(payload):
        raise CodecError("audio: trailing bytes after the last segment")
    return np.concatenate(out) if out else np.zeros((0, chans), dtype=np.int64)


def _encode_segment(x: np.ndarray, frame_target: int, pmax: int) -> bytes:
    """Code one segment; ``frame_target`` 0 tries several frame lengths.

    The best frame length depends on the sample rate and how fast the sound changes (speech at 16 kHz
    wants ~1024, music at 44.1 kHz ~4096-8192); a real trial is cheap next to a wrong guess. The search
    walks from 4096 towards whichever neighbour helps, within 512..MAX_FRAME.
    """
    if frame_target:
        return _encode(x, frame_target, pmax, NLMS_CONFIGS[0])
    tried: dict[int, bytes] = {}

    def trial(target: int) -> bytes:
        n = _frame_len(len(x), target)  # short inputs map several targets to one frame length
        if n not in tried:
            tried[n] = _encode(x, n, pmax, NLMS_CONFIGS[0])
        return tried[n]

    best = trial(4096)
    for direction in (0.5, 2.0):
        target, improved = 4096, False
        while 512 <= target * direction <= MAX_FRAME:
            target = int(target * direction)
            got = trial(target)
            if len(got) >= len(best):
                break
            best, improved = got, True
        if improved:
            break
    n = next(k for k, v in tried.items() if v is best)
    for config in NLMS_CONFIGS[1:]:
        got = _encode(x, n, pmax, config)
        if len(got) < len(best):
            best = got
    return best


def _encode(x: np.ndarray, frame_target: int, pmax: int, nlms: tuple[int, int]) -> bytes:
    total, chans = x.shape
    n = _frame_len(total, frame_target)
    f = -(-total // n)
    if chans == 2:
        left, right = x[:, 0], x[:, 1]
        cand = [left, right, (left + right) >> 1, left - right]
        framed = [_frames(c, f, n) for c in cand]
        ana = [lpc.analyse(c, pmax) for c in framed]
        cost = np.stack([a[2] for a in ana])  # (4, F): L, R, M, S
        pair = {LR: (0, 1), MS: (2, 3), LS: (0, 3), RS: (1, 3)}
        mode = np.argmin(np.stack([cost[i] + cost[j] for i, j in pair.values()]), axis=0).astype(np.uint8)
        pick = np.array([pair[m] for m in range(4)])[mode]  # (F, 2) candidate index per slot
        rows_x = np.stack([np.stack(framed)[pick[:, s], np.arange(f)] for s in range(2)], axis=1)
        order = np.stack([np.stack([a[0] for a in ana])[pick[:, s], np.arange(f)] for s in range(2)], axis=1)
        kq = np.stack([np.stack([a[1] for a in ana])[pick[:, s], np.arange(f)] for s in range(2)], axis=1)
    else:
        mode = np.zeros(f, dtype=np.uint8)
        framed = [_frames(x[:, c], f, n) for c in range(chans)]
        ana = [lpc.analyse(c, pmax) for c in framed]
        rows_x = np.stack(framed, axis=1)
        order = np.stack([a[0] for a in ana], axis=1)
        kq = np.stack([a[1] for a in ana], axis=1)
    rows_x = rows_x.reshape(-1, n)
    order = order.reshape(-1)
    kq = kq.reshape(-1, pmax)
    a = lpc.step_up(kq)
    wild = np.abs(a).max(axis=1) > (1 << (lpc.Q + 12))  # keep products inside int64: plain coding
    order[wild], kq[wild], a[wild] = 0, 0, 0
    e1 = lpc.residual(rows_x, a)
    e2 = cascade.forward(e1, *nlms)
    # the NLMS stage always adapts, but a row only uses its prediction where that is cheaper
    use = (np.log2(1.0 + np.abs(e2)).sum(axis=1) < np.log2(1.0 + np.abs(e1)).sum(axis=1)).astype(np.uint8)
    e = np.where(use[:, None] == 1, e2, e1)
    side = intcoder.Writer()
    slots = 2 if chans == 2 else chans
    if chans == 2:
        side.column(mode)
    side.column(order)
    side.column(use)
    for m, sel in _coef_rows(order, slots, pmax):
        vals = kq[sel, m]
        side.column(np.diff(vals, prepend=0) if m < 2 else vals)  # k1, k2 drift slowly: send changes
    head = _HEAD.pack(total, chans, pmax, n, *nlms)
    return head + side.finish() + residual_coder.encode(e)


def _coef_rows(order: np.ndarray, slots: int, pmax: int):  # type: ignore[no-untyped-def]
    """(coefficient index, rows that have it) in coding order; k1 and k2 per slot, so deltas stay local."""
    rows = np.arange(order.size)
    for m in range(pmax):
        for group in ([rows[s::slots] for s in range(slots)] if m < 2 else [rows]):
            yield m, group[order[group] > m]


def _decode_segment(payload: bytes, total: int, chans: int) -> np.ndarray:
    pos = 0
    try:
        got_total, got_chans, pmax, n, taps, mu = _HEAD.unpack_from(payload, pos)
    except struct.error:
        raise CodecError("audio: truncated stream header") from None
    if (got_total, got_chans) != (total, chans) or not 0 < n <= 1 << 24 or pmax > lpc.PMAX or taps > 64 or mu > 40:
        raise CodecError("audio: stream header does not match the container")
    pos += _HEAD.size
    f = -(-total // n)
    slots = 2 if chans == 2 else chans
    rows = f * slots
    side = intcoder.Reader(payload, pos)
    pos = side.end
    mode = side.column(f) if chans == 2 else np.zeros(f, dtype=np.int64)
    order = side.column(rows)
    use = side.column(rows)
    for vals, top in ((order, pmax), (mode, RS), (use, 1)):
        if vals.min(initial=0) < 0 or vals.max(initial=0) > top:
            raise CodecError("audio: bad side information")
    kq = np.zeros((rows, pmax), dtype=np.int64)
    for m, sel in _coef_rows(order, slots, pmax):
        vals = side.column(sel.size)
        kq[sel, m] = np.cumsum(vals) if m < 2 else vals
    lim = (1 << lpc.KBITS[:pmax]) - 1
    if np.any(np.abs(kq) > lim):
        raise CodecError("audio: reflection coefficient out of range")
    arev = lpc.step_up(kq)[:, ::-1].copy()
    buf = np.zeros((rows, n + pmax), dtype=np.int64)
    half = np.int64(1 << (lpc.Q - 1))
    nlms = cascade.Nlms(rows, n, taps, mu) if taps else None

    def step(i: int, e: np.ndarray) -> None:
        if nlms is not None:
            p = nlms.predict(i)
            e = e + p * use
            nlms.update(i, e - p, e)
        pred = (arev * buf[:, i : i + pmax]).sum(axis=1)
        buf[:, i + pmax] = e + ((pred + half) >> lpc.Q)

    end = residual_coder.decode(payload, pos, (rows, n), step)
    sig = buf[:, pmax:]
    if chans == 2:
        a, b = sig[0::2], sig[1::2]  # (F, n) each: the two coded signals per frame
        m = mode[:, None]
        side_s = b  # the second slot is S in every mode but LR
        ms_left = ((a << 1) + (side_s & 1) + side_s) >> 1
        left = np.where(m == MS, ms_left, np.where(m == RS, a + side_s, a))
        right = np.where(m == LR, b, np.where(m == RS, a, left - side_s))
        out = np.stack([left.reshape(-1), right.reshape(-1)], axis=1)
    else:
        out = sig.reshape(f, chans, n).transpose(0, 2, 1).reshape(f * n, chans)
    if end != len(payload):
        raise CodecError("audio: trailing bytes after the residual stream")
    return out[:total]
