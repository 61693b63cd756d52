"""store: no compression; the fallback for incompressible data."""
from __future__ import annotations

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError


class StoreCodec(Codec):
    name = "store"
    description = "no compression"
    speed = 2e9
    fallback_rank = 0  # selection's last resort: empty and incompressible data, nothing else eligible

    def compress(self, data: bytes) -> bytes:
        return bytes(data)

    def decompress(self, payload: bytes, size: int) -> bytes:
        if len(payload) != size:
            raise CodecError("store: payload size differs from the recorded size")
        return payload

    def estimate(self, sample: bytes) -> float | None:
        return 1.0


@lmar.hookimpl
def register_codecs(register):
    register(StoreCodec)
