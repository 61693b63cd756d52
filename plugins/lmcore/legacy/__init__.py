"""Frozen bitstream: never change, decode only.

The coding schemes here belong to archives written by earlier lmar versions. Their members must keep
decoding bit for bit, so nothing in this package may change behaviour, and nothing here encodes: a new
member is always coded with the live scheme (:mod:`lmar.plugins.lmcore.block_coder`).

* scheme ``cm1`` (lm version 1, lmar 0.1): a numpy context mixer (:mod:`.cm1_predictor` assembled from
  :mod:`.cm1_counters`, :mod:`.cm1_match`, :mod:`.cm1_mixer`; network probabilities from
  :mod:`.cm1_nnprob`), walked by :mod:`.cm1_loop` and range-decoded by :mod:`.cm1_block`.

Schemes ``cm2``-``cm5`` are decode-only too, but they run on the live compiled mixer with their own
frozen table layouts (:data:`lmar.plugins.lmcore.mixer_layout.SCHEME_LAYOUTS`), so they are not here.

The codec imports this package only when it decodes a member of one of these schemes
(:func:`decode_block` is the one entry point), so ``lmar create`` never loads it.
"""
from __future__ import annotations

from lmar.errors import CodecError

from ..network import Network
from ..segments import SegmentPlan

#: Schemes this package decodes.
SCHEMES = ("cm1",)


def decode_block(scheme: str, payload: bytes, plan: SegmentPlan, net: Network | None, fingerprint: int) -> bytes:
    """Decode one block of a legacy scheme; the one way into this package."""
    if scheme == "cm1":
        from .cm1_block import decode_block as decode_cm1

        return decode_cm1(payload, plan, net, fingerprint)
    raise CodecError(f"lm: {scheme!r} is not a legacy scheme")
