"""bzip2 (Burrows-Wheeler): good on text with repetitive structure."""
from __future__ import annotations

import bz2

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError


class Bz2Codec(Codec):
    name = "bz2"
    description = "bzip2, level 9"
    speed = 8e6
    decode_speed = 25e6
    default_params = {"level": 9}

    def compress(self, data: bytes) -> bytes:
        return bz2.compress(data, self.params["level"])

    def decompress(self, payload: bytes, size: int) -> bytes:
        try:
            d = bz2.BZ2Decompressor()
            return d.decompress(payload, size + 1)
        except (OSError, ValueError, EOFError) as exc:
            raise CodecError(f"bz2: {exc}") from None


@lmar.hookimpl
def register_codecs(register):
    register(Bz2Codec)
