"""zlib (deflate): fast, everywhere. A complete codec plugin; copy this file to write your own."""
from __future__ import annotations

import zlib

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError


class ZlibCodec(Codec):
    name = "zlib"                  # stable id written into archives; a name belongs to one package
    version = 1                    # bump when old payloads would no longer decode
    description = "deflate (zlib), level 9"
    speed = 15e6                   # rough bytes/s, used by time budgets (never a stopwatch)
    decode_speed = 300e6           # the same when decoding (optional): is a worker process worth it?
    default_params = {"level": 9}  # recorded in every member header, passed back to decode

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, self.params["level"])

    def decompress(self, payload: bytes, size: int) -> bytes:
        # Payloads are untrusted: bound the output (a few bytes of deflate can expand to gigabytes) and
        # turn the library's errors into CodecError, which names the member for the user.
        try:
            d = zlib.decompressobj()
            out = d.decompress(payload, size + 1)
        except zlib.error as exc:
            raise CodecError(f"zlib: {exc}") from None
        return out


@lmar.hookimpl
def register_codecs(register):
    register(ZlibCodec)
