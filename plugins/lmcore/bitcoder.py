"""A 32-bit binary arithmetic coder in integer arithmetic, compiled with numba.

Why not constriction here: the compiled schemes (``cm2``-``cm6``) decide every bit inside one compiled
loop (the next prediction needs the bit just decoded), so the coder must be callable from compiled code. The coder is
the classic carry-less design: the interval [x1, x2] is split in proportion to P(1), the decoder compares
its code word against the split point, and leading bytes are shifted out once x1 and x2 agree on them.
All arithmetic is on unsigned 64-bit integers holding 32-bit values, identical on every machine.

State lives in a small int64 array so it survives between compiled calls:
``st[0] = x1, st[1] = x2, st[2] = x (decoder), st[3] = byte position in the output / input``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

X1, X2, X, POS = 0, 1, 2, 3
_TOP = np.int64(0xFF000000)
_FULL = np.int64(0xFFFFFFFF)


def new_state() -> np.ndarray:
    st = np.zeros(4, dtype=np.int64)
    st[X2] = 0xFFFFFFFF
    return st


@njit(inline="always")
def _split(x1: int, x2: int, p16: int) -> int:
    r = x2 - x1
    return x1 + (r >> 16) * p16 + (((r & 0xFFFF) * p16) >> 16)


@njit(inline="always")
def encode_bit(st: np.ndarray, out: np.ndarray, bit: int, p16: int) -> None:
    """Code ``bit`` with P(bit = 1) = p16 / 65536, 1 <= p16 <= 65535."""
    x1, x2 = st[X1], st[X2]
    xm = _split(x1, x2, p16)
    if bit:
        x2 = xm
    else:
        x1 = xm + 1
    pos = st[POS]
    while ((x1 ^ x2) & _TOP) == 0:
        out[pos] = x2 >> 24
        pos += 1
        x1 = (x1 << 8) & _FULL
        x2 = ((x2 << 8) & _FULL) | 255
    st[X1], st[X2], st[POS] = x1, x2, pos


@njit(inline="always")
def decode_bit(st: np.ndarray, inp: np.ndarray, p16: int) -> int:
    """The bit the encoder coded with the same ``p16``; reads past the end of ``inp`` as zero bytes."""
    x1, x2, x = st[X1], st[X2], st[X]
    xm = _split(x1, x2, p16)
    if x <= xm:
        bit = 1
        x2 = xm
    else:
        bit = 0
        x1 = xm + 1
    pos = st[POS]
    n = inp.shape[0]
    while ((x1 ^ x2) & _TOP) == 0:
        x1 = (x1 << 8) & _FULL
        x2 = ((x2 << 8) & _FULL) | 255
        c = np.int64(inp[pos]) if pos < n else np.int64(0)
        x = ((x << 8) & _FULL) | c
        pos += 1
    st[X1], st[X2], st[X], st[POS] = x1, x2, x, pos
    return bit


@njit(cache=True)
def flush(st: np.ndarray, out: np.ndarray) -> int:
    """Write the bytes that pin the final interval; return the total number of bytes written."""
    pos = st[POS]
    x1 = st[X1]
    for _ in range(4):
        out[pos] = (x1 >> 24) & 255
        x1 = (x1 << 8) & _FULL
        pos += 1
    st[POS] = pos
    return pos


@njit(cache=True)
def start_decoder(st: np.ndarray, inp: np.ndarray) -> None:
    x = np.int64(0)
    n = inp.shape[0]
    for i in range(4):
        c = np.int64(inp[i]) if i < n else np.int64(0)
        x = (x << 8) | c
    st[X] = x
    st[POS] = 4
