"""Range coding, bit for bit the same as constriction's ``stream.queue`` RangeEncoder / RangeDecoder.

Why our own: constriction ships no wheel (and no sdist) for Linux aarch64, so depending on it made lmar
uninstallable there. Archives written with constriction must keep decoding, and new ones must stay
byte-identical, so this is not "a" range coder but constriction's: the same state (64-bit ``lower`` and
``range``, 32-bit words, carries held back as "inverted" words), the same seal words at the end, and the
same integer frequencies at 24-bit precision for every model lmar uses:

- :class:`Categorical` -- ``constriction.stream.model.Categorical(p, perfect=False)``: a fixed table;
- :meth:`RangeEncoder.encode_rows` -- ``Categorical(perfect=False)`` as a family, one float32 or
  float64 row of unnormalised probabilities per symbol (the arithmetic is done in the row's float type);
- :meth:`RangeEncoder.encode_uniform` -- ``Uniform()`` as a family, one alphabet size per symbol;
- :meth:`RangeEncoder.encode_bernoulli` -- ``Bernoulli(perfect=False)`` as a family, one P(1) per bit.

"Fast" quantisation (constriction's ``from_floating_point_probabilities_fast``): with ``n`` symbols,
``scale = float(2**24 - n) / sum(p)`` (the sum taken left to right in the row's float type), symbol ``i``
starts at ``int(cum_i * scale) + i`` where ``cum_i`` is the left-to-right float sum of ``p[:i]``, and
the last symbol ends at ``2**24``. Only IEEE basic operations in a fixed order are used and numba's
fastmath stays off, so every CPU computes the same integers. The kernels are compiled once
(``cache=True``) and return how many symbols they coded, so errors become one-line exceptions here.

Where constriction would raise or panic (a symbol outside the alphabet, probabilities that do not
normalise, a zero-width symbol, undecodable data) this raises :class:`RangeCoderError`; in addition,
negative probabilities are refused (constriction's fast path would quietly saturate them).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from lmar.errors import CodecError

PRECISION = 24
ONE = 1 << PRECISION  # the total of every model's integer frequencies
MAX_SYMBOLS = ONE - 2  # constriction's limit for categorical models (n < 2**24 - 1)

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_PREC = np.uint64(PRECISION)
_WBITS = np.uint64(32)
_WMASK = np.uint64(0xFFFFFFFF)
_MIN_RANGE = np.uint64(1 << 32)  # invariant: range >= 2**(64 - 32) between symbols
_FULL = np.uint64(0xFFFFFFFFFFFFFFFF)
_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1

# encoder state (uint64): lower, range, held (count of carry-pending "inverted" words), first held word,
# words written to the buffer
_LOWER, _RANGE, _HELD, _HELD_WORD, _WRITTEN = range(5)
# decoder state (uint64): lower, range, point, next word to read
_POINT, _POS = 2, 3


class RangeCoderError(CodecError):
    """A symbol or model the coder cannot take, or data that does not decode."""


# -- compiled core ---------------------------------------------------------------------------------------
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
def _quantise(p: np.ndarray, fw, tiny, huge, cdf: np.ndarray) -> int:  # type: ignore[no-untyped-def]
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
def _enc_table(st: np.ndarray, out: np.ndarray, symbols: np.ndarray, cdf: np.ndarray) -> int:
    n = cdf.shape[0] - 1
    for i in range(symbols.shape[0]):
        s = symbols[i]
        if s < 0 or s >= n:
            return i
        _encode_one(st, out, np.uint64(cdf[s]), np.uint64(cdf[s + 1] - cdf[s]))
    return symbols.shape[0]


@njit(cache=True)
def _dec_table(st: np.ndarray, words: np.ndarray, cdf: np.ndarray, out: np.ndarray) -> int:
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
def _enc_uniform(st: np.ndarray, out: np.ndarray, symbols: np.ndarray, sizes: np.ndarray) -> int:
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
def _dec_uniform(st: np.ndarray, words: np.ndarray, sizes: np.ndarray, out: np.ndarray) -> int:
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
def _enc_rows(st: np.ndarray, out: np.ndarray, symbols: np.ndarray, probs: np.ndarray,
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
def _dec_rows(st: np.ndarray, words: np.ndarray, probs: np.ndarray, fw, tiny, huge,
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
def _enc_bernoulli(st: np.ndarray, out: np.ndarray, bits: np.ndarray, p: np.ndarray) -> int:
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
def _dec_bernoulli(st: np.ndarray, words: np.ndarray, p: np.ndarray, out: np.ndarray) -> int:
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


# -- Python side -----------------------------------------------------------------------------------------
def _float_rows(probabilities: np.ndarray, ndim: int) -> np.ndarray:
    p = np.asarray(probabilities)
    if p.dtype not in (np.float32, np.float64):
        raise RangeCoderError(f"range coder: probabilities must be float32 or float64, not {p.dtype}")
    if p.ndim != ndim or not 2 <= p.shape[-1] <= MAX_SYMBOLS:
        raise RangeCoderError(f"range coder: need a {ndim}-d table of 2 to {MAX_SYMBOLS} probabilities per row")
    return np.ascontiguousarray(p)


def _float_params(p: np.ndarray) -> tuple:  # type: ignore[type-arg]
    """(2**24 - n, smallest normal, largest finite) in the table's own float type."""
    f = p.dtype.type
    info = np.finfo(p.dtype)
    return f(ONE - p.shape[-1]), f(info.tiny), f(info.max)


def _ints(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int64).reshape(-1)


class Categorical:
    """A fixed table: ``constriction.stream.model.Categorical(probabilities, perfect=False)``.

    Build it once and code many symbols with it; ``cdf`` holds the n + 1 integer cumulatives.
    """

    __slots__ = ("cdf",)

    def __init__(self, probabilities: np.ndarray) -> None:
        p = _float_rows(probabilities, 1)
        cdf = np.empty(p.shape[0] + 1, dtype=np.int64)
        if not _quantise(p, *_float_params(p), cdf):
            raise RangeCoderError("range coder: probability table does not normalise (negative, NaN, zero or infinite)")
        self.cdf = cdf

    @property
    def size(self) -> int:
        return self.cdf.shape[0] - 1


class RangeEncoder:
    """constriction's ``RangeEncoder``: symbols go in, uint32 words come out (:meth:`get_compressed`)."""

    def __init__(self) -> None:
        self._st = np.zeros(5, dtype=np.uint64)
        self._st[_RANGE] = _FULL
        self._buf = np.zeros(64, dtype=np.uint32)

    def _reserve(self, count: int) -> np.ndarray:
        # each symbol writes at most one word beyond the ones already held back
        need = int(self._st[_WRITTEN]) + int(self._st[_HELD]) + count + 4
        if need > self._buf.shape[0]:
            buf = np.zeros(max(need, 2 * self._buf.shape[0]), dtype=np.uint32)
            buf[: self._buf.shape[0]] = self._buf
            self._buf = buf
        return self._buf

    @staticmethod
    def _check(done: int, total: int, what: str) -> None:
        if done != total:
            raise RangeCoderError(f"range coder: cannot encode {what} {done} (symbol outside its model, or bad model)")

    def encode_table(self, symbols: np.ndarray, model: Categorical) -> None:
        """Symbols i.i.d. from one fixed table."""
        s = _ints(symbols)
        self._check(_enc_table(self._st, self._reserve(s.shape[0]), s, model.cdf), s.shape[0], "symbol")

    def encode_uniform(self, symbols: np.ndarray, sizes: np.ndarray | int) -> None:
        """Each symbol uniform over ``range(size)``, 2 <= size <= 2**24 (``Uniform()`` family)."""
        s = _ints(symbols)
        z = np.broadcast_to(np.asarray(sizes, dtype=np.int64), s.shape)
        self._check(_enc_uniform(self._st, self._reserve(s.shape[0]), s, np.ascontiguousarray(z)), s.shape[0],
                    "uniform symbol")

    def encode_rows(self, symbols: np.ndarray, probabilities: np.ndarray) -> None:
        """Symbol ``i`` from row ``i`` of unnormalised probabilities (``Categorical(perfect=False)`` family)."""
        s = _ints(symbols)
        p = _float_rows(probabilities, 2)
        if p.shape[0] != s.shape[0]:
            raise RangeCoderError("range coder: one probability row per symbol needed")
        self._check(_enc_rows(self._st, self._reserve(s.shape[0]), s, p, *_float_params(p)), s.shape[0], "symbol")

    def encode_bernoulli(self, bits: np.ndarray, p1: np.ndarray) -> None:
        """Bit ``i`` with P(1) = ``p1[i]`` (``Bernoulli(perfect=False)`` family, float64 arithmetic)."""
        b = _ints(bits)
        p = np.ascontiguousarray(p1, dtype=np.float64).reshape(-1)
        if p.shape[0] != b.shape[0]:
            raise RangeCoderError("range coder: one probability per bit needed")
        self._check(_enc_bernoulli(self._st, self._reserve(b.shape[0]), b, p), b.shape[0], "bit")

    def get_compressed(self) -> np.ndarray:
        """The words so far plus the seal words that pin the final range; the encoder can go on afterwards."""
        lower, rng, held, held_word, written = (int(v) for v in self._st)
        body = self._buf[:written]
        if rng == _M64:  # nothing encoded yet: no words at all
            return body.copy()
        point = (lower + _M32) & _M64
        seal: list[int] = []
        if held:
            wrapped = point < lower
            seal.append((held_word + 1) & _M32 if wrapped else held_word)
            seal += [0 if wrapped else _M32] * (held - 1)
        point_word = point >> 32
        seal.append(point_word)
        if ((lower + rng) & _M64) >> 32 == point_word:
            seal.append(0)
        return np.concatenate([body, np.array(seal, dtype=np.uint32)])


class RangeDecoder:
    """constriction's ``RangeDecoder`` over uint32 words; decode with the models the encoder used, in order."""

    def __init__(self, words: np.ndarray) -> None:
        self._words = np.ascontiguousarray(words, dtype=np.uint32).reshape(-1)
        k = min(2, self._words.shape[0])
        point = 0
        for i in range(k):
            point = (point << 32) | int(self._words[i])
        if k == 1:
            point <<= 32
        self._st = np.array([0, _M64, point, k], dtype=np.uint64)

    @staticmethod
    def _check(done: int, total: int) -> None:
        if done != total:
            raise RangeCoderError(f"range coder: invalid data or model at symbol {done} of {total}")

    def decode_table(self, model: Categorical, count: int) -> np.ndarray:
        out = np.empty(count, dtype=np.int64)
        self._check(_dec_table(self._st, self._words, model.cdf, out), count)
        return out

    def decode_uniform(self, sizes: np.ndarray) -> np.ndarray:
        z = _ints(sizes)
        out = np.empty(z.shape[0], dtype=np.int64)
        self._check(_dec_uniform(self._st, self._words, z, out), z.shape[0])
        return out

    def decode_rows(self, probabilities: np.ndarray) -> np.ndarray:
        p = _float_rows(probabilities, 2)
        out = np.empty(p.shape[0], dtype=np.int64)
        self._check(_dec_rows(self._st, self._words, p, *_float_params(p), out), p.shape[0])
        return out

    def decode_bernoulli(self, p1: np.ndarray) -> np.ndarray:
        p = np.ascontiguousarray(p1, dtype=np.float64).reshape(-1)
        out = np.empty(p.shape[0], dtype=np.int64)
        self._check(_dec_bernoulli(self._st, self._words, p, out), p.shape[0])
        return out
