"""Lossless raster coders behind the image codec, tried in turn; the smallest verified result wins.

JPEG XL lossless usually wins on photographs; WebP lossless and JPEG-LS are cheap extra tries that win on
some synthetic images; raw-LZMA2 of the samples is the always-available fallback (tiny or odd rasters).
Each result is decoded again before it is accepted, so a library quirk can cost size but not correctness.
"""
from __future__ import annotations

import lzma
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable

from lmar.errors import CodecError
from lmar.plugins.media.sidebytes import lzma_filters

if TYPE_CHECKING:
    import numpy as np


@lru_cache(maxsize=1)
def library() -> Any:
    """``imagecodecs``, or None when it is not installed; imported on first use, not with the plugin:
    with numpy it costs ~0.2 s that every lmar command would pay for a codec most archives never use."""
    try:
        import imagecodecs
    except ImportError:  # availability() reports it
        return None
    return imagecodecs


@lru_cache(maxsize=1)
def installed() -> bool:
    """Whether ``imagecodecs`` can be imported, without importing it (availability is asked per file)."""
    from importlib.util import find_spec

    return find_spec("imagecodecs") is not None


LZMA, JXL, WEBP, JPEGLS = 0, 1, 2, 3
NAMES = {LZMA: "lzma", JXL: "jpegxl", WEBP: "webp", JPEGLS: "jpegls"}


def _lzma_enc(pix: np.ndarray, effort: int) -> bytes | None:
    if pix.nbytes > 1 << 20:  # only ever wins on tiny or degenerate rasters; too slow to try on photos
        return None
    return lzma.compress(pix.tobytes(), format=lzma.FORMAT_RAW, filters=lzma_filters(pix.nbytes))


def _lzma_dec(blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    import numpy as np

    n = int(np.prod(shape)) * dtype.itemsize
    raw = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=lzma_filters(n)).decompress(blob, n + 1)
    if len(raw) != n:
        raise CodecError("image: raster has the wrong length")
    return np.frombuffer(raw, dtype).reshape(shape)


def _jxl_enc(pix: np.ndarray, effort: int) -> bytes | None:
    return library().jpegxl_encode(pix, lossless=True, effort=effort)


def _webp_enc(pix: np.ndarray, effort: int) -> bytes | None:
    if pix.dtype != "uint8" or pix.ndim != 3 or pix.shape[2] not in (3, 4):
        return None
    return library().webp_encode(pix, lossless=True, method=6)


def _jpegls_enc(pix: np.ndarray, effort: int) -> bytes | None:
    if pix.ndim == 3 and pix.shape[2] not in (3,):
        return None
    return library().jpegls_encode(pix)


def _lib_dec(fn_name: str) -> Callable[[bytes, tuple[int, ...], np.dtype], np.ndarray]:
    def dec(blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        import numpy as np

        lib = library()
        if lib is None:
            raise CodecError("image: imagecodecs is not installed")
        return np.asarray(getattr(lib, fn_name)(blob))

    return dec


ENCODERS = {LZMA: _lzma_enc, JXL: _jxl_enc, WEBP: _webp_enc, JPEGLS: _jpegls_enc}
DECODERS = {LZMA: _lzma_dec, JXL: _lib_dec("jpegxl_decode"), WEBP: _lib_dec("webp_decode"),
            JPEGLS: _lib_dec("jpegls_decode")}


def decode(tag: int, blob: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if tag not in DECODERS:
        raise CodecError(f"image: unknown raster back end {tag}")
    try:
        pix = DECODERS[tag](blob, shape, dtype)
    except CodecError:
        raise
    except Exception as exc:  # library errors on corrupt input come in many types
        raise CodecError(f"image: {NAMES[tag]} decode failed ({type(exc).__name__})") from None
    if pix.shape != shape or pix.dtype != dtype:
        raise CodecError(f"image: {NAMES[tag]} decoded a raster of the wrong shape")
    return pix


def encode_best(pix: np.ndarray, effort: int, backends: list[int]) -> tuple[int, bytes]:
    """(tag, blob) of the smallest back end whose output decodes back to exactly ``pix``."""
    import numpy as np

    best: tuple[int, bytes] | None = None
    for tag in backends:
        if tag != LZMA and library() is None:
            continue
        try:
            blob = ENCODERS[tag](pix, effort)
        except Exception:  # a back end that cannot take this raster is skipped
            continue
        if blob is None or (best is not None and len(blob) >= len(best[1])):
            continue
        try:
            ok = np.array_equal(decode(tag, blob, pix.shape, pix.dtype), pix)
        except CodecError:
            ok = False
        if ok:
            best = (tag, bytes(blob))
    if best is None:
        raise CodecError("image: no back end could code this raster")
    return best
