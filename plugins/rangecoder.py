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
fastmath stays off, so every CPU computes the same integers. The kernels (:mod:`.rangecoder_jit`) are
compiled once (``cache=True``) and imported on first use, so importing this module does not import numba.

Where constriction would raise or panic (a symbol outside the alphabet, probabilities that do not
normalise, a zero-width symbol, undecodable data) this raises :class:`RangeCoderError`; in addition,
negative probabilities are refused (constriction's fast path would quietly saturate them).
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from lmar.errors import CodecError

PRECISION = 24
ONE = 1 << PRECISION  # the total of every model's integer frequencies
MAX_SYMBOLS = ONE - 2  # constriction's limit for categorical models (n < 2**24 - 1)

_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1
_RANGE, _HELD, _WRITTEN = 1, 2, 4  # encoder state fields (see rangecoder_jit)
_jit: ModuleType | None = None


class RangeCoderError(CodecError):
    """A symbol or model the coder cannot take, or data that does not decode."""


def _k() -> ModuleType:
    """The compiled kernels, imported on first use (numba costs ~0.5 s to import)."""
    global _jit
    if _jit is None:
        from lmar.plugins import rangecoder_jit

        _jit = rangecoder_jit
    return _jit


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
        if not _k().quantise(p, *_float_params(p), cdf):
            raise RangeCoderError("range coder: probability table does not normalise (negative, NaN, zero or infinite)")
        self.cdf = cdf

    @property
    def size(self) -> int:
        return self.cdf.shape[0] - 1


class RangeEncoder:
    """constriction's ``RangeEncoder``: symbols go in, uint32 words come out (:meth:`get_compressed`)."""

    def __init__(self) -> None:
        self._st = np.zeros(5, dtype=np.uint64)
        self._st[_RANGE] = _M64
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
        self._check(_k().enc_table(self._st, self._reserve(s.shape[0]), s, model.cdf), s.shape[0], "symbol")

    def encode_uniform(self, symbols: np.ndarray, sizes: np.ndarray | int) -> None:
        """Each symbol uniform over ``range(size)``, 2 <= size <= 2**24 (``Uniform()`` family)."""
        s = _ints(symbols)
        z = np.broadcast_to(np.asarray(sizes, dtype=np.int64), s.shape)
        self._check(_k().enc_uniform(self._st, self._reserve(s.shape[0]), s, np.ascontiguousarray(z)), s.shape[0],
                    "uniform symbol")

    def encode_rows(self, symbols: np.ndarray, probabilities: np.ndarray) -> None:
        """Symbol ``i`` from row ``i`` of unnormalised probabilities (``Categorical(perfect=False)`` family)."""
        s = _ints(symbols)
        p = _float_rows(probabilities, 2)
        if p.shape[0] != s.shape[0]:
            raise RangeCoderError("range coder: one probability row per symbol needed")
        self._check(_k().enc_rows(self._st, self._reserve(s.shape[0]), s, p, *_float_params(p)), s.shape[0], "symbol")

    def encode_bernoulli(self, bits: np.ndarray, p1: np.ndarray) -> None:
        """Bit ``i`` with P(1) = ``p1[i]`` (``Bernoulli(perfect=False)`` family, float64 arithmetic)."""
        b = _ints(bits)
        p = np.ascontiguousarray(p1, dtype=np.float64).reshape(-1)
        if p.shape[0] != b.shape[0]:
            raise RangeCoderError("range coder: one probability per bit needed")
        self._check(_k().enc_bernoulli(self._st, self._reserve(b.shape[0]), b, p), b.shape[0], "bit")

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
        self._check(_k().dec_table(self._st, self._words, model.cdf, out), count)
        return out

    def decode_uniform(self, sizes: np.ndarray) -> np.ndarray:
        z = _ints(sizes)
        out = np.empty(z.shape[0], dtype=np.int64)
        self._check(_k().dec_uniform(self._st, self._words, z, out), z.shape[0])
        return out

    def decode_rows(self, probabilities: np.ndarray) -> np.ndarray:
        p = _float_rows(probabilities, 2)
        out = np.empty(p.shape[0], dtype=np.int64)
        self._check(_k().dec_rows(self._st, self._words, p, *_float_params(p), out), p.shape[0])
        return out

    def decode_bernoulli(self, p1: np.ndarray) -> np.ndarray:
        p = np.ascontiguousarray(p1, dtype=np.float64).reshape(-1)
        out = np.empty(p.shape[0], dtype=np.int64)
        self._check(_k().dec_bernoulli(self._st, self._words, p, out), p.shape[0])
        return out
