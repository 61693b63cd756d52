"""PPMd variant H (pyppmd): the classical context model to beat on text."""
from __future__ import annotations

from typing import Any

import pyppmd

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError


class PpmdCodec(Codec):
    name = "ppmd"
    description = "PPMd var. H, order 10, 256 MiB"
    speed = 4e6
    # pyppmd 1.3 cannot decode its own stream for some inputs, deterministically (a 16-bit WAV file stops at
    # 108,845 of 265,914 bytes; at order 10 a 449 KB group of Doxygen HTML differs from byte 412,537 on,
    # while orders 6, 8 and 12 decode it). So compress() decodes what it made and refuses an input it cannot
    # round-trip, whatever the archiver's verify option (``--no-verify`` is about language models): such a
    # payload is never written, and selection takes the next codec.
    verify_by_default = False
    default_params = {"order": 10, "mem_mb": 256}
    #: Bounds on recorded parameters: a hostile header must not make the decoder allocate gigabytes.
    MAX_MEM_MB = 1024

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        order, mem_mb = self.params["order"], self.params["mem_mb"]
        if not (isinstance(order, int) and 2 <= order <= 64):
            raise CodecError(f"ppmd: order {order!r} is outside 2..64")
        if not (isinstance(mem_mb, int) and 1 <= mem_mb <= self.MAX_MEM_MB):
            raise CodecError(f"ppmd: mem_mb {mem_mb!r} is outside 1..{self.MAX_MEM_MB}")

    def compress(self, data: bytes) -> bytes:
        enc = pyppmd.Ppmd7Encoder(self.params["order"], self.params["mem_mb"] << 20)
        payload = enc.encode(data) + enc.flush(endmark=False)
        if self.decompress(payload, len(data)) != data:
            raise CodecError(f"ppmd: pyppmd cannot decode its own stream for this input (order {self.params['order']})")
        return payload

    def decompress(self, payload: bytes, size: int) -> bytes:
        # pyppmd 1.3 corrupts the heap (the process aborts later, in free) when its decoder thread runs out
        # of input: a stream that claims more bytes than it holds, or garbage. So it reads zeros past the
        # end: 8 per byte still owed, where zeros decode as the likeliest symbols and cost far less (no
        # crash in 9,000 hostile payloads; the pad is copied once, ~0.15 s per 4 MB block). A valid stream
        # never reaches them. Found by tests/test_corrupt.py, which aborted about one run in ten.
        padded = bytearray(len(payload) + 8 * size + 4096)
        padded[: len(payload)] = payload
        try:
            dec = pyppmd.Ppmd7Decoder(self.params["order"], self.params["mem_mb"] << 20)
            out = dec.decode(padded, size)
            while len(out) < size and not dec.eof and dec.needs_input is False:
                more = dec.decode(b"", size - len(out))
                if not more:
                    break
                out += more
        except (ValueError, RuntimeError, EOFError, SystemError) as exc:
            raise CodecError(f"ppmd: {exc}") from None
        return out


@lmar.hookimpl
def register_codecs(register):
    register(PpmdCodec)
