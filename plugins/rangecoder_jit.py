"""The compiled kernels of :mod:`lmar.plugins.rangecoder` (numba, fastmath off), imported on first use.

Why a module of their own: importing numba costs ~0.5 s, which commands that code nothing (``lmar list``)
should not pay; :mod:`lmar.plugins.rangecoder` imports this module the first time a coder needs it.
Every kernel returns how many symbols it coded, so the caller turns a short count into one-line errors.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from lmar.plugins.rangecoder import ONE, PRECISION

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_PREC = np.uint64(PRECISION)
_WBITS = np.uint64(32)
_WMASK = np.uint64(0xFFFFFFFF)
_MIN_RANGE = np.uint64(1 << 32)  # invariant: range >= 2**(64 - 32) between symbols

# encoder state ``st`` (uint64): lower, range, held (count of carry-pending "inverted" words), first held
# word, words written to ``out``; decoder state: lower, range, point, next word of ``words`` to read


@njit(inline="always")
def _encode_one(st: np.ndarray, out: np.ndarray, left: np.uint64, prob: np.uint64) -> None:
    """constriction ``RangeEncoder::encode_symbol`` for a symbol occupying [left, left + prob)."""
    lower = st[0]
    scale = st[1] >> _PREC
    rng = scale * prob
    new_lower = lower + scale * left
    held = st[2]
    pos = np.int64(st[4])
    if held != _U0 and new_lower + rng > new_lower:  # the pending carry is resolved: flush held words
        if new_lower < lower:  # the addition wrapped: the carry goes into the held words
            first = (st[3] + _U1) & _WMASK
            rest = _U0
        else:
            first = st[3]
            rest = _WMASK
        out[pos] = first
        pos += 1
        for _ in range(1, np.int64(held)):
            out[pos] = rest
            pos += 1
        held = _U0
    lower = new_lower
    if rng < _MIN_RANGE:
        rng = rng << _WBITS
        word = lower >> _WBITS
        lower = lower << _WBITS
        if held != _U0:
            held += _U1
        elif lower + rng > lower:
            out[pos] = word
            pos += 1
        else:  # the interval now straddles a carry: hold the word back
            held = _U1
            st[3] = word
    st[0] = lower
    st[1] = rng
    st[2] = held
    st[4] = np.uint64(pos)


@njit(inline="always")
def _quantile(st: np.ndarray) -> np.int64:
    """The decoder's position inside the current range, in 1/2**24 units; -1 for invalid data."""
    scale = st[1] >> _PREC
    q = (st[2] - st[0]) // scale
    if q >= np.uint64(ONE):
        return np.int64(-1)
    return np.int64(q)


@njit(inline="always")
def _decode_advance(st: np.ndarray, words: np.ndarray, left: np.uint64, prob: np.uint64) -> None:
    """constriction ``RangeDecoder::decode_symbol`` after the model named the symbol [left, left + prob)."""
    scale = st[1] >> _PREC
    lower = st[0] + scale * left
    rng = scale * prob
    if rng < _MIN_RANGE:
        lower = lower << _WBITS
        rng = rng << _WBITS
        point = st[2] << _WBITS
        pos = np.int64(st[3])
        if pos < words.shape[0]:  # past the end the point is shifted in with zeros, as constriction does
            point = point | np.uint64(words[pos])
            st[3] = np.uint64(pos + 1)
        st[2] = point
    st[0] = lower
    st[1] = rng


@njit(inline="always")
def _normaliser(row: np.ndarray, tiny, huge):  # type: ignore[no-untyped-def]
    """(left-to-right float sum of a probability row, whether it normalises); stays in the row's type."""
    norm = row[0] - row[0]
    for j in range(row.shape[0]):
        v = row[j]
        if v < 0:
            return norm, False
        norm = norm + v
    return norm, norm >= tiny and norm <= huge  # constriction: normal and positive (NaN fails too)


@njit(cache=True)
def quantise(p: np.ndarray, fw, tiny, huge, cdf: np.ndarray) -> int:  # type: ignore[no-untyped-def]
    """Left cumulatives of a fixed table into ``cdf`` (n + 1 entries); 1 when valid, 0 when not."""
    n = p.shape[0]
    norm, ok = _normaliser(p, tiny, huge)
    if not ok:
        return 0
    scale = fw / norm
    cum = norm - norm
    for i in range(n):
        cdf[i] = np.int64(cum * scale) + i
        cum = cum + p[i]
    cdf[n] = ONE
    for i in range(n):
        if cdf[i + 1] <= cdf[i]:
            return 0
    return 1


@njit(cache=True)
def enc_table(st: np.ndarray, out: np.ndarray, symbols: np.ndarray, cdf: np.ndarray) -> int:
    n = cdf.shape[0] - 1
    for i in range(symbols.shape[0]):
        s = symbols[i]
        if s < 0 or s >= n:
            return i
        _encode_one(st, out, np.uint64(cdf[s]), np.uint64(cdf[s + 1] - cdf[s]))
    return symbols.shape[0]


@njit(cache=True)
def dec_table(st: np.ndarray, words: np.ndarray, cdf: np.ndarray, out: np.ndarray) -> int:
    n = cdf.shape[0] - 1
    for i in range(out.shape[0]):
        q = _quantile(st)
        if q < 0:
            return i
        lo, hi = 0, n  # cdf[lo] <= q < cdf[hi]; cdf[n] = 2**24 > q
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if cdf[mid] <= q:
                lo = mid
            else:
                hi = mid
        _decode_advance(st, words, np.uint64(cdf[lo]), np.uint64(cdf[lo + 1] - cdf[lo]))
        out[i] = lo
    return out.shape[0]


@njit(cache=True)
def enc_uniform(st: np.ndarray, out: np.ndarray, symbols: np.ndarray, sizes: np.ndarray) -> int:
    for i in range(symbols.shape[0]):
        s, size = symbols[i], sizes[i]
        if size < 2 or size > ONE or s < 0 or s >= size:
            return i
        per = ONE // size
        left = s * per
        prob = per if s < size - 1 else ONE - left  # the last symbol takes the rounding remainder
        _encode_one(st, out, np.uint64(left), np.uint64(prob))
    return symbols.shape[0]


@njit(cache=True)
def dec_uniform(st: np.ndarray, words: np.ndarray, sizes: np.ndarray, out: np.ndarray) -> int:
    for i in range(sizes.shape[0]):
        size = sizes[i]
        if size < 2 or size > ONE:
            return i
        q = _quantile(st)
        if q < 0:
            return i
        per = ONE // size
        s = q // per
        if s < size - 1:
            left, prob = s * per, per
        else:
            s = size - 1
            left = s * per
            prob = ONE - left
        _decode_advance(st, words, np.uint64(left), np.uint64(prob))
        out[i] = s
    return sizes.shape[0]


@njit(cache=True)
def enc_rows(st: np.ndarray, out: np.ndarray, symbols: np.ndarray, probs: np.ndarray,
              fw, tiny, huge) -> int:  # type: ignore[no-untyped-def]
    n = probs.shape[1]
    for r in range(symbols.shape[0]):
        s = symbols[r]
        if s < 0 or s >= n:
            return r
        row = probs[r]
        norm, ok = _normaliser(row, tiny, huge)
        if not ok:
            return r
        scale = fw / norm
        cum = norm - norm
        for j in range(s):
            cum = cum + row[j]
        left = np.int64(cum * scale) + s
        right = ONE if s == n - 1 else np.int64((cum + row[s]) * scale) + s + 1
        if right <= left or right > ONE:
            return r
        _encode_one(st, out, np.uint64(left), np.uint64(right - left))
    return symbols.shape[0]


@njit(cache=True)
def dec_rows(st: np.ndarray, words: np.ndarray, probs: np.ndarray, fw, tiny, huge,
              out: np.ndarray) -> int:  # type: ignore[no-untyped-def]
    n = probs.shape[1]
    for r in range(probs.shape[0]):
        row = probs[r]
        norm, ok = _normaliser(row, tiny, huge)
        if not ok:
            return r
        q = _quantile(st)
        if q < 0:
            return r
        scale = fw / norm
        cum = norm - norm
        left = np.int64(0)
        right = np.int64(ONE)
        s = n - 1
        for j in range(n - 1):  # the first symbol whose right end lies past q
            cum = cum + row[j]
            rj = np.int64(cum * scale) + j + 1
            if rj > q:
                s = j
                right = rj
                break
            left = rj
        if right <= left:
            return r
        _decode_advance(st, words, np.uint64(left), np.uint64(right - left))
        out[r] = s
    return probs.shape[0]


@njit(inline="always")
def _bernoulli_split(p: float) -> np.int64:
    """Left end of symbol 1 for ``Bernoulli(p, perfect=False)``, i.e. the fast table of [1 - p, p]; -1 if invalid."""
    q0 = 1.0 - p
    if not (q0 >= 0.0 and p >= 0.0):
        return np.int64(-1)
    norm = q0 + p
    if not (norm >= 2.2250738585072014e-308 and norm <= 1.7976931348623157e308):
        return np.int64(-1)
    return np.int64(q0 * (float(ONE - 2) / norm)) + 1


@njit(cache=True)
def enc_bernoulli(st: np.ndarray, out: np.ndarray, bits: np.ndarray, p: np.ndarray) -> int:
    for i in range(bits.shape[0]):
        b = bits[i]
        c1 = _bernoulli_split(p[i])
        if c1 < 0 or b < 0 or b > 1:
            return i
        if b:
            _encode_one(st, out, np.uint64(c1), np.uint64(ONE - c1))
        else:
            _encode_one(st, out, _U0, np.uint64(c1))
    return bits.shape[0]


@njit(cache=True)
def dec_bernoulli(st: np.ndarray, words: np.ndarray, p: np.ndarray, out: np.ndarray) -> int:
    for i in range(p.shape[0]):
        c1 = _bernoulli_split(p[i])
        if c1 < 0:
            return i
        q = _quantile(st)
        if q < 0:
            return i
        if q >= c1:
            _decode_advance(st, words, np.uint64(c1), np.uint64(ONE - c1))
            out[i] = 1
        else:
            _decode_advance(st, words, _U0, np.uint64(c1))
            out[i] = 0
    return p.shape[0]
