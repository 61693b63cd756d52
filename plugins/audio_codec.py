"""Lossless audio codec for PCM WAV (8/16/24-bit, 1-8 channels, any rate).

Samples are coded by :mod:`lmar.plugins.media.audio_coder` (stereo decorrelation, per-frame LPC up to
order 32, an NLMS second stage, adaptive arithmetic coding of residuals); every byte that is not a sample
(RIFF header, other chunks, a partial last frame, trailing data) is kept verbatim, so the output is the
input bit for bit.
Inputs are recognised from their bytes; anything else is declined in :meth:`AudioCodec.accepts`.
"""
from __future__ import annotations

import struct

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError
from lmar.plugins.media import sidebytes
from lmar.plugins.media.wav import WavLayout, join, parse_wav, split

_HEAD = struct.Struct("<QQBB")  # WavLayout fields


def _coder():
    """The sample coder (numpy, numba), imported on first use: every lmar command loads the plugins."""
    from lmar.plugins.media import audio_coder

    return audio_coder


class AudioCodec(Codec):
    name = "audio"
    kind = "audio"
    whole_files = True
    description = "PCM WAV via stereo decorrelation, LPC + NLMS and adaptive arithmetic coding"
    block_size = 256 << 20
    speed = 3e5
    default_params = {"frame": 0, "max_order": 32}  # frame 0: try several lengths

    def accepts(self, data: bytes) -> bool:
        try:
            parse_wav(data)
        except (CodecError, struct.error):
            return False
        return True

    def compress(self, data: bytes) -> bytes:
        try:
            lay = parse_wav(data)
        except struct.error:
            raise CodecError("audio: malformed header") from None
        x, side = split(data, lay)
        frame, order = int(self.params["frame"]), int(self.params["max_order"])
        if not (frame == 0 or 16 <= frame <= 1 << 20) or not 1 <= order <= 32:
            raise CodecError("audio: bad frame or max_order parameter")
        body = _coder().encode(x, frame, order)
        return _HEAD.pack(lay.offset, lay.frames, lay.channels, lay.sample_bytes) + sidebytes.pack(side) + body

    def decompress(self, payload: bytes, size: int) -> bytes:
        try:
            lay = WavLayout(*_HEAD.unpack_from(payload))
        except struct.error:
            raise CodecError("audio: truncated payload") from None
        if not 1 <= lay.channels <= 8 or lay.sample_bytes not in (1, 2, 3):
            raise CodecError("audio: bad payload header")
        side, pos = sidebytes.unpack(payload, _HEAD.size)
        if len(side) + lay.end - lay.offset != size or lay.offset > len(side):
            raise CodecError("audio: payload layout does not match the recorded size")
        x = _coder().decode(payload, pos, lay.frames, lay.channels)
        return join(x, side, lay)


@lmar.hookimpl
def register_codecs(register):
    register(AudioCodec)
