"""Scheme ``cm1``'s lockstep loop, decode only (frozen bitstream: never change).

It was written once for both directions (the only difference being where a bit came from) so that the
decoder reproduces every probability the encoder used; the encoder is gone, the decoding order is kept
exactly: same network calls, same batch shape, same padding of finished segments, same table updates.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..network import Network
from ..segments import SegmentPlan
from .cm1_nnprob import byte_weights, node_table
from .cm1_predictor import Predictor, PredictorConfig

#: Input fed for a segment that has finished (cm1's own copy: this bitstream never changes).
PAD_BYTE = 0

#: Decodes the bits of one decision for the live segments, given 16-bit P(1); returns the bits.
BitDecoder = Callable[[np.ndarray], np.ndarray]


def run(plan: SegmentPlan, net: Network | None, cfg: PredictorConfig, decode_bits: BitDecoder) -> np.ndarray:
    """Walk every segment in lockstep; return the reconstructed block.

    ``net=None`` runs the context mixer alone (used only by experiments and tests).
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
        c0 = np.ones(live, dtype=np.int64)
        for bit in range(8):
            p16 = pred.predict(bit, c0, nodes[row + c0])
            bits = decode_bits(p16)
            pred.update(bits)
            c0 = (c0 << 1) | bits
        byte = c0 - 256
        buf[pos] = byte
        pred.end_byte(byte, buf, pos, t + 1)
        prev[:live] = byte
        prev[live:] = PAD_BYTE
    return buf
