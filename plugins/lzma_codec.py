"""lzma (xz format, preset 9 extreme): the strong general-purpose classical codec."""
from __future__ import annotations

import lzma

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError


#: Decoder memory cap: preset 9's 64 MiB dictionary needs 65 MiB; a hostile header may not ask for more.
MEMLIMIT = 128 << 20


class LzmaCodec(Codec):
    name = "lzma"
    description = "xz/LZMA2, preset 9e"
    speed = 1.5e6
    default_params = {"preset": 9, "extreme": True}

    def compress(self, data: bytes) -> bytes:
        preset = self.params["preset"] | (lzma.PRESET_EXTREME if self.params["extreme"] else 0)
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE, preset=preset)

    def decompress(self, payload: bytes, size: int) -> bytes:
        try:
            d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=MEMLIMIT)
            return d.decompress(payload, size + 1)
        except (lzma.LZMAError, EOFError) as exc:
            raise CodecError(f"lzma: {exc}") from None


@lmar.hookimpl
def register_codecs(register):
    register(LzmaCodec)
