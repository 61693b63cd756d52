"""The image codec: bit-exact round trips of every supported raster layout, clean refusal of the rest."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_flipped_payload_fails_cleanly
from lmar.errors import CodecError
from lmar.plugins.image_codec import ImageCodec
from lmar.registry import get_registry

pytest.importorskip("imagecodecs")
FAST = {"effort": 3}  # the bitstream is the same kind at any effort; keep the suite quick


def _pixels(rng: np.random.Generator, h: int, w: int, c: int, maxval: int) -> np.ndarray:
    """Smooth-ish pixels with noise, so predictors have something to find but nothing is trivial."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = (yy * 7 + xx * 3)[..., None] * np.arange(1, c + 1) + rng.integers(0, 9, (h, w, c))
    return (base % (maxval + 1)).astype(np.uint16 if maxval > 255 else np.uint8)


def pnm(pix: np.ndarray, maxval: int, comment: bytes = b"", tail: bytes = b"") -> bytes:
    h, w = pix.shape[:2]
    magic = b"P6" if pix.ndim == 3 and pix.shape[2] == 3 else b"P5"
    body = pix.astype(">u2").tobytes() if maxval > 255 else pix.astype(np.uint8).tobytes()
    return magic + b"\n" + comment + b"%d %d\n%d\n" % (w, h, maxval) + body + tail


def bmp(pix: np.ndarray, top_down: bool = False, pad_byte: int = 0, tail: bytes = b"") -> bytes:
    h, w, c = pix.shape
    stride = ((w * c * 8 + 31) // 32) * 4
    rows = pix[:, :, [2, 1, 0, 3][:c]]
    if not top_down:
        rows = rows[::-1]
    raw = b"".join(r.tobytes() + bytes([pad_byte]) * (stride - w * c) for r in rows)
    off = 54
    head = b"BM" + struct.pack("<IHHI", off + len(raw), 0, 0, off)
    dib = struct.pack("<IiiHHIIiiII", 40, w, -h if top_down else h, 1, c * 8, 0, len(raw), 2835, 2835, 0, 0)
    return head + dib + raw + tail


def tiff(pix: np.ndarray, big_endian: bool = False, strips: int = 1) -> bytes:
    """A minimal uncompressed chunky TIFF with ``strips`` contiguous strips."""
    h, w = pix.shape[:2]
    c = 1 if pix.ndim == 2 else pix.shape[2]
    bo = ">" if big_endian else "<"
    bits = 16 if pix.dtype == np.uint16 else 8
    body = pix.astype(bo + ("u2" if bits == 16 else "u1")).tobytes()
    rps = -(-h // strips)
    row = w * c * bits // 8
    counts = [min(rps, h - i * rps) * row for i in range(strips)]
    data_off = 8
    offsets = [data_off + sum(counts[:i]) for i in range(strips)]
    extra = data_off + len(body)
    arrays = struct.pack(bo + "I" * strips, *offsets) + struct.pack(bo + "I" * strips, *counts)
    arrays += struct.pack(bo + "H" * c, *([bits] * c)) + b"\0\0"
    ifd_off = extra + len(arrays) + (len(arrays) & 1)

    def entry(tag: int, typ: int, n: int, value: int | None = None, at: int | None = None) -> bytes:
        if at is not None:
            return struct.pack(bo + "HHII", tag, typ, n, at)
        if typ == 3:
            return struct.pack(bo + "HHIHH", tag, typ, n, value, 0)
        return struct.pack(bo + "HHII", tag, typ, n, value)

    def many(tag: int, typ: int, vals_at: int, n: int, first: int) -> bytes:
        return entry(tag, typ, n, value=first) if n == 1 else entry(tag, typ, n, at=vals_at)

    entries = [
        entry(256, 4, 1, w), entry(257, 4, 1, h),
        many(258, 3, extra + 8 * strips, c, bits), entry(259, 3, 1, 1),
        entry(262, 3, 1, 2 if c >= 3 else 1),
        many(273, 4, extra, strips, offsets[0]), entry(277, 3, 1, c), entry(278, 4, 1, rps),
        many(279, 4, extra + 4 * strips, strips, counts[0]),
    ]
    ifd = struct.pack(bo + "H", len(entries)) + b"".join(entries) + b"\0\0\0\0"
    head = (b"MM\0*" if big_endian else b"II*\0") + struct.pack(bo + "I", ifd_off)
    return head + body + arrays + b"\0" * (ifd_off - extra - len(arrays)) + ifd


def roundtrip(data: bytes, **params: object) -> bytes:
    codec = ImageCodec(**{**FAST, **params})
    assert codec.accepts(data)
    payload = codec.compress(data)
    assert ImageCodec().decompress(payload, len(data)) == data
    return payload


RNG = np.random.default_rng(7)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("maxval", [255, 200, 1023, 65535])
@pytest.mark.parametrize("width", [1, 17])
def test_pnm_layouts(channels: int, maxval: int, width: int) -> None:
    pix = _pixels(RNG, 9, width, channels, maxval)
    roundtrip(pnm(pix if channels == 3 else pix[..., 0], maxval))


def test_pnm_comments_and_trailing_bytes() -> None:
    pix = _pixels(RNG, 12, 13, 3, 255)
    roundtrip(pnm(pix, 255, comment=b"# made by a test\n#second\n", tail=b"\nanother image follows"))
    data = b"P5 \t3\r\n# c\n 2 # inline\n255\n" + bytes(range(6))
    roundtrip(data)


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("width", [1, 2, 3, 5, 31])
@pytest.mark.parametrize("top_down", [False, True])
def test_bmp_layouts(channels: int, width: int, top_down: bool) -> None:
    pix = _pixels(RNG, 7, width, channels, 255)
    roundtrip(bmp(pix, top_down=top_down, pad_byte=0xAB, tail=b"xyz"))


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("channels,dtype", [(1, np.uint8), (3, np.uint8), (3, np.uint16), (4, np.uint8), (1, np.uint16)])
def test_tiff_layouts(big_endian: bool, channels: int, dtype: type) -> None:
    pix = _pixels(RNG, 10, 9, channels, 255 if dtype == np.uint8 else 40000)
    roundtrip(tiff(pix if channels > 1 else pix[..., 0], big_endian=big_endian, strips=3))


def test_photo_is_coded_smaller_than_raw() -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    pix = np.stack([(xx * 2 + yy) % 256, (yy * 3) % 256, (xx ^ yy) % 256], axis=-1).astype(np.uint8)
    data = pnm(pix, 255)
    assert len(roundtrip(data)) < len(data) // 4


@pytest.mark.parametrize(
    "data",
    [b"", b"P6\n", b"P6\n3 3\n255", b"P7\n3 3\n255\n" + b"\0" * 27, b"P6\n3 3\n0\n" + b"\0" * 27,
     b"P6\n3 3\n70000\n" + b"\0" * 54, b"P6\n0 3\n255\n", b"BM" + b"\0" * 60, b"II*\0" + b"\xff" * 8,
     b"MM\0*\0\0\0\x08\0\x01", b"RIFF....WAVEfmt ", b"hello world"],
)
def test_declines_other_bytes(data: bytes) -> None:
    codec = ImageCodec(**FAST)
    assert codec.accepts(data) is False
    with pytest.raises(CodecError):
        codec.compress(data)


def test_lying_dimensions() -> None:
    pix = _pixels(RNG, 8, 8, 3, 255)
    good = pnm(pix, 255)
    too_big = good.replace(b"8 8\n", b"8 9\n", 1)  # claims one row more than the file holds
    assert ImageCodec().accepts(too_big) is False
    too_small = good.replace(b"8 8\n", b"8 7\n", 1)  # the last row becomes trailing bytes
    roundtrip(too_small)
    b = bytearray(bmp(pix))
    struct.pack_into("<i", b, 18, 4000)  # width far beyond the file
    assert ImageCodec().accepts(bytes(b)) is False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["pgm", "ppm16", "bmp24", "bmp32", "tiff"]), st.integers(1, 12), st.integers(1, 12),
       st.integers(0, 2**32 - 1), st.integers(0, 400))
def test_truncation_never_gives_wrong_bytes(kind: str, h: int, w: int, seed: int, cut: int) -> None:
    rng = np.random.default_rng(seed)
    if kind == "pgm":
        data = pnm(_pixels(rng, h, w, 1, 255)[..., 0], 255)
    elif kind == "ppm16":
        data = pnm(_pixels(rng, h, w, 3, 4095), 4095)
    elif kind == "tiff":
        data = tiff(_pixels(rng, h, w, 3, 255))
    else:
        data = bmp(_pixels(rng, h, w, 3 if kind == "bmp24" else 4, 255))
    roundtrip(data)
    cut_data = data[: max(0, len(data) - 1 - cut)]
    codec = ImageCodec(**FAST)
    if not codec.accepts(cut_data):
        return
    try:
        payload = codec.compress(cut_data)
    except CodecError:
        return
    assert codec.decompress(payload, len(cut_data)) == cut_data


def test_bad_payloads_raise_codec_error() -> None:
    data = pnm(_pixels(RNG, 16, 16, 3, 255), 255)
    payload = roundtrip(data)
    codec = ImageCodec()
    for bad in (b"", payload[:10], payload[: len(payload) // 2], payload[:-1]):
        with pytest.raises(CodecError):
            codec.decompress(bad, len(data))
    with pytest.raises(CodecError):
        codec.decompress(payload, len(data) + 1)


_FUZZ_DATA = bmp(_pixels(np.random.default_rng(3), 9, 7, 3, 255))
_FUZZ_PAYLOAD = ImageCodec(**FAST).compress(_FUZZ_DATA)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_FUZZ_PAYLOAD) - 1), st.integers(0, 7)), min_size=1, max_size=3))
def test_corrupt_payloads_fail_cleanly(flips: list[tuple[int, int]]) -> None:
    """Flipped bits give CodecError or some bytes (the archive checksum catches those), nothing else."""
    assert_flipped_payload_fails_cleanly(ImageCodec(), _FUZZ_PAYLOAD, len(_FUZZ_DATA), flips)


def test_registered_through_entry_points() -> None:
    reg = get_registry()
    assert reg.get("image") is ImageCodec
    assert ImageCodec.kind == "image" and ImageCodec.block_size == 256 << 20
