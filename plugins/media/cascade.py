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


class Nlms:
    """State of one filter per row: ``taps`` weights and a history buffer of clipped residuals."""

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
        win = self.hist[:, i : i + self.taps]
        shift = np.maximum(np.searchsorted(_POW2, self.norm, side="right") - self.mu, 0)
        half = (np.int64(1) << shift) >> 1
        g = np.clip(err, -CLIP, CLIP)
        self.w += (g[:, None] * win + half[:, None]) >> shift[:, None]
        np.clip(self.w, -WCLIP, WCLIP, out=self.w)
        v = np.clip(value, -CLIP, CLIP)
        old = self.hist[:, i]
        self.norm += v * v - old * old
        self.hist[:, i + self.taps] = v


def forward(e1: np.ndarray, taps: int, mu: int) -> np.ndarray:
    """Encoder side: the stage's output residual for every row of ``e1`` (R, N)."""
    rows, n = e1.shape
    if taps == 0:
        return e1
    f = Nlms(rows, n, taps, mu)
    out = np.empty_like(e1)
    for i in range(n):
        col = e1[:, i]
        err = col - f.predict(i)
        out[:, i] = err
        f.update(i, err, col)
    return out
