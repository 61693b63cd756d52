"""Block coding for scheme ``cm2``: the network stepped in lockstep, each step coded by :func:`cm2.code_step`.

Why the loop is in Python: one network call and one compiled call per byte position serve every
segment, so the interpreter's cost per step is shared by up to ``max_segments`` bytes. Encoder and
decoder run :func:`_walk` with the same plan, the same batch shape and the same padding of finished
segments; only the direction flag differs.
"""
from __future__ import annotations

import zlib

import numpy as np

from lmar.errors import CodecError

from . import bitcoder
from .cm2 import Cm2State, code_step
from .engine import PAD_BYTE, Network
from .payload import Payload
from .segments import SegmentPlan

FORMAT = 2


def _walk(plan: SegmentPlan, net: Network | None, decode: bool, src: np.ndarray, stream: np.ndarray,
          coder: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Code every step; return (reconstruction buffer, coder stream, possibly grown when encoding)."""
    S = plan.count
    buf = np.zeros(plan.size, dtype=np.uint8)
    hidden_units = int(net.zero_state(1).shape[-1]) if net is not None else 1
    state = Cm2State(S, plan.size, hidden_units)
    tables = state.args()
    prev = np.full(S, net.bos if net is not None else 256, dtype=np.int64)
    hidden = net.zero_state(S) if net is not None else None
    flat = np.zeros((S, 256), dtype=np.float32)
    no_hidden = np.zeros((S, 1), dtype=np.float32)
    starts = plan.starts.astype(np.int64)
    lengths = plan.lengths
    live = S
    for t in range(plan.steps):
        while live and lengths[live - 1] <= t:
            live -= 1
        if net is not None:
            logits, hidden = net.step(prev, hidden)
            logits = np.ascontiguousarray(logits, dtype=np.float32)
            last = np.ascontiguousarray(hidden[-1], dtype=np.float32)  # the top layer's state after this step
        else:
            logits, last = flat, no_hidden
        if not decode and len(stream) - coder[bitcoder.POS] < 16 * live + 64:
            stream = np.concatenate([stream, np.zeros(len(stream) + 16 * S + 64, dtype=np.uint8)])
        code_step(1 if decode else 0, live, t, logits, last, starts, src, buf, coder, stream, *tables)
        prev[:live] = buf[starts[:live] + t]
        prev[live:] = PAD_BYTE
    return buf, stream


def encode_block(data: bytes, plan: SegmentPlan, net: Network | None, fingerprint: int) -> bytes:
    src = np.frombuffer(data, dtype=np.uint8).copy()  # writable: one compiled signature for both directions
    coder = bitcoder.new_state()
    stream = np.zeros(len(data) // 2 + 1024, dtype=np.uint8)
    if plan.count:
        buf, stream = _walk(plan, net, False, src, stream, coder)
        if buf.tobytes() != data:  # cheap self-check of the reconstruction logic
            raise CodecError("lm: internal error: encoder reconstruction differs from its input")
        if len(stream) - coder[bitcoder.POS] < 8:
            stream = np.concatenate([stream, np.zeros(8, dtype=np.uint8)])
        n = bitcoder.flush(coder, stream)
        body = stream[:n].tobytes()
    else:
        body = b""
    return Payload(FORMAT, plan.count, zlib.crc32(data), fingerprint, body).pack()


def decode_block(payload: bytes, plan: SegmentPlan, net: Network | None, fingerprint: int) -> bytes:
    p = Payload.unpack(payload, FORMAT)
    if p.segments != plan.count:
        raise CodecError(f"lm: payload has {p.segments} segments, expected {plan.count} for this size")
    if plan.count == 0:
        return b""
    if len(p.body) < 4:
        raise CodecError("lm: coder stream shorter than 4 bytes (truncated payload)")
    stream = np.frombuffer(p.body, dtype=np.uint8).copy()
    coder = bitcoder.new_state()
    bitcoder.start_decoder(coder, stream)
    buf, _ = _walk(plan, net, True, np.zeros(0, dtype=np.uint8), stream, coder)
    out = buf.tobytes()
    if coder[bitcoder.POS] > len(stream) + 4 and zlib.crc32(out) != p.crc32:
        raise CodecError("lm: coder stream ended early (truncated payload)")
    if zlib.crc32(out) != p.crc32 and p.fingerprint == fingerprint:
        raise CodecError("lm: decoded block fails its checksum (the payload is damaged)")
    # On another numerics profile the bytes go back as decoded: the archive's checksum then fails and the
    # core reports it with mismatch_hint(), which names what differs on this machine.
    return out
