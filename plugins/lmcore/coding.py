"""Block compression and decompression: segment plan + network + predictor + one range coder stream.

Why one stream for all segments: per-segment streams would each pay a flush and a length field; a
single queue coder, fed each decision's bits in segment order, costs nothing extra and keeps the
decoder's reads in exactly the encoder's order.
"""
from __future__ import annotations

import zlib

import numpy as np

from lmar.errors import CodecError
from lmar.plugins.rangecoder import RangeCoderError, RangeDecoder, RangeEncoder

from .engine import Network, run
from .payload import SCHEME_FORMATS, Payload
from .predictor import PredictorConfig
from .segments import SegmentPlan

_SCALE = 1.0 / 65536.0


def encode_block(data: bytes, plan: SegmentPlan, net: Network | None, cfg: PredictorConfig, fingerprint: int) -> bytes:
    enc = RangeEncoder()

    def code(bit: int, p16: np.ndarray, truth: np.ndarray) -> np.ndarray:
        # p16 / 65536 is exact in float64, so the decoder rebuilds the very same model.
        enc.encode_bernoulli(truth, p16 * _SCALE)
        return truth

    src = np.frombuffer(data, dtype=np.uint8)
    out = run(plan, net, cfg, code, src)
    if out.tobytes() != data:  # cheap self-check of the reconstruction buffer logic
        raise CodecError("lm: internal error: encoder reconstruction differs from its input")
    words = enc.get_compressed() if plan.count else np.zeros(0, dtype=np.uint32)
    return Payload(SCHEME_FORMATS["cm1"], plan.count, zlib.crc32(data), fingerprint, words.astype("<u4").tobytes()).pack()


def decode_block(payload: bytes, plan: SegmentPlan, net: Network | None, cfg: PredictorConfig,
                 fingerprint: int) -> bytes:
    p = Payload.unpack(payload, SCHEME_FORMATS["cm1"])
    words = p.words()
    if p.segments != plan.count:
        raise CodecError(f"lm: payload has {p.segments} segments, expected {plan.count} for this size")
    if plan.count == 0:
        return b""
    if len(words) == 0:
        raise CodecError("lm: empty coder stream (truncated payload)")
    dec = RangeDecoder(words)

    def code(bit: int, p16: np.ndarray, truth: None) -> np.ndarray:
        return dec.decode_bernoulli(p16 * _SCALE)

    try:
        out = run(plan, net, cfg, code).tobytes()
    except (AssertionError, ValueError, RuntimeError, RangeCoderError) as exc:
        if p.fingerprint != fingerprint:  # another machine's numerics: the core's checksum names what differs
            return bytes(plan.size)
        raise CodecError(f"lm: corrupt or truncated payload ({exc})") from None
    if zlib.crc32(out) != p.crc32 and p.fingerprint == fingerprint:
        raise CodecError("lm: decoded block fails its checksum (the payload is damaged)")
    # On a different numerics profile the bytes are handed back as decoded: the archive's own checksum
    # then fails and the core reports it with mismatch_hint(), which names what differs on this machine.
    return out
