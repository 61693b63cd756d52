"""Where the pixels sit inside uncompressed image files (binary PNM, BMP, uncompressed TIFF).

A :class:`Layout` names a rectangular raster of ``height`` rows, each ``row_stride`` bytes apart starting
at ``offset``; every byte outside the pixel samples (header, comments, row padding, trailing data) is kept
verbatim by the codec, so a header that lies can cost compression but never correctness. Parsers only
have to be right about *which* bytes are pixels for compression to be good.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lmar.errors import CodecError

if TYPE_CHECKING:  # numpy is imported where arrays are made: every lmar command loads the plugins
    import numpy as np


@dataclass(frozen=True)
class Layout:
    offset: int
    height: int
    width: int
    channels: int  # 1 gray, 2 gray+alpha, 3 colour, 4 colour+alpha/padding
    sample_bytes: int  # 1 or 2
    big_endian: bool
    row_stride: int  # bytes from one row to the next (>= width * channels * sample_bytes)
    bottom_up: bool  # rows stored last-first (BMP)
    bgr: bool  # first three channels stored blue-first (BMP)

    @property
    def row_bytes(self) -> int:
        return self.width * self.channels * self.sample_bytes

    @property
    def end(self) -> int:
        return self.offset + self.row_stride * self.height

    def as_tuple(self) -> tuple[int, ...]:
        return (self.offset, self.height, self.width, self.channels, self.sample_bytes, int(self.big_endian),
                self.row_stride, int(self.bottom_up), int(self.bgr))

    def check(self, size: int) -> None:
        """Raise CodecError unless this layout is sane and fits in ``size`` bytes."""
        if not (self.height > 0 and self.width > 0 and 1 <= self.channels <= 4 and self.sample_bytes in (1, 2)):
            raise CodecError("image: unsupported or empty raster")
        if self.row_stride < self.row_bytes or self.offset < 0:
            raise CodecError("image: row stride smaller than a row")
        if self.end > size:
            raise CodecError("image: pixel data truncated")


# -- PNM (P5 gray / P6 colour) ---------------------------------------------------------------------------
_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n\r]*[\n\r])*(\d+)")


def parse_pnm(data: bytes) -> Layout:
    if len(data) < 3 or data[:1] != b"P" or data[1:2] not in (b"5", b"6") or not data[2:3].isspace():
        raise CodecError("image: not a binary PGM/PPM")
    pos, values = 2, []
    for _ in range(3):
        m = _PNM_TOKEN.match(data, pos)
        if m is None or len(m.group(1)) > 10:
            raise CodecError("image: bad PNM header")
        values.append(int(m.group(1)))
        pos = m.end()
    if pos >= len(data) or not data[pos : pos + 1].isspace():
        raise CodecError("image: PNM header not followed by whitespace")
    width, height, maxval = values
    if not 0 < maxval < 65536:
        raise CodecError("image: bad PNM maxval")
    channels = 3 if data[1:2] == b"6" else 1
    sb = 1 if maxval < 256 else 2
    return Layout(pos + 1, height, width, channels, sb, True, width * channels * sb, False, False)


# -- BMP (24/32-bit uncompressed) --------------------------------------------------------------------------
def parse_bmp(data: bytes) -> Layout:
    if len(data) < 54 or data[:2] != b"BM":
        raise CodecError("image: not a BMP")
    (off,) = struct.unpack_from("<I", data, 10)
    dib, width, height, planes, bpp, compression = struct.unpack_from("<IiiHHI", data, 14)
    if dib not in (40, 52, 56, 108, 124) or planes != 1 or bpp not in (24, 32):
        raise CodecError("image: unsupported BMP variant")
    if compression not in (0, 3) or (compression == 3 and bpp != 32):
        raise CodecError("image: compressed BMP")
    if width <= 0 or height == 0 or height == -(2**31) or off < 14 + dib:
        raise CodecError("image: bad BMP dimensions")
    stride = ((width * bpp + 31) // 32) * 4
    return Layout(off, abs(height), width, bpp // 8, 1, False, stride, height > 0, True)


# -- TIFF (uncompressed, chunky, contiguous strips) --------------------------------------------------------
_TIFF_TYPES = {3: ("H", 2), 4: ("I", 4)}


def _tiff_tags(data: bytes, bo: str) -> dict[int, list[int]]:
    (ifd,) = struct.unpack_from(bo + "I", data, 4)
    (count,) = struct.unpack_from(bo + "H", data, ifd)
    tags: dict[int, list[int]] = {}
    for i in range(count):
        tag, typ, n, raw = struct.unpack_from(bo + "HHI4s", data, ifd + 2 + 12 * i)
        if typ not in _TIFF_TYPES:
            continue
        code, width = _TIFF_TYPES[typ]
        if n == 0 or n > 1 << 20:
            raise CodecError("image: bad TIFF tag count")
        if n * width <= 4:
            vals = struct.unpack_from(bo + code * n, raw)
        else:
            (at,) = struct.unpack_from(bo + "I", raw)
            vals = struct.unpack_from(bo + code * n, data, at)
        tags[tag] = list(vals)
    return tags


def parse_tiff(data: bytes) -> Layout:
    if data[:4] == b"II*\0":
        bo = "<"
    elif data[:4] == b"MM\0*":
        bo = ">"
    else:
        raise CodecError("image: not a TIFF")
    try:
        t = _tiff_tags(data, bo)
    except struct.error:
        raise CodecError("image: truncated TIFF directory") from None

    def one(tag: int, default: int | None = None) -> int:
        if tag not in t:
            if default is None:
                raise CodecError(f"image: TIFF lacks tag {tag}")
            return default
        return t[tag][0]

    width, height, spp = one(256), one(257), one(277, 1)
    bits = t.get(258, [1])
    if one(259, 1) != 1 or one(284, 1) != 1 or one(339, 1) != 1:
        raise CodecError("image: TIFF is compressed, planar or not unsigned integers")
    if len(set(bits)) != 1 or bits[0] not in (8, 16) or not 1 <= spp <= 4 or len(bits) not in (1, spp):
        raise CodecError("image: unsupported TIFF sample layout")
    offsets, counts = t.get(273, []), t.get(279, [])
    if not offsets or len(offsets) != len(counts):
        raise CodecError("image: bad TIFF strips")
    for a, n, b in zip(offsets, counts, offsets[1:]):
        if a + n != b:
            raise CodecError("image: TIFF strips are not contiguous")
    sb = bits[0] // 8
    row = width * spp * sb
    if sum(counts) < row * height:
        raise CodecError("image: TIFF strips shorter than the raster")
    return Layout(offsets[0], height, width, spp, sb, bo == ">", row, False, False)


PARSERS = (parse_pnm, parse_bmp, parse_tiff)


def find_layout(data: bytes) -> Layout:
    """The layout of ``data``; CodecError if no parser recognises it or the raster does not fit."""
    for parse in PARSERS:
        try:
            layout = parse(data)
        except CodecError:
            continue
        layout.check(len(data))
        return layout
    raise CodecError("image: not a supported uncompressed image")


def split(data: bytes, lay: Layout) -> tuple[np.ndarray, bytes]:
    """(pixels as a top-down H x W [x C] native array in RGB order, every other byte in file order)."""
    import numpy as np

    region = np.frombuffer(data, np.uint8, count=lay.row_stride * lay.height, offset=lay.offset)
    region = region.reshape(lay.height, lay.row_stride)
    pad = region[:, lay.row_bytes :].tobytes()
    dt = np.dtype(np.uint8) if lay.sample_bytes == 1 else np.dtype(">u2" if lay.big_endian else "<u2")
    pix = np.ascontiguousarray(region[:, : lay.row_bytes]).view(dt).reshape(lay.height, lay.width, lay.channels)
    if lay.bottom_up:
        pix = pix[::-1]
    if lay.bgr and lay.channels >= 3:
        pix = pix[:, :, [2, 1, 0, 3][: lay.channels]]
    pix = np.ascontiguousarray(pix.astype(dt.newbyteorder("=")))
    if lay.channels == 1:
        pix = pix[:, :, 0]
    return pix, data[: lay.offset] + pad + data[lay.end :]


def join(pix: np.ndarray, side: bytes, lay: Layout) -> bytes:
    """Inverse of :func:`split`."""
    import numpy as np

    pad_len = (lay.row_stride - lay.row_bytes) * lay.height
    if len(side) < lay.offset + pad_len:
        raise CodecError("image: side bytes too short for the layout")
    expect = (lay.height, lay.width) if lay.channels == 1 else (lay.height, lay.width, lay.channels)
    want = np.uint8 if lay.sample_bytes == 1 else np.uint16
    if pix.shape != expect or pix.dtype != want:
        raise CodecError("image: decoded raster has the wrong shape or type")
    pix = pix.reshape(lay.height, lay.width, lay.channels)
    if lay.bgr and lay.channels >= 3:
        pix = pix[:, :, [2, 1, 0, 3][: lay.channels]]
    if lay.bottom_up:
        pix = pix[::-1]
    if lay.sample_bytes == 2:
        pix = pix.astype(">u2" if lay.big_endian else "<u2")
    rows = np.ascontiguousarray(pix).view(np.uint8).reshape(lay.height, lay.row_bytes)
    pad = np.frombuffer(side, np.uint8, count=pad_len, offset=lay.offset).reshape(lay.height, -1)
    region = np.concatenate([rows, pad], axis=1).tobytes()
    return side[: lay.offset] + region + side[lay.offset + pad_len :]
