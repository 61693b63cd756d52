"""Adaptive arithmetic coding of prediction residuals, decodable in vectorised steps.

Residuals come as rows (independent frames) of equal length. Each row carries a running integer estimate
``s`` of 16 x mean |residual| (backward adaptive, so it costs nothing to send). From ``s`` we derive a
shift ``k`` and a context: the top part ``q = e >> k`` is range-coded with a per-context table (Laplace
slope x Gaussian core, see :func:`_shape`) that the encoder fits to the actual data and names with two
bytes; the ``k`` low bits are close to uniform and go to separate uniform range-coder streams. Each
context has its own stream, so the decoder takes, at each position, the symbols of all rows in that
context with one call.
Everything the decoder must reproduce is integer arithmetic or basic IEEE operations on fixed inputs.
"""
from __future__ import annotations

import struct
from functools import lru_cache

import numpy as np

from lmar.errors import CodecError
from lmar.plugins.rangecoder import Categorical, RangeCoderError, RangeDecoder, RangeEncoder

RANGE = 256  # q in [-RANGE, RANGE) is coded directly, anything else through the escape symbol
ALPHABET = 2 * RANGE + 1
ESCAPE = 2 * RANGE
NCTX = 24
NTHETA, NRHO = 128, 16  # table grid: Laplace steepness x Gaussian-core width
NGRID = NTHETA * NRHO
UNUSED = 0xFFFF
RATE = 4  # state update: s += (16|e| - s) >> RATE
NCODES = 144  # initial-state codes; code 143 is ~2**35.8, the most a valid residual can need


def corrupt(what: str) -> CodecError:
    """The one-line error for a range coder stream that does not decode (a RangeCoderError underneath)."""
    return CodecError(f"audio: corrupt {what}")


def initial_state(code: np.ndarray) -> np.ndarray:
    """State from its one-byte code (mantissa 4..7, exponent): integer-only so every machine agrees."""
    c = code.astype(np.int64)
    return ((4 + (c & 3)) << (c >> 2)) >> 2


def choose_initial(e: np.ndarray) -> np.ndarray:
    """Per row, the code whose initial state best matches the first residuals."""
    target = 16.0 * np.abs(e[:, :16]).mean(axis=1) if e.shape[1] else np.zeros(e.shape[0])
    table = initial_state(np.arange(NCODES)).astype(np.float64)
    return np.argmin(np.abs(np.log2(table[None, :] + 1) - np.log2(target[:, None] + 1)), axis=1).astype(np.uint8)


_K_STEPS = np.array([256 << j for j in range(48)], dtype=np.int64)


def contexts(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, context) for states ``s``: contexts 0..15 for small states (k = 0), 16..23 scale-normalised.

    k is chosen so that ``s >> k`` lies in [128, 256) once s >= 256; the context is then the top bits of
    that normalised state, so one table serves every loudness.
    """
    k = np.searchsorted(_K_STEPS, s, side="right")
    v = s >> k
    return k, (v >> 4) + (np.minimum(k, 1) << 3)


def _shape(grid: int, scaled: bool) -> np.ndarray:
    """Unnormalised table ``theta**d * rho**(d*d)`` for one grid point, d the distance from the centre.

    theta alone is a two-sided geometric (Laplace); rho adds a Gaussian core, which fits residuals
    whose scale is already tracked: their peak is flatter and their far tail lighter than a Laplace.
    Built from +, *, / and sequential products only, so every machine gets the same floats; values
    that underflow are swamped by the floor added at the end.
    """
    i, j = divmod(grid, NRHO)
    t = (i * i) / 32.0 + 0.125
    theta = t / (t + 1.0)
    s2 = 2.0 ** (j - 3)
    rho = 1.0 if j == 0 else (2.0 * s2) / (2.0 * s2 + 1.0)
    tp = np.concatenate([[1.0], np.cumprod(np.full(RANGE, theta))])
    r2 = np.concatenate([[1.0], np.cumprod(np.full(RANGE - 1, rho * rho))])
    rp = np.concatenate([[1.0], np.cumprod(rho * r2)])
    q = np.arange(-RANGE, RANGE)
    dist = np.maximum(q, -1 - q) if scaled else np.abs(q)  # scaled contexts: symmetric about -1/2
    w = np.empty(ALPHABET)
    w[:ESCAPE] = (tp * rp)[dist] + 2.0**-24
    w[ESCAPE] = 2.0**-14
    return w


@lru_cache(maxsize=None)
def _model_for(ctx: int, grid: int) -> Categorical:
    return Categorical(_shape(grid, ctx >= 16))


@lru_cache(maxsize=2)
def _cost_tables(scaled: bool) -> np.ndarray:
    """-log2 probabilities, (symbol, grid): column access by symbol is what fitting needs."""
    tab = np.stack([_shape(g, scaled) for g in range(NGRID)])
    return np.ascontiguousarray((-np.log2(tab / tab.sum(axis=1, keepdims=True))).T)


def best_grid(hist: np.ndarray, scaled: bool) -> tuple[int, float]:
    """(grid index, cost in bits) of the table that codes symbol counts ``hist`` best."""
    used = np.flatnonzero(hist)
    costs = hist[used] @ _cost_tables(scaled)[used]
    grid = int(np.argmin(costs))
    return grid, float(costs[grid])


def states(e: np.ndarray, s0: np.ndarray) -> np.ndarray:
    """State before each residual (R, N): the recursion runs over positions, vectorised over rows."""
    rows, n = e.shape
    s = np.empty((rows, n), dtype=np.int64)
    cur = s0.astype(np.int64).copy()
    mag = np.abs(e) << 4
    for i in range(n):
        s[:, i] = cur
        cur += (mag[:, i] - cur) >> RATE
    return s


LOW_SPLIT = 12  # low bits go to uniform range-coder symbols of at most this many bits each


def _encode_uniform(values: np.ndarray, bits: np.ndarray) -> np.ndarray:
    enc = RangeEncoder()
    if values.size:
        enc.encode_uniform(values, np.int64(1) << bits)
    return enc.get_compressed()


def _words(payload: bytes, pos: int) -> tuple[np.ndarray, int]:
    (nw,) = struct.unpack_from("<I", payload, pos)
    words = np.frombuffer(payload, "<u4", nw, pos + 4).astype(np.uint32)
    return words, pos + 4 + 4 * nw


def encode(e: np.ndarray) -> bytes:
    """Code residual rows ``e`` (R, N) int64."""
    rows, n = e.shape
    s0 = choose_initial(e)
    s = states(e, initial_state(s0))
    k, ctx = contexts(s)
    q = e >> k
    low = e - (q << k)
    sym = q + RANGE
    esc = (q < -RANGE) | (q >= RANGE)
    sym[esc] = ESCAPE
    # position-major order: the decoder walks positions, and within one position rows ascending
    sym_f, ctx_f, k_f, low_f = sym.T.ravel(), ctx.T.ravel(), k.T.ravel(), low.T.ravel()
    escapes = q.T.ravel()[esc.T.ravel()]
    parts = [struct.pack("<II", rows, n), s0.tobytes()]
    for c in range(NCTX):
        sel = sym_f[ctx_f == c]
        if sel.size == 0:
            parts.append(struct.pack("<HI", UNUSED, 0))
            continue
        hist = np.bincount(sel, minlength=ALPHABET).astype(np.float64)
        grid, _ = best_grid(hist, c >= 16)
        enc = RangeEncoder()
        enc.encode_table(sel, _model_for(c, grid))
        words = enc.get_compressed()
        parts.append(struct.pack("<HI", grid, len(words)) + words.astype("<u4").tobytes())
    if e.size and np.abs(e).max() >= 2**31:  # keeps states below 2**35, so low-bit symbols stay small
        raise CodecError("audio: residual out of range")
    parts.append(struct.pack("<I", escapes.size) + escapes.astype("<i4").tobytes())
    has_low = k_f > 0
    lo_bits = np.minimum(k_f[has_low], LOW_SPLIT)
    low_sel = low_f[has_low]
    hi_sel = k_f[has_low] > LOW_SPLIT
    for words in (_encode_uniform(low_sel & ((1 << lo_bits) - 1), lo_bits),
                  _encode_uniform(low_sel[hi_sel] >> LOW_SPLIT, k_f[has_low][hi_sel] - LOW_SPLIT)):
        parts.append(struct.pack("<I", words.size) + words.astype("<u4").tobytes())
    return b"".join(parts)


def decode(payload: bytes, pos: int, shape: tuple[int, int], lpc_step) -> int:  # type: ignore[no-untyped-def]
    """Decode residuals position by position, handing each position's residuals (R,) to ``lpc_step``.

    ``shape`` is the (rows, positions) the caller expects. ``lpc_step(i, e_i)`` reconstructs samples
    (it owns the prediction state). Returns the end position.
    """
    try:
        rows, n = struct.unpack_from("<II", payload, pos)
        if (rows, n) != shape:
            raise CodecError("audio: residual stream shape does not match the side information")
        pos += 8
        codes = np.frombuffer(payload, np.uint8, rows, pos)
        if codes.max(initial=0) >= NCODES:
            raise CodecError("audio: bad initial state")
        s = initial_state(codes)
        pos += rows
        decoders: dict[int, tuple] = {}  # type: ignore[type-arg]
        for c in range(NCTX):
            grid, nw = struct.unpack_from("<HI", payload, pos)
            pos += 6
            if grid != UNUSED:
                if grid >= NGRID:
                    raise CodecError("audio: bad context table")
                words = np.frombuffer(payload, "<u4", nw, pos).astype(np.uint32)
                decoders[c] = (RangeDecoder(words), _model_for(c, grid))
            pos += 4 * nw
        (nesc,) = struct.unpack_from("<I", payload, pos)
        escapes = np.frombuffer(payload, "<i4", nesc, pos + 4).astype(np.int64)
        pos += 4 + 4 * nesc
        lo_words, pos = _words(payload, pos)
        hi_words, pos = _words(payload, pos)
    except (struct.error, ValueError):
        raise CodecError("audio: truncated residual stream") from None
    lo_dec = RangeDecoder(lo_words)
    hi_dec = RangeDecoder(hi_words)
    low = np.zeros(rows, dtype=np.int64)
    esc_pos = 0
    q = np.empty(rows, dtype=np.int64)
    for i in range(n):
        k, ctx = contexts(s)  # s stays in [0, 2**35) while residuals stay below 2**31 (checked below)
        order = np.argsort(ctx, kind="stable")
        got = []
        for c, cnt in enumerate(np.bincount(ctx, minlength=NCTX).tolist()):
            if cnt:
                entry = decoders.get(c)
                if entry is None:
                    raise CodecError("audio: symbol in an unused context")
                try:
                    got.append(entry[0].decode_table(entry[1], cnt))
                except RangeCoderError:
                    raise corrupt("residual stream") from None
        q[order] = got[0] if len(got) == 1 else np.concatenate(got)
        esc = q == ESCAPE
        q -= RANGE
        if esc.any():
            m = int(esc.sum())
            if esc_pos + m > escapes.size:
                raise CodecError("audio: escape stream exhausted")
            q[esc] = escapes[esc_pos : esc_pos + m]
            esc_pos += m
        low[:] = 0
        sel = np.flatnonzero(k)
        if sel.size:
            ks = k[sel]
            try:
                part = lo_dec.decode_uniform(np.int64(1) << np.minimum(ks, LOW_SPLIT))
                wide = ks > LOW_SPLIT
                if wide.any():
                    part[wide] |= hi_dec.decode_uniform(np.int64(1) << (ks[wide] - LOW_SPLIT)) << LOW_SPLIT
            except RangeCoderError:
                raise corrupt("low-bit stream") from None
            low[sel] = part
        e = (q << k) + low
        mag = np.abs(e)
        if mag.max() >= 1 << 31:  # the encoder never writes such residuals
            raise CodecError("audio: residual out of range")
        s = s + (((mag << 4) - s) >> RATE)
        lpc_step(i, e)
    return pos
