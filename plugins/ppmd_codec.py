"""PPMd variant H (pyppmd): the classical context model to beat on text."""
from __future__ import annotations

from typing import Any, Mapping

import pyppmd

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError


#: Orders tried in turn when pyppmd cannot decode its own stream at the codec's order (framed payloads).
RETRY_ORDERS = (12, 8, 16, 6)


class PpmdCodec(Codec):
    name = "ppmd"
    # 2: a payload starts with the order it was coded at (``framing`` 1), so a block pyppmd cannot round-trip
    # at order 10 is coded at another order instead of failing. Members of version 1 (``framing`` 0, bare
    # streams at the recorded order) still decode.
    version = 2
    description = "PPMd var. H, order 10, 256 MiB"
    speed = 4e6
    # pyppmd 1.3 cannot decode its own stream for some inputs, deterministically (a 16-bit WAV file stops at
    # 108,845 of 265,914 bytes; at order 10 a 449 KB group of Doxygen HTML differs from byte 412,537 on,
    # while orders 6, 8 and 12 decode it; with 1.3.1 the first 4 MiB of the text corpus repeated four
    # times). So compress() decodes what it made and, when that fails, codes the block at the next order of
    # RETRY_ORDERS; only when none round-trips does it refuse the input, whatever the archiver's verify
    # option (``--no-verify`` is about language models). Before version 2 it refused at once: selection then
    # took the next codec for a small file, but a large file, whose blocks all share the codec chosen on a
    # sample, could not be archived at all (75 MB of text at --level fast).
    verify_by_default = False
    #: Larger than the default 4 MiB: PPMd keeps learning across a block (a 32.9 MB tar of small files:
    #: 2,437,718 bytes in 4 MiB blocks, 2,281,411 in 16 MiB, xz -9e 2,232,028), and blocks of 16 MiB still
    #: spread a larger file over the workers. Solid groups at --level fast stay 4 MiB, for parallelism.
    block_size = 16 << 20
    default_params = {"order": 10, "mem_mb": 256, "framing": 1}
    #: Bounds on recorded parameters: a hostile header must not make the decoder allocate gigabytes.
    MAX_MEM_MB = 1024

    @classmethod
    def read_params(cls, params: Mapping[str, Any], version: int) -> dict[str, Any]:
        """A version-1 member recorded no ``framing``: its payload is the bare stream at its order."""
        return {**params, "framing": 0} if version < 2 and "framing" not in params else dict(params)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        order, mem_mb = self.params["order"], self.params["mem_mb"]
        if not (isinstance(order, int) and 2 <= order <= 64):
            raise CodecError(f"ppmd: order {order!r} is outside 2..64")
        if not (isinstance(mem_mb, int) and 1 <= mem_mb <= self.MAX_MEM_MB):
            raise CodecError(f"ppmd: mem_mb {mem_mb!r} is outside 1..{self.MAX_MEM_MB}")
        if self.params["framing"] not in (0, 1):
            raise CodecError(f"ppmd: framing {self.params['framing']!r} is not 0 or 1")

    def compress(self, data: bytes) -> bytes:
        order = self.params["order"]
        framed = self.params["framing"] == 1
        for o in (order, *(r for r in RETRY_ORDERS if r != order)) if framed else (order,):
            enc = pyppmd.Ppmd7Encoder(o, self.params["mem_mb"] << 20)
            stream = enc.encode(data) + enc.flush(endmark=False)
            if self._decode(stream, len(data), o) == data:
                return bytes([o]) + stream if framed else stream
        raise CodecError(f"ppmd: pyppmd cannot decode its own stream for this input (order {order}"
                         + (f" nor {', '.join(map(str, RETRY_ORDERS))})" if framed else ")"))

    def decompress(self, payload: bytes, size: int) -> bytes:
        if self.params["framing"] != 1:
            return self._decode(payload, size, self.params["order"])
        if not payload or not 2 <= payload[0] <= 64:
            raise CodecError("ppmd: payload does not start with a valid order (truncated or damaged)")
        return self._decode(payload[1:], size, payload[0])

    def _decode(self, stream: bytes, size: int, order: int) -> bytes:
        # pyppmd 1.3 corrupts the heap (the process aborts later, in free) when its decoder thread runs out
        # of input: a stream that claims more bytes than it holds, or garbage. So it reads zeros past the
        # end: 8 per byte still owed, where zeros decode as the likeliest symbols and cost far less (no
        # crash in 9,000 hostile payloads; the pad is copied once, ~0.15 s per 4 MB block). A valid stream
        # never reaches them. Found by tests/test_corrupt.py, which aborted about one run in ten.
        padded = bytearray(len(stream) + 8 * size + 4096)
        padded[: len(stream)] = stream
        try:
            dec = pyppmd.Ppmd7Decoder(order, self.params["mem_mb"] << 20)
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
