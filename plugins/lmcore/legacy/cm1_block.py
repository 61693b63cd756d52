"""Scheme ``cm1`` block decoding (lm version 1, lmar 0.1): one range coder stream for all segments.

Frozen bitstream: never change, decode only. The encoder wrote a single queue coder stream (fed each
decision's bits in segment order) of constriction-compatible 32-bit words; the decoder reads them in the
same order.
"""
from __future__ import annotations

import zlib

import numpy as np

from lmar.errors import CodecError
from lmar.plugins.rangecoder import RangeCoderError, RangeDecoder

from ..network import Network
from ..payload import SCHEME_FORMATS, Payload
from ..segments import SegmentPlan
from .cm1_loop import run
from .cm1_predictor import PredictorConfig

_SCALE = 1.0 / 65536.0
#: The one configuration cm1 members were written with.
CM1 = PredictorConfig()


def decode_block(payload: bytes, plan: SegmentPlan, net: Network | None, fingerprint: int) -> bytes:
    p = Payload.unpack(payload, SCHEME_FORMATS["cm1"])
    words = p.words()
    if p.segments != plan.count:
        raise CodecError(f"lm: payload has {p.segments} segments, expected {plan.count} for this size")
    if plan.count == 0:
        return b""
    if len(words) == 0:
        raise CodecError("lm: empty coder stream (truncated payload)")
    dec = RangeDecoder(words)

    def decode_bits(p16: np.ndarray) -> np.ndarray:
        # p16 / 65536 is exact in float64: the encoder's model, rebuilt.
        return dec.decode_bernoulli(p16 * _SCALE)

    try:
        out = run(plan, net, CM1, decode_bits).tobytes()
    except (AssertionError, ValueError, RuntimeError, RangeCoderError) as exc:
        if p.fingerprint != fingerprint:  # another machine's numerics: the core's checksum names what differs
            return bytes(plan.size)
        raise CodecError(f"lm: corrupt or truncated payload ({exc})") from None
    if zlib.crc32(out) != p.crc32 and p.fingerprint == fingerprint:
        raise CodecError("lm: decoded block fails its checksum (the payload is damaged)")
    # On a different numerics profile the bytes are handed back as decoded: the archive's own checksum
    # then fails and the core reports it with mismatch_hint(), which names what differs on this machine.
    return out
