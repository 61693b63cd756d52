"""Per-frame linear prediction with quantised reflection (PARCOR) coefficients, in exact integer arithmetic.

Frames are independent (history before a frame counts as zero), so the decoder can run the prediction
recursion for *all* frames at once, stepping through positions within a frame with numpy ops over frames:
a file decodes in ``frame_len`` vectorised steps instead of one Python step per sample. Coefficients are
sent as reflection coefficients (small, cheap to code, always a stable filter) and turned into direct-form
coefficients by an integer step-up recursion that encoder and decoder run identically, so no float result
ever has to agree between machines.
"""
from __future__ import annotations

import numpy as np

PMAX = 32
Q = 20  # fractional bits of the direct-form coefficients
#: fractional bits of each quantised reflection coefficient: the first ones need more (they sit near +-1);
#: coarser steps lost less in prediction than they saved in side information on the development corpus
KBITS = np.array([10, 9, 7, 6, 6, 5, 5, 5] + [4] * (PMAX - 8), dtype=np.int64)
#: rough cost in bits of one coded reflection coefficient (entropy-coded later), for order selection
KCOST = np.array([9.0, 7.0, 5.0, 4.0, 3.5, 3.0, 2.5, 2.0] + [1.5] * (PMAX - 8))


def analyse(frames: np.ndarray, pmax: int = PMAX) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Choose an order and quantised reflection coefficients per frame.

    ``frames``: (F, N) int64. Returns (order (F,), kq (F, pmax) int64 zero past the order, estimated cost
    in bits (F,)). Float maths here only steers choices; it never has to be reproduced by the decoder.
    """
    f, n = frames.shape
    y = frames.astype(np.float64)
    t = np.arange(n, dtype=np.float64)
    w = np.ones(n)
    edge = max(1, n // 8)  # tukey-like taper: keeps most of the frame at full weight
    ramp = 0.5 - 0.5 * np.cos(np.pi * (t[:edge] + 0.5) / edge)
    w[:edge] = ramp
    w[n - edge :] = ramp[::-1]
    nfft = 1 << int(np.ceil(np.log2(max(2 * n, 2 * pmax + 2))))
    spec = np.fft.rfft(y * w, nfft, axis=1)
    r = np.fft.irfft(spec.real**2 + spec.imag**2, nfft, axis=1)[:, : pmax + 1]
    lag = np.exp(-0.5 * (2 * np.pi * 40.0 / 44100.0 * np.arange(pmax + 1)) ** 2)  # mild lag window
    r = r * lag
    r[:, 0] = r[:, 0] * (1.0 + 1e-9) + 1e-9
    k = np.zeros((f, pmax))
    a = np.zeros((f, pmax + 1))
    err = np.empty((f, pmax + 1))
    err[:, 0] = r[:, 0]
    for m in range(1, pmax + 1):
        acc = r[:, m] - np.einsum("fj,fj->f", a[:, 1:m], r[:, m - 1 : 0 : -1]) if m > 1 else r[:, 1].copy()
        km = np.clip(acc / err[:, m - 1], -0.9999, 0.9999)
        k[:, m - 1] = km
        prev = a[:, 1:m].copy()
        a[:, 1:m] = prev - km[:, None] * prev[:, ::-1]
        a[:, m] = km
        err[:, m] = err[:, m - 1] * (1.0 - km * km)
    energy = np.maximum(err, 1e-9 * n)
    # bits ~ n/2 log2(residual energy) + side info; choose the order minimising it
    side = np.concatenate([[0.0], np.cumsum(KCOST[:pmax])])
    cost = 0.5 * n * np.log2(energy / np.maximum(w.dot(w), 1.0)) + side[None, :]
    order = np.argmin(cost, axis=1)
    kq = np.round(k * (1 << KBITS[:pmax])[None, :]).astype(np.int64)
    lim = (1 << KBITS[:pmax]) - 1
    kq = np.clip(kq, -lim, lim)
    kq[np.arange(pmax)[None, :] >= order[:, None]] = 0
    return order, kq, cost[np.arange(f), order]


def step_up(kq: np.ndarray) -> np.ndarray:
    """Direct-form Q20 coefficients (R, P) from quantised reflection coefficients (R, P), integers only."""
    rows, p = kq.shape
    a = np.zeros((rows, p), dtype=np.int64)
    half = np.int64(1 << (Q - 1))
    for m in range(p):
        km = kq[:, m] << (Q - KBITS[m])
        if m:
            prev = a[:, :m].copy()
            a[:, :m] = prev - ((km[:, None] * prev[:, ::-1] + half) >> Q)
        a[:, m] = km
    return a


def residual(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """e = x - prediction, per row, with zero history before each row (x: (R, N), a: (R, P))."""
    rows, n = x.shape
    p = a.shape[1]
    buf = np.zeros((rows, n + p), dtype=np.int64)
    buf[:, p:] = x
    acc = np.zeros((rows, n), dtype=np.int64)
    for j in range(p):
        col = a[:, j]
        if np.any(col):
            acc += col[:, None] * buf[:, p - 1 - j : p - 1 - j + n]
    return x - ((acc + (1 << (Q - 1))) >> Q)
