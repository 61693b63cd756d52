"""Lossless image codec for uncompressed rasters (binary PGM/PPM, 24/32-bit BMP, uncompressed TIFF).

The pixels go to the best lossless image coder available (JPEG XL, WebP, JPEG-LS via ``imagecodecs``);
every other byte of the file is kept verbatim, so the output is the input bit for bit. Inputs are
recognised from their bytes; anything else is declined in :meth:`ImageCodec.accepts`.
"""
from __future__ import annotations

import struct

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError
from lmar.plugins.media import image_backends as backends
from lmar.plugins.media import sidebytes
from lmar.plugins.media.image_layout import Layout, find_layout, join, split

_HEAD = struct.Struct("<BQIIBBBIBB")  # back end, then Layout.as_tuple()


class ImageCodec(Codec):
    name = "image"
    kind = "image"
    whole_files = True
    description = "uncompressed PNM/BMP/TIFF pixels via lossless JPEG XL / WebP / JPEG-LS"
    block_size = 256 << 20
    speed = 2e5
    default_params = {"effort": 9, "backends": [backends.JXL, backends.WEBP, backends.JPEGLS, backends.LZMA]}

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        if not backends.installed():
            return False, "pip install imagecodecs"
        return True, ""

    def accepts(self, data: bytes) -> bool:
        try:
            find_layout(data)
        except (CodecError, struct.error, ValueError):
            return False
        return True

    def compress(self, data: bytes) -> bytes:
        try:
            lay = find_layout(data)
        except (struct.error, ValueError):
            raise CodecError("image: malformed header") from None
        pix, side = split(data, lay)
        tag, blob = backends.encode_best(pix, int(self.params["effort"]), list(self.params["backends"]))
        return _HEAD.pack(tag, *lay.as_tuple()) + sidebytes.pack(side) + blob

    def decompress(self, payload: bytes, size: int) -> bytes:
        try:
            tag, *fields = _HEAD.unpack_from(payload)
        except struct.error:
            raise CodecError("image: truncated payload") from None
        lay = Layout(*fields[:5], bool(fields[5]), fields[6], bool(fields[7]), bool(fields[8]))
        side, pos = sidebytes.unpack(payload, _HEAD.size)
        total = len(side) + lay.row_bytes * lay.height
        if total != size:  # checked before decoding so a hostile header cannot make us allocate a huge raster
            raise CodecError("image: payload layout does not match the recorded size")
        lay.check(total)
        shape = (lay.height, lay.width) if lay.channels == 1 else (lay.height, lay.width, lay.channels)
        import numpy as np  # here, not with the plugin: every lmar command loads the plugins

        dtype = np.dtype(np.uint8 if lay.sample_bytes == 1 else np.uint16)
        pix = backends.decode(tag, payload[pos:], shape, dtype)
        return join(pix, side, lay)


@lmar.hookimpl
def register_codecs(register):
    register(ImageCodec)
