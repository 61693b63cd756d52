"""Framing of one ``lm`` block: a small header and the range coder's 32-bit words.

Why a checksum inside the payload: a range decoder fed damaged or truncated words happily decodes
garbage; the CRC turns that into a :class:`CodecError`. The numerics fingerprint (a digest of the
encoder's profile) tells that case apart from "this machine computes the model differently", which is
left to the archive's checksum so the core can print :meth:`LmCodec.mismatch_hint`.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from lmar.errors import CodecError

MAGIC = b"LMc"
FORMAT = 1
_HEAD = struct.Struct("<3sBIII")


@dataclass(frozen=True)
class Payload:
    segments: int
    crc32: int
    fingerprint: int
    words: np.ndarray

    def pack(self) -> bytes:
        head = _HEAD.pack(MAGIC, FORMAT, self.segments, self.crc32, self.fingerprint)
        return head + self.words.astype("<u4").tobytes()

    @classmethod
    def unpack(cls, blob: bytes) -> "Payload":
        if len(blob) < _HEAD.size:
            raise CodecError(f"lm: payload of {len(blob)} bytes is shorter than its header (truncated)")
        magic, fmt, segments, crc, fp = _HEAD.unpack_from(blob)
        if magic != MAGIC or fmt != FORMAT:
            raise CodecError("lm: not an lm payload (bad magic or unknown format)")
        body = blob[_HEAD.size :]
        if len(body) % 4:
            raise CodecError("lm: payload length is not a whole number of coder words (truncated)")
        words = np.frombuffer(body, dtype="<u4").astype(np.uint32)
        return cls(segments, crc, fp, words)
