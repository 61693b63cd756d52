"""Framing of one ``lm`` block: a small header and the arithmetic coder's bytes.

Why a checksum inside the payload: a range decoder fed damaged or truncated words happily decodes
garbage; the CRC turns that into a :class:`CodecError`. The numerics fingerprint (a digest of the
encoder's profile) tells that case apart from "this machine computes the model differently", which is
left to the archive's checksum so the core can print :meth:`LmCodec.mismatch_hint`.

Format 1 (scheme ``cm1``) carries constriction's 32-bit words; formats 2 to 6 (schemes ``cm2``-``cm6``)
the bytes of the compiled binary coder. The header is the same for all.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lmar.errors import CodecError

if TYPE_CHECKING:  # numpy is imported where arrays are made: every lmar command loads the plugins
    import numpy as np

MAGIC = b"LMc"
#: The one list of the lm codec's coding schemes, each with the payload format that marks it: what the
#: codec accepts, what each block coder writes and what a payload header may say all come from here.
SCHEME_FORMATS = {"cm1": 1, "cm2": 2, "cm3": 3, "cm4": 4, "cm5": 5, "cm6": 6}
FORMATS = tuple(SCHEME_FORMATS.values())
_HEAD = struct.Struct("<3sBIII")
#: Bytes before the coder output in every payload.
HEADER_BYTES = _HEAD.size


@dataclass(frozen=True)
class Payload:
    format: int
    segments: int
    crc32: int
    fingerprint: int
    body: bytes

    def pack(self) -> bytes:
        return _HEAD.pack(MAGIC, self.format, self.segments, self.crc32, self.fingerprint) + self.body

    def words(self) -> np.ndarray:
        """The body as little-endian 32-bit coder words (format 1)."""
        import numpy as np

        if len(self.body) % 4:
            raise CodecError("lm: payload length is not a whole number of coder words (truncated)")
        return np.frombuffer(self.body, dtype="<u4").astype(np.uint32)

    @classmethod
    def unpack(cls, blob: bytes, expect_format: int) -> "Payload":
        if len(blob) < _HEAD.size:
            raise CodecError(f"lm: payload of {len(blob)} bytes is shorter than its header (truncated)")
        magic, fmt, segments, crc, fp = _HEAD.unpack_from(blob)
        if magic != MAGIC or fmt not in FORMATS:
            raise CodecError("lm: not an lm payload (bad magic or unknown format)")
        if fmt != expect_format:
            raise CodecError(f"lm: payload is format {fmt}, but the member's scheme expects format {expect_format}")
        return cls(fmt, segments, crc, fp, bytes(blob[_HEAD.size :]))
