"""Packing of the bytes a media codec does not model (headers, comments, padding, trailing data).

Exact reproduction needs every such byte; they are usually tiny, so the packer picks the smallest of
raw / zlib / raw-LZMA2 (xz framing alone costs ~60 bytes) and records a one-byte tag.
"""
from __future__ import annotations

import lzma
import struct
import zlib

from lmar.errors import CodecError

_RAW, _ZLIB, _LZMA = 0, 1, 2


def lzma_filters(size: int) -> list[dict[str, int]]:
    """Raw LZMA2 filters with a dictionary just big enough for ``size`` bytes.

    A preset-9 dictionary (64 MiB) takes ~0.2 s to set up, ruinous for the few header bytes coded here;
    the decoder derives the same dictionary size from the recorded length.
    """
    dict_size = 1 << max(12, min(26, (max(size, 1) - 1).bit_length()))
    return [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": dict_size}]


def pack(data: bytes) -> bytes:
    """Tagged, length-prefixed, compressed ``data`` (self-delimiting, so it can precede other blobs)."""
    options = [(_RAW, data), (_ZLIB, zlib.compress(data, 9))]
    if len(data) > 64:
        options.append((_LZMA, lzma.compress(data, format=lzma.FORMAT_RAW, filters=lzma_filters(len(data)))))
    tag, blob = min(options, key=lambda o: len(o[1]))
    return struct.pack("<BII", tag, len(data), len(blob)) + blob


def unpack(payload: bytes, pos: int = 0) -> tuple[bytes, int]:
    """Inverse of :func:`pack`: returns (data, position after the packed blob)."""
    try:
        tag, size, n = struct.unpack_from("<BII", payload, pos)
    except struct.error:
        raise CodecError("media: truncated side-bytes header") from None
    pos += 9
    blob = payload[pos : pos + n]
    if len(blob) != n:
        raise CodecError("media: truncated side bytes")
    try:
        if tag == _RAW:
            out = bytes(blob)
        elif tag == _ZLIB:
            out = zlib.decompressobj().decompress(blob, size + 1)
        elif tag == _LZMA:
            out = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=lzma_filters(size)).decompress(blob, size + 1)
        else:
            raise CodecError(f"media: unknown side-bytes tag {tag}")
    except (zlib.error, lzma.LZMAError, EOFError) as exc:
        raise CodecError(f"media: bad side bytes ({exc})") from None
    if len(out) != size:
        raise CodecError("media: side bytes have the wrong length")
    return out, pos + n
