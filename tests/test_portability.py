"""Members made on this machine must decode on another CPU: here an older x86-64 (SSE4.2, no AVX).

Why: an archive has to open on the next computer its owner uses. ``qemu-x86_64 -cpu Nehalem`` (Debian's
``qemu-user``) runs this same Python and these same packages on an emulated CPU without AVX, which is
where float model outputs start to differ from an AVX-512 machine's. This is the cheap variant of
tools/portability/crosscheck.py (which adds Haswell, aarch64 and the reverse direction): ~2 KB members,
one per codec, created natively and all decoded by one emulated process (about 60 CPU seconds in all,
mostly the lm decodes under emulation). Skipped when
qemu-x86_64 is not installed.

Settings of the emulated run, none of which changes a bitstream: ``NUMBA_CPU_NAME=generic`` so numba's
compiled mixer is built once, natively, and loaded from the shared cache instead of being compiled
again under emulation (minutes); ``OPENBLAS_CORETYPE=Nehalem`` because numpy's OpenBLAS picks an AVX
kernel from QEMU's Nehalem CPUID and dies of SIGILL in numpy's import-time self-test.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import wave
from pathlib import Path

import pytest

QEMU = shutil.which("qemu-x86_64")
CPU = "Nehalem"
needs_qemu = pytest.mark.skipif(QEMU is None or os.uname().machine != "x86_64",
                                reason="needs qemu-x86_64 (apt-get install qemu-user) on an x86-64 machine")

CORPUS_TEXT = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "text" / "alice29.txt"
CLASSICAL = ("zlib", "bz2", "lzma", "zstd", "brotli", "ppmd")
CODECS = CLASSICAL + ("audio", "lm")
#: A codec-level case: an lm payload of the float scheme cm5, decoded with the member's recorded profile.
FLOAT_LM = "lm-cm5-float"
EMULATED_TIMEOUT = 900

#: Runs under emulation: read every archive through the public API and say what came back.
READER = """
import hashlib, json, sys
import lmar
out = {}
for codec, archive, name, sha in json.loads(sys.argv[1]):
    try:
        with lmar.open(archive) as ar:
            data = ar.read(name)
        out[codec] = "ok" if hashlib.sha256(data).hexdigest() == sha else "different bytes"
    except Exception as exc:
        out[codec] = f"{type(exc).__name__}: {exc}"
for label, spec in json.loads(sys.argv[2]).items():  # codec-level: a float lm payload and its profile
    from lmar.plugins.lm_codec import LmCodec
    want = bytes.fromhex(spec["data"])
    try:
        codec = LmCodec(**spec["params"])
        got = codec.decompress(bytes.fromhex(spec["payload"]), len(want))
        out[label] = "ok" if got == want else "decoded to different bytes (" + codec.mismatch_hint(spec["info"]) + ")"
    except Exception as exc:
        out[label] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def _text() -> bytes:
    if CORPUS_TEXT.is_file():
        return CORPUS_TEXT.read_bytes()[2000:4048]
    line = (b"Alice was beginning to get very tired of sitting by her sister on the bank, and of having "
            b"nothing to do: once or twice she had peeped into the book her sister was reading.\n")
    return (line * 20)[:2048]


def _wav(path: Path) -> None:
    """1,000 samples of 16-bit mono: two tones and a little seeded noise (about 2 KB)."""
    rng = random.Random(14)
    samples = [int(6000 * math.sin(i / 7.0) + 2500 * math.sin(i / 2.3) + rng.gauss(0, 300)) for i in range(1000)]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))


def lm_is_portable() -> bool:
    """True once the default lm scheme records the portable (integer network) numerics profile."""
    try:
        from lmar.plugins.lm_codec import LmCodec

        return LmCodec().header_info().get("numerics") == "portable"
    except Exception:
        return False


def _float_lm_payload(data: bytes) -> dict:
    """A payload of the float network's scheme (cm5: what lm wrote before the integer network), made here
    (by the block coder: the codec only decodes cm5)."""
    from lmar.plugins.lm_codec import LmCodec
    from lmar.plugins.lmcore import block_coder

    codec = LmCodec(scheme="cm5")
    payload = block_coder.encode_block(data, codec._plan(len(data)), codec._network(), codec._fingerprint(), "cm5",
                                       codec._prior)
    return {"params": dict(codec.params), "info": codec.header_info(), "data": data.hex(), "payload": payload.hex()}


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "LMAR_DEBUG"))}
    env.update(NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=str(tmp / "numba-cache"), LMAR_DEVICE="cpu",
               OMP_NUM_THREADS="1", OPENBLAS_CORETYPE=CPU, PYTHONDONTWRITEBYTECODE="1")
    return env


@pytest.fixture(scope="module")
def decoded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """codec -> 'ok' or what went wrong, for members made here and read under ``qemu-x86_64 -cpu Nehalem``."""
    tmp = tmp_path_factory.mktemp("portability")
    env = _env(tmp)
    (tmp / "text.txt").write_bytes(_text())
    _wav(tmp / "tone.wav")
    jobs, results = [], {}
    for codec in CODECS:
        name = "tone.wav" if codec == "audio" else "text.txt"
        archive = tmp / f"{codec}.lmar"
        proc = subprocess.run([sys.executable, "-m", "lmar.cli", "create", "-q", "--codec", codec, "-j", "1",
                               str(archive), name], cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode:
            results[codec] = f"native create failed: {proc.stderr.strip()}"
            continue
        jobs.append((codec, str(archive), name, hashlib.sha256((tmp / name).read_bytes()).hexdigest()))
    payloads = {FLOAT_LM: _float_lm_payload(_text()[:1024])}  # 1 KB: decoding it emulated costs ~6 CPU s
    proc = subprocess.run([QEMU, "-cpu", CPU, sys.executable, "-c", READER, json.dumps(jobs), json.dumps(payloads)],
                          cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=EMULATED_TIMEOUT)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        pytest.fail(f"the emulated reader failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    results.update(json.loads(lines[-1]))
    return results


@needs_qemu
@pytest.mark.parametrize("codec", CLASSICAL + ("audio",))
def test_portable_codecs_decode_on_nehalem(decoded: dict[str, str], codec: str) -> None:
    assert decoded[codec] == "ok"


@needs_qemu
def test_lm_decodes_on_nehalem(decoded: dict[str, str]) -> None:
    if not lm_is_portable():
        pytest.xfail("the lm scheme in use runs a float network: its logits differ without AVX (issue 14)")
    assert decoded["lm"] == "ok"


@needs_qemu
@pytest.mark.xfail(reason="float network (cm5): logits differ without AVX (issue 14); kept for old members",
                   strict=False)
def test_float_lm_decodes_on_nehalem(decoded: dict[str, str]) -> None:
    assert decoded[FLOAT_LM] == "ok"


@needs_qemu
@pytest.mark.parametrize("case", ["lm", FLOAT_LM])
def test_lm_failure_names_the_numerics_difference(decoded: dict[str, str], case: str) -> None:
    """A float member that fails elsewhere says so, naming the CPU flags, never 'truncated' or 'damaged'."""
    if decoded[case] == "ok":
        pytest.skip("decoded under emulation: there is no failure to describe")
    assert "encoded with a different numerics profile" in decoded[case], decoded[case]
    assert "cpu_flags" in decoded[case], decoded[case]


# -- without an emulator: the same error path, with a payload marked as made on another machine ----------

#: Offset of the numerics fingerprint in an lm payload header ("<3sBIII": magic, format, segments, crc32).
FINGERPRINT_AT = 12


@pytest.mark.parametrize("scheme", ["cm1", "cm5"])
def test_foreign_payload_is_left_to_the_profile_check(scheme: str) -> None:
    """A payload that ran out (or decodes wrong) under another profile is not called truncated or damaged:
    its bytes go back so the archive's checksum fails and the core names what differs."""
    from lm_fixtures import FIXTURE_MODEL, FIXTURE_PARAMS, fixture_input, fixture_payload

    from lmar.errors import CodecError
    from lmar.plugins.lm_codec import LmCodec

    data = fixture_input()
    codec = LmCodec(**FIXTURE_PARAMS, scheme=scheme, model=FIXTURE_MODEL[scheme])
    # The scheme's fixture, marked as made here (these schemes no longer encode).
    payload = fixture_payload(scheme)
    here = codec._fingerprint().to_bytes(4, "little")
    payload = payload[:FINGERPRINT_AT] + here + payload[FINGERPRINT_AT + 4:]
    cut = payload[: 16 + (len(payload) - 16) // 8 * 4]  # half the coder output, in whole 32-bit words (cm1)
    with pytest.raises(CodecError):
        codec.decompress(cut, len(data))  # made here: damaged
    fp = int.from_bytes(cut[FINGERPRINT_AT:FINGERPRINT_AT + 4], "little")
    foreign = cut[:FINGERPRINT_AT] + ((fp + 1) & 0xFFFFFFFF).to_bytes(4, "little") + cut[FINGERPRINT_AT + 4:]
    out = codec.decompress(foreign, len(data))
    assert len(out) == len(data) and out != data


def test_mismatch_hint_names_machine_flags_and_provider() -> None:
    from lmar.plugins.lmcore import runtime

    here = runtime.numerics_profile("CPUExecutionProvider")
    there = {**here, "machine": "aarch64", "cpu_flags": "asimd", "provider": "CUDAExecutionProvider"}
    hint = runtime.describe_mismatch(there, here)
    assert hint.startswith("encoded with a different numerics profile")
    assert all(k in hint for k in ("machine", "cpu_flags", "provider")) and "\n" not in hint


def test_cpu_flags_follow_what_the_cpu_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc/cpuinfo may describe the host (qemu-user): a flag numpy's CPU detection denies is dropped."""
    from lmar.plugins import ort_runtime
    from lmar.plugins.lmcore import runtime

    monkeypatch.setattr(ort_runtime, "_proc_cpu_flags", lambda: {"sse4_2", "avx", "avx2", "fma", "avx512f"})
    monkeypatch.setattr(ort_runtime, "_detected_cpu_features", lambda: {"SSE42": True, "AVX": False, "AVX2": False,
                                                                        "FMA3": False, "AVX512F": False})
    assert runtime._cpu_flags() == ["sse4_2"]
    monkeypatch.setattr(ort_runtime, "_detected_cpu_features", lambda: {})  # no numpy detection: /proc/cpuinfo
    assert runtime._cpu_flags() == ["sse4_2", "avx", "avx2", "fma", "avx512f"]
