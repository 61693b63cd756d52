"""Where the samples sit inside a PCM WAV (RIFF/WAVE) file.

Only the location and format of the sample bytes are taken from the header; every other byte (chunks
before and after ``data``, a partial last sample frame, trailing garbage) is kept verbatim by the codec,
so a header that lies about sizes can cost compression but never correctness. A ``data`` chunk that
claims more bytes than the file holds (a cut-off recording) is coded up to the end of the file.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lmar.errors import CodecError

if TYPE_CHECKING:  # numpy is imported where arrays are made: every lmar command loads the plugins
    import numpy as np

_PCM, _EXTENSIBLE = 1, 0xFFFE
_PCM_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


@dataclass(frozen=True)
class WavLayout:
    offset: int  # first sample byte
    frames: int  # whole sample frames coded (one sample per channel each)
    channels: int
    sample_bytes: int  # 1 (unsigned), 2 or 3 (signed little-endian)

    @property
    def end(self) -> int:
        return self.offset + self.frames * self.channels * self.sample_bytes


def parse_wav(data: bytes) -> WavLayout:
    """Locate the samples; CodecError for anything that is not PCM WAV we can model."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise CodecError("audio: not a RIFF/WAVE file")
    pos, fmt, walked = 12, None, 0
    while pos + 8 <= len(data):
        walked += 1
        if walked > 4096:  # real files have a handful of chunks; do not crawl through junk
            raise CodecError("audio: too many chunks before the samples")
        cid = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if cid == b"fmt ":
            if size < 16 or body + size > len(data):
                raise CodecError("audio: truncated fmt chunk")
            tag, channels, _rate, _bps, align, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == _EXTENSIBLE:
                if size < 40 or data[body + 26 : body + 40] != _PCM_GUID_TAIL:
                    raise CodecError("audio: WAVE_FORMAT_EXTENSIBLE that is not integer PCM")
                tag = struct.unpack_from("<H", data, body + 24)[0]
            if tag != _PCM or bits not in (8, 16, 24) or not 1 <= channels <= 8:
                raise CodecError("audio: unsupported WAV sample format")
            if align != channels * bits // 8:
                raise CodecError("audio: WAV block alignment does not match the sample format")
            fmt = (channels, bits // 8)
        elif cid == b"data":
            if fmt is None:
                raise CodecError("audio: data chunk before fmt chunk")
            channels, sb = fmt
            if size == 0:  # some streaming writers never fill the size in: take the rest of the file
                size = len(data) - body
            avail = min(size, len(data) - body)
            frames = avail // (channels * sb)
            if frames == 0:
                raise CodecError("audio: no samples")
            return WavLayout(body, frames, channels, sb)
        pos = body + size + (size & 1)
    raise CodecError("audio: no data chunk")


def split(data: bytes, lay: WavLayout) -> tuple[np.ndarray, bytes]:
    """(samples as int64 of shape frames x channels, signed; every other byte in file order)."""
    import numpy as np

    n = lay.frames * lay.channels
    raw = np.frombuffer(data, np.uint8, count=n * lay.sample_bytes, offset=lay.offset)
    if lay.sample_bytes == 1:
        x = raw.astype(np.int64) - 128
    elif lay.sample_bytes == 2:
        x = raw.view("<i2").astype(np.int64)
    else:
        b = raw.reshape(n, 3).astype(np.int64)
        x = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x -= (x & 0x800000) << 1
    return x.reshape(lay.frames, lay.channels), data[: lay.offset] + data[lay.end :]


def join(x: np.ndarray, side: bytes, lay: WavLayout) -> bytes:
    """Inverse of :func:`split`."""
    import numpy as np

    if x.shape != (lay.frames, lay.channels):
        raise CodecError("audio: decoded samples have the wrong shape")
    lo, hi = -(1 << (8 * lay.sample_bytes - 1)), 1 << (8 * lay.sample_bytes - 1)
    if x.size and (x.min() < lo or x.max() >= hi):
        raise CodecError("audio: decoded samples out of range")
    flat = x.reshape(-1)
    if lay.sample_bytes == 1:
        raw = (flat + 128).astype(np.uint8).tobytes()
    elif lay.sample_bytes == 2:
        raw = flat.astype("<i2").tobytes()
    else:
        u = (flat & 0xFFFFFF).astype(np.uint32)
        raw = np.stack([u & 0xFF, (u >> 8) & 0xFF, u >> 16], axis=1).astype(np.uint8).tobytes()
    return side[: lay.offset] + raw + side[lay.offset :]
