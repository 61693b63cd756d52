"""zlib (deflate): fast, everywhere. A complete codec plugin; copy this file to write your own."""
from __future__ import annotations

import zlib

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError


class ZlibCodec(Codec):
    name = "zlib"
    description = "deflate (zlib), level 9"
    speed = 15e6
    default_params = {"level": 9}

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, self.params["level"])

    def decompress(self, payload: bytes, size: int) -> bytes:
        try:
            d = zlib.decompressobj()
            out = d.decompress(payload, size + 1)
        except zlib.error as exc:
            raise CodecError(f"zlib: {exc}") from None
        return out


@lmar.hookimpl
def register_codecs(register):
    register(ZlibCodec)
