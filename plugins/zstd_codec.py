"""Zstandard at a high level with a long window: fast to decode, close to xz in size."""
from __future__ import annotations

import zstandard

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError


class ZstdCodec(Codec):
    name = "zstd"
    description = "Zstandard, level 19, long window"
    speed = 3e6
    decode_speed = 500e6
    default_params = {"level": 19, "window_log": 27}
    #: A long window is only worth its name over a long block (4 MiB blocks hid every repeat further apart).
    block_size = 64 << 20
    window = 1 << 27
    probe_rank = 0  # selection's incompressibility test (level 1)
    _probe = None

    @classmethod
    def probe_size(cls, data: bytes) -> int:
        # Not zlib: its 32 KiB window misses repeats further apart (e.g. a 40 KiB random block stored thrice).
        # A long window (128 MiB, long-distance matching) costs the same at level 1 and lets selection tell a
        # file that repeats itself megabytes apart (selection._long_range_codec).
        if cls._probe is None:
            params = zstandard.ZstdCompressionParameters.from_level(1, window_log=27, enable_ldm=True)
            cls._probe = zstandard.ZstdCompressor(compression_params=params)
        return len(cls._probe.compress(data))

    #: The estimate codes the sample at this level and scales the result. Level 19 searches ~20x longer than
    #: level 9 (25-50 ms against 1-2 ms on a 64 KiB sample: the largest cost of --level fast's estimates on
    #: a small tree) for a size that is a steady fraction of level 9's: 0.948-0.972, mean 0.965, on 20
    #: samples of the five benchmark trees (tools/bench_tree.py) -- within the sample's own error.
    ESTIMATE_LEVEL = 9
    ESTIMATE_FACTOR = 0.965

    def estimate(self, sample: bytes) -> float | None:
        level = self.params["level"]
        if not sample:
            return None
        quick = min(level, self.ESTIMATE_LEVEL)
        params = zstandard.ZstdCompressionParameters.from_level(quick, source_size=len(sample))
        size = len(zstandard.ZstdCompressor(compression_params=params).compress(sample))
        return size / len(sample) * (self.ESTIMATE_FACTOR if level > quick else 1.0)

    def compress(self, data: bytes) -> bytes:
        params = zstandard.ZstdCompressionParameters.from_level(
            self.params["level"], source_size=len(data), window_log=self.params["window_log"],
            enable_ldm=True, threads=0)
        return zstandard.ZstdCompressor(compression_params=params).compress(data)

    def decompress(self, payload: bytes, size: int) -> bytes:
        try:
            # A frame that records its content size is decoded to that size whatever max_output_size says,
            # so a hostile payload could ask for gigabytes: refuse frames declaring more than the block holds.
            declared = zstandard.frame_content_size(payload)
            if declared > size:
                raise CodecError(f"zstd: frame declares {declared} bytes, the block holds {size}")
            d = zstandard.ZstdDecompressor(max_window_size=1 << 31)
            return d.decompress(payload, max_output_size=size + 1)
        except zstandard.ZstdError as exc:
            raise CodecError(f"zstd: {exc}") from None


@lmar.hookimpl
def register_codecs(register):
    register(ZstdCodec)
