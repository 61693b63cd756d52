"""lmar's range coder: round trips everywhere, and bit-compatibility with constriction's queue coder.

Why this matters: archives written while lmar used constriction (audio members, lm ``cm1`` members, llm
members) must keep decoding, and new members must stay byte-identical, with no constriction installed
(it has no aarch64 wheel). The comparisons with constriction run where the ``test`` extra installs it
(x86-64) and skip elsewhere; the golden hash and the audio fixture below pin the same bits without it.
"""
from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path

import numpy as np
import pytest

import lmar.plugins
from lmar.errors import CodecError
from lmar.plugins.rangecoder import ONE, Categorical, RangeCoderError, RangeDecoder, RangeEncoder

try:
    import constriction
except ImportError:  # not installable on aarch64; the comparisons skip there
    constriction = None

needs_constriction = pytest.mark.skipif(constriction is None, reason="constriction is not installed (x86-64 test extra)")

Op = tuple  # (kind, symbols, parameter): kind "table" | "rows" | "uniform" | "bernoulli"


def _heavy(u: np.ndarray) -> np.ndarray:
    """u**8 by multiplications only: heavy-tailed weights that every platform computes alike."""
    w = u * u
    w = w * w
    return w * w


def make_ops(seed: int, llm: bool = False) -> list[Op]:
    """A stream mixing every model lmar codes with, edge cases included (zeros, tiny last weights, p = 0 or 1).

    ``llm=True`` adds rows shaped like an LLM step (exp of normal logits over a 49152-token vocabulary);
    np.exp may differ in its last bit between CPUs, so those are for same-process comparisons only.
    """
    rng = np.random.default_rng(seed)
    ops: list[Op] = []
    for n in (2, 3, 257, 513):
        w = _heavy(rng.random(n))
        w[rng.random(n) < 0.1] = 0.0
        w[0] += 0.25
        ops.append(("table", rng.integers(0, n, 400), w))
    ops.append(("table", rng.integers(0, 256, 200), np.full(256, 1.0 / 256)))
    ops.append(("table", rng.integers(0, 40, 200), _heavy(rng.random(40)).astype(np.float32) + np.float32(1e-3)))
    for dt in (np.float32, np.float64):
        for n in (2, 17, 1000):
            m = 150
            w = _heavy(rng.random((m, n)))
            w[rng.random((m, n)) < 0.05] = 0.0
            w[:, 0] += 1e-3
            s = rng.integers(0, n, m)
            s[::11] = n - 1
            s[::13] = 0
            w[(np.arange(m) % 7 == 0) & (s != n - 1), -1] = 1e-30  # a vanishing last symbol, not coded
            w[np.arange(m), s] += 0.05  # a coded last symbol must not vanish (see the test below)
            ops.append(("rows", s, w.astype(dt)))
    if llm:
        for dt in (np.float32, np.float64):
            z = rng.normal(0.0, 4.0, (6, 49152))
            w = np.exp((z - z.max(axis=1, keepdims=True)).astype(dt))
            s = np.array([0, 49151, 123, int(np.argmax(w[3])), 40000, 7])
            w[1, -1] += dt(0.01)
            ops.append(("rows", s, w))
    sizes = np.concatenate([np.array([2, 3, 1 << 12, 1 << 16, (1 << 23) + 1, 1 << 23, 1 << 24]),
                            rng.integers(2, 1 << 24, 600)])
    sizes = rng.permutation(np.repeat(sizes, 3))
    syms = (rng.random(sizes.size) * sizes).astype(np.int64)
    syms[::9] = sizes[::9] - 1
    ops.append(("uniform", syms, sizes))
    p = rng.integers(0, 65537, 3000) / 65536.0
    p[:4] = [0.0, 1.0, 0.5, 2.0**-40]
    bits = (rng.random(p.size) < p).astype(np.int64)
    bits[4:40:3] ^= 1  # some improbable bits too
    ops.append(("bernoulli", bits, p))
    return ops


def encode_ours(ops: list[Op]) -> np.ndarray:
    enc = RangeEncoder()
    for kind, s, par in ops:
        if kind == "table":
            enc.encode_table(s, Categorical(par))
        elif kind == "rows":
            enc.encode_rows(s, par)
        elif kind == "uniform":
            enc.encode_uniform(s, par)
        else:
            enc.encode_bernoulli(s, par)
    return enc.get_compressed()


def decode_ours(words: np.ndarray, ops: list[Op]) -> list[np.ndarray]:
    dec = RangeDecoder(words)
    out = []
    for kind, s, par in ops:
        if kind == "table":
            out.append(dec.decode_table(Categorical(par), len(s)))
        elif kind == "rows":
            out.append(dec.decode_rows(par))
        elif kind == "uniform":
            out.append(dec.decode_uniform(par))
        else:
            out.append(dec.decode_bernoulli(par))
    return out


def _constriction_model(kind: str, par: np.ndarray):  # type: ignore[no-untyped-def]
    m = constriction.stream.model
    if kind == "table":
        return m.Categorical(par, perfect=False), ()
    if kind == "rows":
        return m.Categorical(perfect=False), (par,)
    if kind == "uniform":
        return m.Uniform(), (par.astype(np.int32),)
    return m.Bernoulli(perfect=False), (par,)


def encode_constriction(ops: list[Op]) -> np.ndarray:
    enc = constriction.stream.queue.RangeEncoder()
    for kind, s, par in ops:
        model, params = _constriction_model(kind, par)
        enc.encode(s.astype(np.int32), model, *params)
    return enc.get_compressed()


def decode_constriction(words: np.ndarray, ops: list[Op]) -> list[np.ndarray]:
    dec = constriction.stream.queue.RangeDecoder(words)
    out = []
    for kind, s, par in ops:
        model, params = _constriction_model(kind, par)
        out.append(np.asarray(dec.decode(model, *params) if params else dec.decode(model, len(s)), np.int64))
    return out


def _same_symbols(got: list[np.ndarray], ops: list[Op]) -> bool:
    return all(np.array_equal(g, s) for g, (_, s, _) in zip(got, ops))


# -- everywhere --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_of_a_mixed_stream(seed: int) -> None:
    ops = make_ops(seed)
    words = encode_ours(ops)
    assert words.dtype == np.uint32
    assert _same_symbols(decode_ours(words, ops), ops)


#: Words of ``make_ops(2026)``, identical from constriction 0.5.0 and from our coder (x86-64, this session):
#: inputs built from integers and IEEE basic operations, so every platform must reproduce them exactly.
GOLDEN_WORDS = (1972, "21ebf1041d461a6b4d553c5fe1db69828c6b83b1d3c37f4b1f66aaaf8bc30f7f")


def test_golden_words_pin_constrictions_bits_without_constriction() -> None:
    words = encode_ours(make_ops(2026))
    assert (words.size, hashlib.sha256(words.astype("<u4").tobytes()).hexdigest()) == GOLDEN_WORDS


def test_empty_encoder_gives_no_words_and_encoding_can_continue_after_reading_them() -> None:
    enc = RangeEncoder()
    assert enc.get_compressed().size == 0
    enc.encode_uniform(np.array([5]), 10)
    first = enc.get_compressed()
    enc.encode_uniform(np.array([7, 1]), 10)
    assert first.size >= 1 and enc.get_compressed().size >= first.size
    assert RangeDecoder(enc.get_compressed()).decode_uniform(np.full(3, 10)).tolist() == [5, 7, 1]
    assert RangeDecoder(first).decode_uniform(np.full(1, 10)).tolist() == [5]


def test_bad_symbols_and_models_raise_one_line_codec_errors() -> None:
    enc = RangeEncoder()
    with pytest.raises(RangeCoderError):
        enc.encode_table(np.array([3]), Categorical(np.ones(3)))
    with pytest.raises(RangeCoderError):
        enc.encode_uniform(np.array([-1]), 4)
    with pytest.raises(RangeCoderError):
        enc.encode_uniform(np.array([0]), 1)
    with pytest.raises(RangeCoderError):
        enc.encode_bernoulli(np.array([2]), np.array([0.5]))
    for bad in (np.zeros(4), np.array([1.0, np.nan]), np.array([1.0, np.inf]), np.array([1.0, -0.5]), np.ones(1)):
        with pytest.raises(RangeCoderError):
            Categorical(bad)
        with pytest.raises(RangeCoderError):
            enc.encode_rows(np.array([0]), bad[None, :])
    with pytest.raises(RangeCoderError):
        Categorical(np.ones(4, dtype=np.int64))
    assert issubclass(RangeCoderError, CodecError)


def test_coding_a_vanishing_last_symbol_fails_as_in_constriction() -> None:
    """Rounding can put the last symbol's left end at 2**24 (zero width); constriction panics there."""
    row = np.array([[0.0987539, 1e-30]], dtype=np.float32)
    RangeEncoder().encode_rows(np.array([0]), row)
    with pytest.raises(RangeCoderError):
        RangeEncoder().encode_rows(np.array([1]), row)
    if constriction is not None:
        with pytest.raises(BaseException, match="leakiness"):
            constriction.stream.queue.RangeEncoder().encode(
                np.array([1], np.int32), constriction.stream.model.Categorical(perfect=False), row)


@pytest.mark.parametrize("seed", range(4))
def test_garbage_words_decode_to_symbols_or_raise_codec_error(seed: int) -> None:
    ops = make_ops(seed)
    words = np.random.default_rng(seed).integers(0, 1 << 32, 300, dtype=np.uint64).astype(np.uint32)
    try:
        decode_ours(words, ops)
    except RangeCoderError:
        pass


def test_importing_the_coder_and_its_users_does_not_import_numba() -> None:
    """numba costs ~0.5 s to import; commands that code nothing (``lmar list``) must not pay it."""
    import subprocess
    import sys

    mods = ["rangecoder", "media.intcoder", "media.residual_coder", "lmcore.legacy.cm1_block", "llmcore.coding"]
    code = "import sys\n" + "".join(f"import lmar.plugins.{m}\n" for m in mods) + "print('numba' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_no_plugin_module_imports_constriction() -> None:
    root = Path(lmar.plugins.__file__).parent
    users = [p.name for p in root.rglob("*.py") if re.search(r"^\s*(import|from)\s+constriction\b", p.read_text(), re.M)]
    assert users == []


# -- against constriction -------------------------------------------------------------------------------------
@needs_constriction
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_words_equal_constrictions_and_each_decodes_the_other(seed: int) -> None:
    ops = make_ops(seed, llm=True)
    ours, theirs = encode_ours(ops), encode_constriction(ops)
    assert ours.size == theirs.size and np.array_equal(ours, theirs)
    assert _same_symbols(decode_ours(theirs, ops), ops)
    assert _same_symbols(decode_constriction(ours, ops), ops)


@needs_constriction
def test_golden_words_are_constrictions() -> None:
    words = encode_constriction(make_ops(2026))
    assert (words.size, hashlib.sha256(words.astype("<u4").tobytes()).hexdigest()) == GOLDEN_WORDS


@needs_constriction
def test_carries_and_seal_words_match_constriction_symbol_by_symbol() -> None:
    """Held-back (carry) words, their flush in both directions, and every seal shape, one symbol at a time."""
    rng = np.random.default_rng(7)
    n = 12000
    sizes = rng.integers(2, 1 << 24, n)
    syms = (rng.random(n) * sizes).astype(np.int64)
    ours, theirs = RangeEncoder(), constriction.stream.queue.RangeEncoder()
    uniform = constriction.stream.model.Uniform()
    seen = {"held": 0, "flush": 0, "carry": 0, "two_seal_words": 0}
    for i in range(n):
        held_before, held_word, written = int(ours._st[2]), int(ours._st[3]), int(ours._st[4])
        ours.encode_uniform(syms[i:i + 1], sizes[i:i + 1])
        theirs.encode(syms[i:i + 1].astype(np.int32), uniform, sizes[i:i + 1].astype(np.int32))
        if held_before and not ours._st[2]:
            seen["flush"] += 1
            seen["carry"] += int(ours._buf[written]) == (held_word + 1) & 0xFFFFFFFF
        sealed = ours.get_compressed()
        extra = sealed.size - int(ours._st[4]) - int(ours._st[2])
        seen["two_seal_words"] += extra == 2
        if ours._st[2] or extra == 2 or i % 500 == 0:
            seen["held"] += bool(ours._st[2])
            assert np.array_equal(sealed, theirs.get_compressed()), i
    assert np.array_equal(ours.get_compressed(), theirs.get_compressed())
    assert min(seen.values()) > 0, seen


@needs_constriction
def test_every_audio_table_quantises_like_constriction() -> None:
    """All 2 x 2048 residual tables of the audio codec: each symbol of each table, coded once, same words."""
    from lmar.plugins.media import residual_coder as rcod

    alphabet = np.arange(rcod.ALPHABET)
    for scaled in (False, True):
        ours, theirs = RangeEncoder(), constriction.stream.queue.RangeEncoder()
        for grid in range(rcod.NGRID):
            w = rcod._shape(grid, scaled)
            ours.encode_table(alphabet, Categorical(w))
            theirs.encode(alphabet.astype(np.int32), constriction.stream.model.Categorical(w, perfect=False))
        assert np.array_equal(ours.get_compressed(), theirs.get_compressed())


# -- a member written with constriction ---------------------------------------------------------------------
FIXTURE = Path(__file__).parent / "data" / "audio_v1_constriction.bin"
FIXTURE_PARAMS = {"frame": 512, "max_order": 32}
FIXTURE_WAV_SHA256 = "2a57f0e3f6fc86a7400372369caf27811d4c7ce8dd2a751d1298e3c9897107b7"


def fixture_wav() -> bytes:
    """A 24-bit stereo WAV from integers only: a tone with noise, then loud noise with spikes (escapes, k > 12)."""
    n = 4096
    t = np.arange(n, dtype=np.int64)
    h = (t * 2654435761 + 12345) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 2246822519) & 0xFFFFFFFF
    h ^= h >> 13
    saw = (t * 97) % 8000 - 4000
    left = saw * 300 + h % 2001 - 1000
    right = left // 2 + (h >> 11) % 20001 - 10000
    loud = t >= n // 2
    left[loud] = (h[loud] % (1 << 23)) - (1 << 22)
    right[loud] = ((h[loud] >> 7) % (1 << 22)) - (1 << 21)
    left[::509] = 8000000
    right[::331] = -8000000
    x = np.clip(np.stack([left, right], axis=1), -(1 << 23), (1 << 23) - 1).reshape(-1)
    u = (x & 0xFFFFFF).astype(np.uint32)
    raw = np.stack([u & 255, (u >> 8) & 255, u >> 16], axis=1).astype(np.uint8).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 2, 48000, 48000 * 6, 6, 24)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(raw)) + raw
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_audio_member_written_with_constriction_still_decodes() -> None:
    """Payload written by the audio codec while it used constriction 0.5.0 (lmar commit 6f3ddeb)."""
    from lmar.plugins.audio_codec import AudioCodec

    data = fixture_wav()
    assert hashlib.sha256(data).hexdigest() == FIXTURE_WAV_SHA256
    assert AudioCodec(**FIXTURE_PARAMS).decompress(FIXTURE.read_bytes(), len(data)) == data
