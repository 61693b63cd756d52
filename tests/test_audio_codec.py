"""The audio codec: bit-exact round trips of every supported WAV layout, clean refusal of the rest."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_flipped_payload_fails_cleanly
from lmar.errors import CodecError
from lmar.plugins.audio_codec import AudioCodec
from lmar.registry import get_registry

SMALL = {"frame": 256}  # short frames: the decoder steps through one frame's positions, keep tests quick


def signal(rng: np.random.Generator, n: int, chans: int, bits: int, kind: str = "music") -> np.ndarray:
    """Sample values (n, chans) in the signed range of ``bits``."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    t = np.arange(n)[:, None]
    if kind == "noise":
        return rng.integers(lo, hi + 1, (n, chans))
    if kind == "extremes":
        return rng.choice(np.array([lo, hi, 0, lo + 1, hi - 1]), (n, chans))
    if kind == "silence":
        return np.zeros((n, chans), dtype=np.int64)
    amp = 0.4 * hi
    x = amp * np.sin(2 * np.pi * t * (0.01 + 0.003 * np.arange(chans))) + amp * 0.3 * np.sin(0.173 * t)
    x = x + rng.normal(0, max(1.0, hi / 500), (n, chans))
    return np.clip(np.round(x), lo, hi).astype(np.int64)


def wav(x: np.ndarray, bits: int, *, before: bytes = b"", after: bytes = b"", odd: bytes = b"",
        extensible: bool = False, data_size: int | None = None, pad: bool = True) -> bytes:
    """A RIFF/WAVE file; ``odd`` bytes are a partial sample frame inside the data chunk."""
    n, chans = x.shape
    sb = bits // 8
    if bits == 8:
        raw = (x + 128).astype(np.uint8).tobytes()
    elif bits == 16:
        raw = x.astype("<i2").tobytes()
    else:
        u = (x.reshape(-1) & 0xFFFFFF).astype(np.uint32)
        raw = np.stack([u & 255, (u >> 8) & 255, u >> 16], axis=1).astype(np.uint8).tobytes()
    raw += odd
    if extensible:
        guid = struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, chans, 8000, 8000 * chans * sb, chans * sb, bits, 22, bits, 3) + guid
    else:
        fmt = struct.pack("<HHIIHH", 1, chans, 44100, 44100 * chans * sb, chans * sb, bits)
    size = len(raw) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + before
    body += b"data" + struct.pack("<I", size) + raw + (b"\0" if pad and len(raw) & 1 else b"") + after
    return b"RIFF" + struct.pack("<I", len(body)) + body


def chunk(cid: bytes, payload: bytes) -> bytes:
    return cid + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")


def roundtrip(data: bytes, **params: object) -> bytes:
    codec = AudioCodec(**{**SMALL, **params})
    assert codec.accepts(data)
    payload = codec.compress(data)
    assert AudioCodec().decompress(payload, len(data)) == data
    return payload


RNG = np.random.default_rng(11)


@pytest.mark.parametrize("bits", [8, 16, 24])
@pytest.mark.parametrize("chans", [1, 2])
@pytest.mark.parametrize("n", [1, 5, 700])
def test_layouts(bits: int, chans: int, n: int) -> None:
    roundtrip(wav(signal(RNG, n, chans, bits), bits))


@pytest.mark.parametrize("kind", ["noise", "extremes", "silence", "music"])
@pytest.mark.parametrize("bits", [8, 16, 24])
def test_signal_kinds(kind: str, bits: int) -> None:
    roundtrip(wav(signal(RNG, 600, 2, bits, kind), bits))


def test_extra_chunks_odd_data_and_trailing_bytes() -> None:
    x = signal(RNG, 513, 2, 16)
    listing = chunk(b"LIST", b"INFOISFT\x05\0\0\0lmar\0\0")
    data = wav(x, 16, before=listing + chunk(b"fact", b"\1\2\3"), after=chunk(b"id3 ", b"tag" * 5) + b"junk",
               odd=b"\x7f")
    roundtrip(data)
    roundtrip(wav(signal(RNG, 301, 3, 24), 24, odd=b"\1\2\3\4", pad=False))  # 3 channels, no pad byte
    roundtrip(wav(signal(RNG, 300, 2, 16), 16, extensible=True))


def test_default_parameters_and_compression() -> None:
    x = signal(RNG, 3000, 2, 16)
    data = wav(x, 16)
    payload = roundtrip(data, frame=4096)
    assert len(payload) < len(data) * 0.6


def test_long_input_is_coded_in_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    from lmar.plugins.media import audio_coder

    data = wav(signal(RNG, 2500, 2, 16), 16)
    monkeypatch.setattr(audio_coder, "SEGMENT", 1000)  # three segments, the last one short
    payload = roundtrip(data)
    monkeypatch.setattr(audio_coder, "SEGMENT", 7)  # the decoder reads the length from the stream
    assert AudioCodec().decompress(payload, len(data)) == data


def test_wasted_low_bits() -> None:
    x = signal(RNG, 800, 2, 16) << 8  # 16-bit material in a 24-bit container
    padded = roundtrip(wav(x, 24))
    assert len(padded) < len(roundtrip(wav(x >> 8, 16))) + 64
    roundtrip(wav(np.full((300, 1), -(1 << 23)), 24))  # one value, all low bits zero
    roundtrip(wav(np.zeros((300, 2), dtype=np.int64), 8))


def test_lying_data_size_is_still_exact() -> None:
    x = signal(RNG, 400, 1, 16)
    roundtrip(wav(x, 16, data_size=10**6))  # claims more than the file holds: code what is there
    roundtrip(wav(x, 16, data_size=100, after=b"rest"))  # claims less: the rest is kept as trailing bytes
    roundtrip(wav(x, 16, data_size=0, after=b"LIST\0\0\0\0"))  # size never filled in: code to the end


@pytest.mark.parametrize(
    "data",
    [b"", b"RIFF", b"RIFF\0\0\0\0WAVE", b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0" + b"\1\0",
     b"RIFF\0\0\0\0WAVEdata\4\0\0\0\0\0\0\0", b"RIFX\0\0\0\0WAVE", b"P6\n1 1\n255\n\0\0\0", b"hello"],
)
def test_declines_other_bytes(data: bytes) -> None:
    codec = AudioCodec()
    assert codec.accepts(data) is False
    with pytest.raises(CodecError):
        codec.compress(data)


def test_declines_unsupported_formats() -> None:
    x = signal(RNG, 50, 2, 16)
    good = wav(x, 16)
    float_fmt = good.replace(struct.pack("<HH", 1, 2), struct.pack("<HH", 3, 2), 1)
    bad_align = bytearray(good)
    struct.pack_into("<H", bad_align, 32, 3)  # block align that does not match 2 x 16 bit
    bits12 = bytearray(good)
    struct.pack_into("<H", bits12, 34, 12)
    for data in (float_fmt, bytes(bad_align), bytes(bits12), wav(x[:0], 16)):
        assert AudioCodec().accepts(data) is False


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([8, 16, 24]), st.integers(1, 2), st.integers(1, 300), st.integers(0, 2**32 - 1),
       st.integers(0, 700), st.booleans())
def test_truncation_never_gives_wrong_bytes(bits: int, chans: int, n: int, seed: int, cut: int, extra: bool) -> None:
    rng = np.random.default_rng(seed)
    data = wav(signal(rng, n, chans, bits, "music" if seed % 3 else "noise"), bits,
               before=chunk(b"LIST", b"x" * (seed % 7)) if extra else b"")
    roundtrip(data)
    cut_data = data[: max(0, len(data) - 1 - cut)]
    codec = AudioCodec(**SMALL)
    if not codec.accepts(cut_data):
        return
    try:
        payload = codec.compress(cut_data)
    except CodecError:
        return
    assert codec.decompress(payload, len(cut_data)) == cut_data


def test_bad_payloads_raise_codec_error() -> None:
    data = wav(signal(RNG, 900, 2, 16), 16)
    payload = roundtrip(data)
    codec = AudioCodec()
    for bad in (b"", payload[:5], payload[:40], payload[: len(payload) // 2], payload[:-1], payload + b"\0"):
        with pytest.raises(CodecError):
            codec.decompress(bad, len(data))
    with pytest.raises(CodecError):
        codec.decompress(payload, len(data) - 1)


_FUZZ_DATA = wav(signal(np.random.default_rng(3), 600, 2, 16), 16)
_FUZZ_PAYLOAD = AudioCodec(**SMALL).compress(_FUZZ_DATA)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_FUZZ_PAYLOAD) - 1), st.integers(0, 7)), min_size=1, max_size=3))
def test_corrupt_payloads_fail_cleanly(flips: list[tuple[int, int]]) -> None:
    """Flipped bits give CodecError or some bytes (the archive checksum catches those), nothing else."""
    assert_flipped_payload_fails_cleanly(AudioCodec(), _FUZZ_PAYLOAD, len(_FUZZ_DATA), flips)


def test_registered_through_entry_points() -> None:
    assert get_registry().get("audio") is AudioCodec
    assert AudioCodec.kind == "audio" and AudioCodec.block_size == 256 << 20
