"""Integer lookup tables shared by encoder and decoder.

Why: everything after the network output must be bit-exact on every machine. ``math.exp`` and numpy's
vectorised ``exp`` may differ in the last ulp between libm builds or SIMD paths, so the tables are built
with :mod:`decimal` (software arithmetic with correctly rounded ``exp``) and rounded to integers once.
"""
from __future__ import annotations

from decimal import Context, Decimal
from functools import lru_cache

import numpy as np

#: Mixer-domain probabilities are 12-bit (1..4095); the logistic domain is [-2047, 2047] in 1/256 units.
PROB_BITS = 12
STRETCH_LIMIT = 2047

_CTX = Context(prec=40)


def _logistic(x: Decimal) -> Decimal:
    return Decimal(1) / (Decimal(1) + _CTX.exp(-x))


@lru_cache(maxsize=None)
def squash_table() -> np.ndarray:
    """squash[d + 2047] = round(4096 / (1 + e^(-d/256))), clipped to 1..4095, for d in [-2047, 2047]."""
    out = np.empty(2 * STRETCH_LIMIT + 1, dtype=np.int64)
    for i, d in enumerate(range(-STRETCH_LIMIT, STRETCH_LIMIT + 1)):
        v = _CTX.multiply(_logistic(Decimal(d) / 256), Decimal(4096))
        out[i] = min(4095, max(1, int(v.to_integral_value())))
    out.setflags(write=False)
    return out


@lru_cache(maxsize=None)
def stretch_table() -> np.ndarray:
    """stretch[p] for p in 0..4095: the smallest d whose squash reaches p (inverse of squash_table)."""
    sq = squash_table()
    out = np.full(4096, STRETCH_LIMIT, dtype=np.int64)
    # For each p, the first d with squash(d) >= p; searchsorted is exact integer work.
    idx = np.searchsorted(sq, np.arange(4096), side="left")
    out[:] = np.minimum(idx, 2 * STRETCH_LIMIT) - STRETCH_LIMIT
    out.setflags(write=False)
    return out


#: Network logits are quantised to 1/LOGIT_SCALE nats before the integer softmax.
LOGIT_SCALE = 16
#: Logits more than EXP_RANGE / LOGIT_SCALE nats below the maximum all get the floor weight.
EXP_RANGE = 256
EXP_ONE = 1 << 16


@lru_cache(maxsize=None)
def exp_table() -> np.ndarray:
    """exp_table[d] = round(65536 * e^(-d / LOGIT_SCALE)); integer weights for the quantised softmax."""
    out = np.empty(EXP_RANGE, dtype=np.int64)
    for d in range(EXP_RANGE):
        v = _CTX.multiply(_CTX.exp(Decimal(-d) / LOGIT_SCALE), Decimal(EXP_ONE))
        out[d] = int(v.to_integral_value())
    out.setflags(write=False)
    return out
