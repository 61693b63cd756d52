"""Online token models mixed with the LLM's distribution (payload format 3).

Why: the LLM sees at most its window of one segment, and a block is cut into up to 64 segments that each
start cold. Models learnt from the block itself, shared by all segments, know what the LLM cannot: the
names, phrases and repetitions of this very text, seen anywhere earlier in coding order. Measured on the
English Canterbury texts (``tools/llm/mix_lab.py`` on ``tools/llm/mix_dump.py`` records, SmolLM2 int8,
64 segments) this saves 3.0 % over the bare model: alice29 3.6 %, asyoulik 4.0 %, lcet10 4.1 %,
plrabn12 1.9 %.

The models, all updated identically by encoder and decoder after every step:

- token contexts of order 0-3 (the previous k tokens of the same segment): counts of what followed them
  anywhere earlier; order ``k`` predicts ``count(token) / total``;
- a match model: the most recent earlier occurrence (any segment) of the segment's last ``MATCH_MIN``
  tokens predicts the token that followed it, with probability 1;
- a linear mixture ``p = w_L p_LLM + w_M p_match + sum_k w_k p_k`` over the models that predict anything.
  A linear mixture of normalised distributions is normalised, so the coder's row is the LLM's row scaled
  plus a few sparse additions, and the weights' update needs only each model's probability of the coded
  token. Weights are chosen by a small context (match length, highest order seen, that context's count)
  and updated multiplicatively (``w_i *= 1 - LR + LR * p_i / p``, renormalised, floored).

Exactness: everything here is integer counting and IEEE ``+ - * /`` in a fixed order (the LLM row's sum
is taken left to right by a compiled loop), so the mixture adds no dependence beyond the LLM's own
numerics profile.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lmar.errors import CodecError

ORDERS = (0, 1, 2, 3)
MATCH_MIN = 3
#: multiplicative weight update rate and floor (powers of two: exact in binary)
LR = 1.0 / 32
FLOOR = 1.0 / 16384
#: initial weights: the LLM, the match model, then each order
PRIOR = (0.9, 0.02) + (0.02,) * len(ORDERS)
_LEN_EDGES = (1, 4, 8, 16, 32)
_COUNT_EDGES = (1, 3, 10, 40)

_kernel = None


def _row_kernel():  # type: ignore[no-untyped-def]
    """Compiled: each row's sum left to right (float64), then ``out = scale * row / sum + base * counts0``."""
    global _kernel
    if _kernel is None:
        import numba

        @numba.njit(cache=True, fastmath=False)
        def scale_rows(rows, w_llm, base, counts0, out, sums):  # type: ignore[no-untyped-def]
            n, v = rows.shape
            for r in range(n):
                z = 0.0
                for j in range(v):
                    z += np.float64(rows[r, j])
                sums[r] = z
                a = w_llm[r] / z
                b = base[r]
                for j in range(v):
                    out[r, j] = a * np.float64(rows[r, j]) + b * np.float64(counts0[j])

        _kernel = scale_rows
    return _kernel


class _Row(NamedTuple):
    """What one active segment's step was predicted from (kept until its token is learnt)."""

    seg: int
    match: int  #: the match model's token, -1 for none
    tables: list[dict[int, int] | None]  #: order 1.. context tables, None where unseen
    weights: list[float]  #: the weight set, updated in place
    mixed: list[float]  #: the weights over the available models, normalised
    avail: list[bool]


def _bucket(n: int, edges: tuple[int, ...]) -> int:
    for i, e in enumerate(edges):
        if n < e:
            return i
    return len(edges)


class OnlineMixer:
    """State of the online models for one block coded as ``segments`` lockstep segments.

    Per step: :meth:`mix_rows` turns the LLM's rows (unnormalised, one per active segment, in segment
    order) into the rows the coder codes with; after coding, :meth:`update` learns the coded tokens.
    """

    def __init__(self, segments: int, vocab: int) -> None:
        self.vocab = vocab
        self.hist: list[list[int]] = [[] for _ in range(segments)]
        self.counts0 = np.zeros(vocab, np.int64)
        self.total0 = 0
        self.tables: list[dict[int, dict[int, int]]] = [{} for _ in ORDERS[1:]]
        self.match_at: dict[int, tuple[int, int]] = {}
        self.match_ptr: list[tuple[int, int] | None] = [None] * segments
        self.match_len = [0] * segments
        self.weights: dict[int, list[float]] = {}
        self._step: list[_Row] = []

    def _key(self, h: list[int], k: int) -> int:
        """The last ``k`` tokens of ``h`` as one integer (base ``vocab``): smaller and faster than a tuple."""
        key = 0
        for x in h[-k:]:
            key = key * self.vocab + x
        return key

    # -- prediction --------------------------------------------------------------------------------------
    def _contexts(self, s: int) -> tuple[int, list[dict[int, int] | None]]:
        """The segment's predicted match token (-1: none) and its order 1.. tables (None: unseen)."""
        h = self.hist[s]
        m = -1
        ptr = self.match_ptr[s]
        if ptr is not None and ptr[1] < len(self.hist[ptr[0]]):
            m = self.hist[ptr[0]][ptr[1]]
        tabs: list[dict[int, int] | None] = []
        for j, k in enumerate(ORDERS[1:]):
            tabs.append(self.tables[j].get(self._key(h, k)) if len(h) >= k else None)
        return m, tabs

    def prepare(self, active: list[int]) -> None:
        """Choose each active segment's models and weights for this step (before its token is coded)."""
        self._step = []
        for s in active:
            m, tabs = self._contexts(s)
            avail = [True, m >= 0, self.total0 > 0] + [t is not None for t in tabs]
            top = max((i for i, t in enumerate(tabs) if t is not None), default=-1)
            top_total = tabs[top][-1] if top >= 0 else self.total0  # type: ignore[index]
            key = (_bucket(self.match_len[s] if m >= 0 else 0, _LEN_EDGES) * 8 + top + 1) * 8 \
                + _bucket(top_total, _COUNT_EDGES)
            w = self.weights.get(key)
            if w is None:
                w = self.weights[key] = list(PRIOR)
            total = 0.0
            for i, ok in enumerate(avail):
                if ok:
                    total += w[i]
            wa = [w[i] / total if ok else 0.0 for i, ok in enumerate(avail)]
            self._step.append(_Row(s, m, tabs, w, wa, avail))

    def mix_rows(self, rows: np.ndarray, active: list[int]) -> np.ndarray:
        """Float64 rows for the coder: the mixture of each active segment's models (see module doc)."""
        if rows.shape[1] != self.vocab:  # the compiled loop reads counts0 at every column, unchecked
            raise CodecError(f"llm: the model gives {rows.shape[1]} probabilities, the tokenizer has {self.vocab} ids")
        self.prepare(active)
        n = len(active)
        w_llm = np.array([row.mixed[0] for row in self._step], np.float64)
        base = np.array([row.mixed[2] / self.total0 if self.total0 else 0.0 for row in self._step], np.float64)
        out = np.empty(rows.shape, np.float64)
        sums = np.empty(n, np.float64)
        _row_kernel()(np.ascontiguousarray(rows, np.float32), w_llm, base, self.counts0, out, sums)
        for r, (_s, m, tabs, _w, wa, _avail) in enumerate(self._step):
            for i, t in enumerate(tabs):
                if t is not None:
                    toks = np.fromiter((k for k in t if k >= 0), np.int64)
                    vals = np.fromiter((c for k, c in t.items() if k >= 0), np.float64)
                    out[r, toks] += (wa[3 + i] / t[-1]) * vals
            if m >= 0:
                out[r, m] += wa[1]
        self._llm = (rows, sums)
        return out

    # -- learning ----------------------------------------------------------------------------------------
    def update(self, ids: np.ndarray, p_llm: list[float] | None = None) -> list[float]:
        """Learn the tokens just coded (one per active segment, in the order of :meth:`mix_rows`); returns
        the mixture's probability of each. ``p_llm``: the LLM's probability of each coded token (taken
        from the rows :meth:`mix_rows` saw when not given; ``tools/llm/mix_lab.py`` gives them)."""
        coded = []
        if p_llm is None:
            rows, sums = self._llm
            p_llm = [float(rows[r, a]) / float(sums[r]) for r, a in enumerate(ids.tolist())]
        for r, a in enumerate(ids.tolist()):
            s, m, tabs, w, wa, avail = self._step[r]
            probs = [p_llm[r], 1.0 if a == m else 0.0,
                     int(self.counts0[a]) / self.total0 if self.total0 else 0.0]
            probs += [t.get(a, 0) / t[-1] if t is not None else 0.0 for t in tabs]
            p = 0.0
            for i in range(len(wa)):
                p += wa[i] * probs[i]
            coded.append(p)
            if p <= 0.0:  # the LLM's float32 row underflowed at the coded token and no model predicted it
                continue
            total = 0.0
            for i in range(len(w)):
                if avail[i]:
                    w[i] *= 1.0 - LR + LR * probs[i] / p
                total += w[i]
            for i in range(len(w)):
                w[i] = max(w[i] / total, FLOOR)
            total = 0.0
            for i in range(len(w)):
                total += w[i]
            for i in range(len(w)):
                w[i] /= total
        for r, a in enumerate(ids.tolist()):
            self._learn(self._step[r].seg, a, self._step[r].match)
        return coded

    def learn(self, s: int, tokens: list[int]) -> None:
        """Learn ``tokens`` as segment ``s``'s text without coding them (the selection estimate's stand-in
        for format 3's prime)."""
        for a in tokens:
            self._learn(s, a, -1)

    def _learn(self, s: int, a: int, m: int) -> None:
        h = self.hist[s]
        self.counts0[a] += 1
        self.total0 += 1
        for j, k in enumerate(ORDERS[1:]):
            if len(h) < k:
                break
            t = self.tables[j].setdefault(self._key(h, k), {-1: 0})
            t[a] = t.get(a, 0) + 1
            t[-1] += 1
        h.append(a)
        ptr = self.match_ptr[s]
        if m >= 0 and a == m and ptr is not None:
            self.match_ptr[s] = (ptr[0], ptr[1] + 1)
            self.match_len[s] += 1
        else:
            self.match_ptr[s], self.match_len[s] = None, 0
        if len(h) >= MATCH_MIN:
            key = self._key(h, MATCH_MIN)
            if self.match_ptr[s] is None:
                found = self.match_at.get(key)
                if found is not None:
                    self.match_ptr[s], self.match_len[s] = found, MATCH_MIN
            self.match_at[key] = (s, len(h))
