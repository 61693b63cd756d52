"""The ``lm`` codec's payload fixtures (``tests/data/lm_v*_payload.bin``) and the input they code.

Shared by test_lm_codec, test_lm_integer and test_portability, so the input a fixture was written from
is defined once. Every fixture codes :func:`fixture_input` with :data:`FIXTURE_PARAMS` (40 segments, two
lanes), with the network its scheme was introduced with.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"
TEXT = (b"The quick brown fox jumps over the lazy dog. " * 8
        + b"Alice was beginning to get very tired of sitting by her sister on the bank, and of having "
          b"nothing to do: once or twice she had peeped into the book her sister was reading.\n") * 3
FIXTURE_PARAMS = {"min_segment": 64, "max_segments": 40}
#: (scheme, network, file). cm2-cm6 were written by the lmar version that introduced the scheme; cm1's by
#: the cm1 encoder as it stood before it was removed (the same bits as lmar 0.1, whose archive
#: ``lm_v1_cm1.lmar`` test_lm_codec also reads).
SCHEME_FIXTURES = [("cm1", "bytegru-v1", "lm_v1_cm1_payload.bin"),
                   ("cm2", "bytegru-v1", "lm_v2_cm2_payload.bin"), ("cm3", "bytegru-v2", "lm_v3_cm3_payload.bin"),
                   ("cm4", "bytegru-v2", "lm_v4_cm4_payload.bin"), ("cm5", "bytegru-v3", "lm_v5_cm5_payload.bin"),
                   ("cm6", "bytegru-v3i", "lm_v6_cm6_payload.bin")]
FIXTURE_MODEL = {scheme: model for scheme, model, _ in SCHEME_FIXTURES}
FIXTURE_FILE = {scheme: name for scheme, _, name in SCHEME_FIXTURES}


def binary_sample() -> bytes:
    """Small integers, every byte value, then alternating 0x00/0xff: 1,056 bytes unlike text."""
    rng = np.random.default_rng(7)
    ints = np.cumsum(rng.integers(0, 40, 150)).astype("<u4").tobytes()
    return ints + bytes(range(256)) + b"\x00\xff" * 100


def fixture_input() -> bytes:
    return (TEXT * 2)[:2400] + binary_sample()


def fixture_payload(scheme: str) -> bytes:
    return (DATA / FIXTURE_FILE[scheme]).read_bytes()
