"""Brotli at quality 11 with a large window: strong on web text."""
from __future__ import annotations

import brotli

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError


class BrotliCodec(Codec):
    name = "brotli"
    description = "Brotli, quality 11, window 24"
    speed = 0.7e6
    decode_speed = 300e6
    default_params = {"quality": 11, "lgwin": 24}
    block_size = 16 << 20  # its window (lgwin 24): longer blocks would not be seen whole, shorter ones waste it
    window = 1 << 24

    def compress(self, data: bytes) -> bytes:
        return brotli.compress(data, quality=self.params["quality"], lgwin=self.params["lgwin"])

    def decompress(self, payload: bytes, size: int) -> bytes:
        try:
            d = brotli.Decompressor()
            try:  # bounded output: a tiny hostile payload must not expand to gigabytes
                out = d.process(payload, output_buffer_limit=size + 1)
            except TypeError:  # brotli < 1.2 has no output limit
                out = d.process(payload)
        except brotli.error as exc:
            raise CodecError(f"brotli: {exc}") from None
        return out[: size + 1]  # the limit is soft (brotli 1.2 overshoots by up to a 32 KiB chunk or 2x)


@lmar.hookimpl
def register_codecs(register):
    register(BrotliCodec)
