"""Offline token-level mixing experiments on ``mix_dump.py`` records (issue 15, design (a)).

Replays each file's tokens in the codec's coding order (step by step, segments in order) and prints the
ideal code length (bytes and bits/byte; an escaped byte costs 8 bits) of each variant, per file and in
total. Online models are learnt from the data coded so far and shared by all segments:

- ``llm``: the bare model (what payload format 2 codes, before the range coder's rounding);
- ``online``: the codec's own :class:`lmar.plugins.llmcore.online.OnlineMixer` (payload format 3), run
  step by step as the codec runs it; the reference for what ships;
- ``mixmw``: the same design inlined here (orders ``ORDERS``, match model, multiplicative weights), with
  its knobs (``MW_LR``, ``ORDERS``, ``CONF``, ``STEP_BUCKET``) at the top for experiments; it updates
  after every token rather than every step, so it reads slightly better than ``online``;
- ``mix``: the same models, softmax weights learnt by gradient descent (``--lr``);
- ``bin``: a binary decision "the next token is the candidate" (the match model's token, else the most
  frequent continuation), logistic mixing of the LLM's probability of it with adaptive match and n-gram
  statistics, then the LLM's row without the candidate (``mixbin``: the same over ``mix``'s mixture);
  the LLM's probability of a candidate outside the recorded top 32 is approximated;
- ``temp``: the LLM's row at the temperature that coded the recent tokens of the same class best.

Findings (2026-12-03, SmolLM2 int8, 64 segments, window 512, alice29/asyoulik): ``mixmw`` -3.7/-4.4 %,
``mix`` -3.4/-4.0 % at its best rate, ``mixbin`` 0.3-0.4 % better than ``mix``, ``bin`` alone -2.0/-3.7 %,
``temp`` nothing; order 4 and 6 contexts, a weight context by the LLM's confidence or by the position in
the segment: within 0.2 %.

    LMAR_LOAD_PLUGINS= .venv/bin/python tools/llm/mix_lab.py work-data/mix/*.npz --variants llm,online
"""
from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

MATCH_MIN = 3
CONF = False
STEP_BUCKET = False
MW_LR = 0.05


def _step_bucket(t: int) -> int:
    return 0 if t < 32 else 1 if t < 128 else 2 if t < 512 else 3
ORDERS = (0, 1, 2, 3)


def _len_bucket(n: int) -> int:
    return 0 if n == 0 else 1 if n < 4 else 2 if n < 8 else 3 if n < 16 else 4 if n < 32 else 5


def _count_bucket(n: int) -> int:
    return 0 if n == 0 else 1 if n < 3 else 2 if n < 10 else 3 if n < 40 else 4


class Mixer:
    """Softmax-weighted linear mixture with weight sets selected by a context number."""

    def __init__(self, n_inputs: int, lr: float, prior: list[float]) -> None:
        self.n, self.lr = n_inputs, lr
        self.sets: dict[int, np.ndarray] = defaultdict(lambda: np.array(prior, np.float64))

    def mix(self, ctx: int, probs: np.ndarray, avail: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        th = self.sets[ctx]
        e = np.where(avail, np.exp(th - th[avail].max()), 0.0)
        w = e / e.sum()
        return float(w @ probs), w, th

    def update(self, th: np.ndarray, w: np.ndarray, probs: np.ndarray, p: float, avail: np.ndarray) -> None:
        g = w * (probs - p) / max(p, 1e-12)  # d ln p / d theta
        th += self.lr * np.where(avail, g, 0.0)


def _st(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _sq(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))


class Candidate:
    """Binary decision "the next token is the candidate" (the match model's token, else the most frequent
    token after the highest-order context), logistic mixing of the LLM's probability of it with adaptive
    match and n-gram statistics; on "no", the LLM's row without the candidate, renormalised."""

    def __init__(self, lr: float = 0.02) -> None:
        self.lr = lr
        self.tables: dict = defaultdict(lambda: [0.5, 1.0])
        self.w: dict = defaultdict(lambda: np.array([1.0, 0.3, 0.3, 0.0]))

    def _p(self, key) -> float:
        n1, n = self.tables[key]
        return n1 / n

    def _learn(self, key, y: int) -> None:
        t = self.tables[key]
        t[0] += y
        t[1] += 1
        if t[1] > 255:
            t[0] *= 0.5
            t[1] *= 0.5

    def code(self, i, s, a, m_tok, mlen, counts, h, top_id, top_lp, lp_a, top_order) -> float:
        cand, src = m_tok, 0
        ngram_key = None
        for j in range(len(ORDERS) - 1, -1, -1):
            k = ORDERS[j]
            if len(h) < k:
                continue
            tab = counts[j].get(tuple(h[-k:]) if k else ())
            if tab:
                best = max((c for c in tab if c != -1), key=lambda c: (tab[c], -c))
                if cand < 0:
                    cand, src = best, 1
                nc = tab.get(cand, 0)
                ngram_key = (k, min(nc, 15), min(tab[-1], 31) // 4)
                break
        if cand < 0:
            return -lp_a
        hit = np.nonzero(top_id == cand)[0]
        lpc = float(top_lp[hit[0]]) if len(hit) else min(float(top_lp.min()), lp_a if a == cand else 0.0) - 1.0
        if a == cand:
            lpc = lp_a
        pc = 2.0 ** lpc
        mkey = (src, min(mlen, 31))
        x = np.array([_st(pc), _st(self._p(mkey)), _st(self._p(ngram_key)) if ngram_key else 0.0, 0.3])
        wkey = (src, min(mlen, 16) // 4, top_order, min(3, int(-lpc)))
        w = self.w[wkey]
        p = min(max(_sq(float(w @ x)), 1e-6), 1 - 1e-6)
        y = int(a == cand)
        w += self.lr * (y - p) * x
        self._learn(mkey, y)
        if ngram_key:
            self._learn(ngram_key, y)
        if y:
            return -math.log2(p)
        return -math.log2(1 - p) - (lp_a - math.log2(max(1e-12, 1 - pc)))


def _mixed_prob(c, w, lp_c, m_tok, counts, h, avail_o) -> float:
    """The linear mixture's probability of token ``c`` (weights w over [LLM, match, orders...])."""
    p = w[0] * 2.0 ** lp_c + w[1] * (1.0 if c == m_tok else 0.0)
    for j, k in enumerate(ORDERS):
        if not avail_o[j]:
            continue
        tab = counts[j].get(tuple(h[-k:]) if k else ())
        p += w[2 + j] * tab.get(c, 0) / tab[-1]
    return p


def _code_mixed(self, a, p_a, w, m_tok, mlen, counts, h, top_id, top_lp, lp_a, top_order, avail_o) -> float:
    cand, src = m_tok, 0
    if cand < 0:
        for j in range(len(ORDERS) - 1, -1, -1):
            if avail_o[j]:
                tab = counts[j].get(tuple(h[-ORDERS[j]:]) if ORDERS[j] else ())
                cand, src = max((c for c in tab if c != -1), key=lambda c: (tab[c], -c)), 1
                break
    if cand < 0:
        return -math.log2(p_a)
    if a == cand:
        pc = p_a
    else:
        hit = np.nonzero(top_id == cand)[0]
        lpc = float(top_lp[hit[0]]) if len(hit) else float(top_lp.min()) - 1.0
        pc = min(_mixed_prob(cand, w, lpc, m_tok, counts, h, avail_o), 1 - 1e-9)
    mkey = (src, min(mlen, 31))
    x = np.array([_st(pc), _st(self._p(mkey)), 0.3])
    wkey = (src, min(mlen, 16) // 4, top_order, min(3, int(-math.log2(max(pc, 1e-9)))))
    wt = self.w.setdefault(("m",) + wkey, np.array([1.0, 0.0, 0.0]))
    p = min(max(_sq(float(wt @ x)), 1e-6), 1 - 1e-6)
    y = int(a == cand)
    wt += self.lr * (y - p) * x
    self._learn(mkey, y)
    if y:
        return -math.log2(p)
    return -math.log2(1 - p) - math.log2(p_a / (1 - pc))


Candidate.code_mixed = _code_mixed


class MulMixer:
    """Linear mixture whose weights are updated multiplicatively (w_i *= 1 - lr + lr * p_i / p, then
    renormalised with a floor): only + - * /, so every IEEE machine computes the same weights."""

    def __init__(self, n_inputs: int, lr: float, prior: list[float], floor: float = 1e-4) -> None:
        self.lr, self.floor = lr, floor
        pr = np.array(prior, np.float64)
        self.sets: dict[int, np.ndarray] = defaultdict(lambda: pr / pr.sum())

    def mix(self, ctx: int, probs: np.ndarray, avail: np.ndarray):
        w = self.sets[ctx]
        wa = np.where(avail, w, 0.0)
        wa = wa / wa.sum()
        return float(wa @ probs), wa, w

    def update(self, w: np.ndarray, wa: np.ndarray, probs: np.ndarray, p: float, avail: np.ndarray) -> None:
        r = np.where(avail, 1.0 - self.lr + self.lr * probs / p, 1.0)
        w *= r
        w /= w.sum()
        np.maximum(w, self.floor, out=w)
        w /= w.sum()


def replay(d: dict, variants: list[str], lr: float) -> dict[str, float]:
    seg, tok, raw, lp = d["seg"], d["tok"], d["raw"], d["lp"].astype(np.float64)
    lse, temps = d["lse"].astype(np.float64), list(d["temps"])
    top_id, top_lp = d["top_id"], d["top_lp"]
    n_seg = len(d["lengths"])
    hist: list[list[int]] = [[] for _ in range(n_seg)]
    counts: list[dict] = [dict() for _ in ORDERS]
    match_at: dict[tuple, tuple[int, int]] = {}
    mptr: list[tuple[int, int] | None] = [None] * n_seg
    mlen = [0] * n_seg
    bits = {v: 0.0 for v in variants}
    esc_bits = 8.0 * float((raw >= 0).sum())
    n_in = 2 + len(ORDERS)
    mixers = {v: Mixer(n_in, lr, [4.0, 0.0] + [-1.0] * len(ORDERS)) for v in variants if v.startswith("mix")}
    if "mixmw" in variants:
        mixers["mixmw"] = MulMixer(n_in, MW_LR, [0.9, 0.02] + [0.02] * len(ORDERS))
    bin_model = Candidate()
    mixbin = Candidate()
    # temperature: exponentially decayed loss per (class, T)
    i_one = temps.index(1.0)
    tloss: dict[int, np.ndarray] = defaultdict(lambda: np.zeros(len(temps)))
    for i in range(len(tok)):
        s, a = int(seg[i]), int(tok[i])
        h = hist[s]
        # -- LLM (and temperature) --------------------------------------------------------------
        p_llm = 2.0 ** lp[i]
        # z of the coded token in log2 units relative to the row max: lp + lse(T=1)
        za = lp[i] + lse[i, i_one]
        lp_t = za / np.array(temps) - lse[i]  # log2 p_T(a) for every T
        # -- match model ----------------------------------------------------------------------------
        m_tok = -1
        ptr = mptr[s]
        if ptr is not None:
            ps, pp = ptr
            if pp < len(hist[ps]):
                m_tok = hist[ps][pp]
        if m_tok < 0:
            mlen[s] = 0
        # -- n-gram ----------------------------------------------------------------------------------
        q = np.zeros(len(ORDERS))
        avail_o = np.zeros(len(ORDERS), bool)
        top_order = 0
        tot_hi = 0
        for j, k in enumerate(ORDERS):
            if len(h) < k:
                break
            ctx = tuple(h[-k:]) if k else ()
            tab = counts[j].get(ctx)
            if tab:
                n = tab[-1]
                q[j] = tab.get(a, 0) / n
                avail_o[j] = True
                top_order = k
                tot_hi = n
        lb, cb = _len_bucket(mlen[s]), _count_bucket(tot_hi)
        conf = min(3, int(-top_lp[i].max() * 2)) if CONF else 0  # the LLM's confidence: its best token's bits
        cls = (lb * 8 + top_order) * 4 + conf
        for v in variants:
            if v == "llm":
                bits[v] -= lp[i]
            elif v == "bin":
                bits[v] += bin_model.code(i, s, a, m_tok, mlen[s], counts, h, top_id[i], top_lp[i], lp[i], top_order)
            elif v == "temp":
                tl = tloss[cls]
                bits[v] -= lp_t[int(np.argmin(tl))] if tl.any() else lp[i]
            else:
                base = p_llm
                if v == "mix+temp":
                    tl = tloss[cls]
                    base = 2.0 ** (lp_t[int(np.argmin(tl))] if tl.any() else lp[i])
                probs = np.concatenate(([base, 1.0 if (m_tok == a) else 0.0], q))
                avail = np.concatenate(([True, m_tok >= 0], avail_o))
                mx = mixers[v]
                ctx_id = (cls * 5 + cb) * 4 + (STEP_BUCKET and _step_bucket(int(d["step"][i])))
                p, w, th = mx.mix(ctx_id, probs, avail)
                p = max(p, 1e-9)
                if v == "mixbin":
                    bits[v] += mixbin.code_mixed(a, p, w, m_tok, mlen[s], counts, h, top_id[i], top_lp[i], lp[i],
                                                 top_order, avail_o)
                else:
                    bits[v] -= math.log2(p)
                mx.update(th, w, probs, p, avail)
        tl = tloss[cls]
        tl *= 0.98
        tl -= lp_t
        # -- updates ---------------------------------------------------------------------------------
        for j, k in enumerate(ORDERS):
            if len(h) < k:
                break
            ctx = tuple(h[-k:]) if k else ()
            tab = counts[j].setdefault(ctx, {-1: 0})
            tab[a] = tab.get(a, 0) + 1
            tab[-1] += 1
        h.append(a)
        if m_tok == a and ptr is not None:
            mptr[s] = (ptr[0], ptr[1] + 1)
            mlen[s] += 1
        else:
            mptr[s], mlen[s] = None, 0
        if len(h) >= MATCH_MIN:
            key = tuple(h[-MATCH_MIN:])
            if mptr[s] is None:
                found = match_at.get(key)
                if found is not None:
                    mptr[s], mlen[s] = found, MATCH_MIN
            match_at[key] = (s, len(h))
    return {v: b + esc_bits for v, b in bits.items()}


def replay_online(d: dict) -> float:
    """Bits of the codec's own mixer (:class:`lmar.plugins.llmcore.online.OnlineMixer`), step by step as the
    codec runs it (predictions of a step use what was learnt up to the step before)."""
    from lmar.plugins.llmcore.online import OnlineMixer

    seg, step, tok, raw, lp = d["seg"], d["step"], d["tok"], d["raw"], d["lp"].astype(np.float64)
    mixer = OnlineMixer(len(d["lengths"]), 49152)
    cuts = np.flatnonzero(np.diff(step)) + 1
    bits = 8.0 * float((raw >= 0).sum())
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(tok)]):
        mixer.prepare(seg[lo:hi].tolist())
        coded = mixer.update(tok[lo:hi], (2.0 ** lp[lo:hi]).tolist())
        bits -= sum(math.log2(p) for p in coded)
    return bits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="+", type=Path)
    ap.add_argument("--variants", default="llm,temp,mix,mix+temp")
    ap.add_argument("--lr", type=float, default=0.02)
    a = ap.parse_args()
    variants = a.variants.split(",")
    totals = defaultdict(float)
    total_bytes = 0
    for path in a.records:
        d = dict(np.load(path))
        nbytes = int(d["nbytes"].sum())
        total_bytes += nbytes
        res = replay(d, [v for v in variants if v != "online"], a.lr)
        if "online" in variants:
            res["online"] = replay_online(d)
        row = "  ".join(f"{v} {res[v] / 8:9.0f} B {res[v] / nbytes:.3f}" for v in variants)
        print(f"{path.name:28s} {nbytes:7d}  {row}", flush=True)
        for v in variants:
            totals[v] += res[v]
    row = "  ".join(f"{v} {totals[v] / 8:9.0f} B {totals[v] / total_bytes:.3f}" for v in variants)
    print(f"{'total':28s} {total_bytes:7d}  {row}")


if __name__ == "__main__":
    main()
