"""The lockstep coding loop, shared verbatim by encoder and decoder.

Why one function for both directions: the decoder must reproduce every probability the encoder used.
Writing the loop once, with the only difference being whether a bit is read from the data or from the
range decoder, makes divergence structurally impossible (same network calls, same batch shape, same
padding of finished segments, same table updates in the same order).
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from .nnprob import byte_weights, node_table
from .predictor import Predictor, PredictorConfig
from .segments import SegmentPlan

#: Input fed for a segment that has finished (its outputs are never used).
PAD_BYTE = 0


class Network(Protocol):
    bos: int

    def zero_state(self, batch: int) -> np.ndarray: ...

    def step(self, prev: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


#: Codes (or decodes) the bits of one decision for the live segments, given 16-bit P(1); returns the bits.
BitCoder = Callable[[int, np.ndarray, np.ndarray], np.ndarray]


def run(plan: SegmentPlan, net: Network | None, cfg: PredictorConfig, code_bits: BitCoder,
        source: np.ndarray | None = None) -> np.ndarray:
    """Walk every segment in lockstep; return the reconstructed block.

    ``code_bits(bit, p16, truth)`` receives the true bits when encoding (``source`` given) and ``None``
    when decoding. ``net=None`` runs the context mixer alone (used only by experiments and tests).
    """
    S = plan.count
    buf = np.zeros(plan.size, dtype=np.uint8)
    if S == 0:
        return buf
    pred = Predictor(S, plan.size, cfg)
    prev = np.full(S, net.bos if net is not None else 256, dtype=np.int64)
    state = net.zero_state(S) if net is not None else None
    uniform = np.full((S, 256), 2048, dtype=np.int64)
    for t in range(plan.steps):
        live = plan.live(t)
        pos = plan.starts[:live] + t
        if net is not None:
            logits, state = net.step(prev, state)
            nodes = node_table(byte_weights(logits[:live])).ravel()
        else:
            nodes = uniform[:live].ravel()
        row = np.arange(live, dtype=np.int64) * 256
        pred.begin_byte(live, buf)
        truth = source[pos].astype(np.int64) if source is not None else None
        c0 = np.ones(live, dtype=np.int64)
        for bit in range(8):
            p16 = pred.predict(bit, c0, nodes[row + c0])
            tb = ((truth >> (7 - bit)) & 1) if truth is not None else None
            bits = code_bits(bit, p16, tb)
            pred.update(bits)
            c0 = (c0 << 1) | bits
        byte = c0 - 256
        buf[pos] = byte
        pred.end_byte(byte, buf, pos, t + 1)
        prev[:live] = byte
        prev[live:] = PAD_BYTE
    return buf
