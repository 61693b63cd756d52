"""A third-party lmar codec plugin: byte run-length coding, registered through the ``lmar`` entry point group.

It exists for lmar's tests: a create/extract round trip through a codec that lmar itself does not ship,
and a clear error naming this distribution when it is not installed.
"""
from __future__ import annotations

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError

MAX_RUN = 255


class RleCodec(Codec):
    """Each run of one byte value becomes two bytes: the run length (1-255) and the value."""

    name = "rle"
    description = "run-length coding (example third-party plugin)"
    speed = 50e6

    def compress(self, data: bytes) -> bytes:
        out = bytearray()
        i, n = 0, len(data)
        while i < n:
            value = data[i]
            j = i + 1
            while j < n and j - i < MAX_RUN and data[j] == value:
                j += 1
            out += bytes((j - i, value))
            i = j
        return bytes(out)

    def decompress(self, payload: bytes, size: int) -> bytes:
        if len(payload) % 2:
            raise CodecError("rle: payload has an odd length")
        out = bytearray()
        for k in range(0, len(payload), 2):
            run, value = payload[k], payload[k + 1]
            if run == 0:
                raise CodecError("rle: zero-length run")
            out += bytes((value,)) * run
            if len(out) > size:
                raise CodecError("rle: payload decodes to more bytes than recorded")
        return bytes(out)


@lmar.hookimpl
def register_codecs(register):
    register(RleCodec)
