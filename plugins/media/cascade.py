"""Second prediction stage: a normalised LMS filter on the LPC residual, in integer arithmetic.

Per-frame LPC coefficients are fixed for a whole frame; the residual still drifts within it (speech
formants move in tens of milliseconds). A short backward-adaptive filter follows that drift for free:
no coefficients are sent. Like the LPC stage it runs over positions, vectorised over rows, and uses only
integer operations (the step size is a power of two picked from the input energy's bit length), so the
decoder reproduces the encoder's predictions exactly on any machine.
"""
from __future__ import annotations

import numpy as np

WQ = 14  # fractional bits of the weights
CLIP = 1 << 16  # inputs and errors are clipped to this for the adaptation (keeps products inside int64)
WCLIP = 1 << 22
_POW2 = np.array([1 << j for j in range(63)], dtype=np.int64)


def _clip(x: np.ndarray, lim: int) -> np.ndarray:
    return np.minimum(np.maximum(x, -lim), lim)  # np.clip costs several times more on small arrays


def _shift(norm: np.ndarray, mu: int) -> np.ndarray:
    """Right shift that turns err * input into a weight step of about 2**mu * err * input / norm."""
    return np.maximum(np.searchsorted(_POW2, norm, side="right") - mu, 0)


def _adapt(w: np.ndarray, win: np.ndarray, err: np.ndarray, shift: np.ndarray) -> None:
    """One weight update, shared by encoder and decoder so both do exactly the same integer steps."""
    half = (np.int64(1) << shift) >> 1
    w += (_clip(err, CLIP)[:, None] * win + half[:, None]) >> shift[:, None]
    np.minimum(np.maximum(w, -WCLIP, out=w), WCLIP, out=w)


class Nlms:
    """Decoder-side state of one filter per row: weights, clipped input history and its energy."""

    def __init__(self, rows: int, n: int, taps: int, mu: int) -> None:
        self.taps, self.mu = taps, mu
        self.w = np.zeros((rows, taps), dtype=np.int64)
        self.hist = np.zeros((rows, n + taps), dtype=np.int64)
        self.norm = np.zeros(rows, dtype=np.int64)

    def predict(self, i: int) -> np.ndarray:
        win = self.hist[:, i : i + self.taps]
        return ((self.w * win).sum(axis=1) + (1 << (WQ - 1))) >> WQ

    def update(self, i: int, err: np.ndarray, value: np.ndarray) -> None:
        """Adapt after position ``i`` (prediction error ``err``), then push the stage input ``value``."""
        _adapt(self.w, self.hist[:, i : i + self.taps], err, _shift(self.norm, self.mu))
        v = _clip(value, CLIP)
        old = self.hist[:, i]
        self.norm += v * v - old * old
        self.hist[:, i + self.taps] = v


def forward(e1: np.ndarray, taps: int, mu: int) -> np.ndarray:
    """Encoder side: the stage's output residual for every row of ``e1`` (R, N).

    The input history and its energy are known up front here, so only the weights are stepped.
    """
    rows, n = e1.shape
    if taps == 0:
        return e1
    hist = np.zeros((rows, n + taps), dtype=np.int64)
    hist[:, taps:] = _clip(e1, CLIP)
    sq = np.concatenate([np.zeros((rows, 1), np.int64), np.cumsum(hist * hist, axis=1)], axis=1)
    shifts = _shift(sq[:, taps : taps + n] - sq[:, :n], mu)  # energy of the window before each position
    w = np.zeros((rows, taps), dtype=np.int64)
    out = np.empty_like(e1)
    half_q = np.int64(1 << (WQ - 1))
    for i in range(n):
        win = hist[:, i : i + taps]
        err = e1[:, i] - (((w * win).sum(axis=1) + half_q) >> WQ)
        out[:, i] = err
        _adapt(w, win, err, shifts[:, i])
    return out
