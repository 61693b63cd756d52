"""lzma (xz format, preset 9 extreme): the strong general-purpose classical codec."""
from __future__ import annotations

import lzma

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError


#: Decoder memory cap: preset 9's 64 MiB dictionary needs 65 MiB; a hostile header may not ask for more.
MEMLIMIT = 128 << 20
#: Dictionary size of each xz preset (xz(1), "Presets"), 0 to 9.
PRESET_DICT_SIZE = [256 << 10, 1 << 20, 2 << 20, 4 << 20, 4 << 20, 8 << 20, 8 << 20, 16 << 20, 32 << 20, 64 << 20]


class LzmaCodec(Codec):
    name = "lzma"
    description = "xz/LZMA2, preset 9e"
    speed = 1.5e6
    decode_speed = 80e6
    default_params = {"preset": 9, "extreme": True}
    #: Preset 9's dictionary: with the default 4 MiB blocks a large file was cut into streams that could not
    #: see each other (9.3 MB of text repeated four times: 1,525,938 bytes against xz -9e's 622,700).
    block_size = 64 << 20
    window = 64 << 20

    def compress(self, data: bytes) -> bytes:
        if self.params["preset"] not in range(10):
            raise CodecError(f"lzma: preset {self.params['preset']!r} is outside 0..9")
        preset = self.params["preset"] | (lzma.PRESET_EXTREME if self.params["extreme"] else 0)
        # The preset's dictionary, but no larger than the input rounded up to a power of two: matches cannot
        # reach further back than the input anyway, and setting up preset 9's 64 MiB match finder takes
        # ~50 ms, which dominated coding the small groups and samples that selection tries. The stream
        # records its dictionary size, so decoding needs nothing new.
        limit = 1 << max(12, (max(len(data), 1) - 1).bit_length())
        dict_size = min(PRESET_DICT_SIZE[self.params["preset"]], limit)
        filters = [{"id": lzma.FILTER_LZMA2, "preset": preset, "dict_size": dict_size}]
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE, filters=filters)

    def decompress(self, payload: bytes, size: int) -> bytes:
        try:
            d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=MEMLIMIT)
            return d.decompress(payload, size + 1)
        except (lzma.LZMAError, EOFError) as exc:
            raise CodecError(f"lzma: {exc}") from None


@lmar.hookimpl
def register_codecs(register):
    register(LzmaCodec)
