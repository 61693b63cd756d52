"""The ``lm`` codec: exact round trips, cross-process reproducibility, and clear failures.

Inputs are small (a few KB) because every byte costs a network step and eight mixer updates; segment
counts are varied through ``min_segment`` so lockstep batching is exercised without big data.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lmar.errors import CodecError, CodecUnavailable
from lmar.plugins.lm_codec import DEFAULT_MODEL as MODEL  # the network new members are coded with
from lmar.plugins.lm_codec import ENCODE_SCHEMES, FLOAT_MODEL, SCHEMES
from lmar.plugins.lmcore import model_files
from lm_fixtures import (FIXTURE_MODEL, FIXTURE_PARAMS, SCHEME_FIXTURES, TEXT, binary_sample, fixture_input,
                         fixture_payload)

SHIPPED = model_files.SHIPPED_DIR / f"{MODEL}.onnx"
#: The float network of schemes cm2-cm5 (its numerics profile is the machine's).
FLOAT_SHIPPED = model_files.SHIPPED_DIR / f"{FLOAT_MODEL}.onnx"
#: Every network a scheme fixture below needs, and the (network, scheme) priors shipped beside them.
SHIPPED_MODELS = ("bytegru-v1", "bytegru-v2", FLOAT_MODEL, MODEL)
SHIPPED_PRIORS = ((FLOAT_MODEL, "cm5"), (MODEL, "cm6"))



def _codec(**params):
    from lmar.plugins.lm_codec import LmCodec

    return LmCodec(**params)


def test_shipped_models_and_priors_are_installed() -> None:
    """The package data every test here needs. Missing files fail here, by name, rather than skipping
    the suite: the models ship with lmar, so their absence is a broken install or checkout."""
    from lmar.plugins.lmcore import prior

    for name in SHIPPED_MODELS:
        for ext in (".onnx", ".json"):
            path = model_files.SHIPPED_DIR / f"{name}{ext}"
            assert path.is_file(), f"package data missing: {path}"
    for name, scheme in SHIPPED_PRIORS:
        path = prior.prior_path(model_files.load_card(name), scheme)
        assert path.is_file(), f"package data missing: {path}"


CASES = {
    "empty": b"",
    "one": b"Q",
    "run": b"\x00" * 1500,
    "random": np.random.default_rng(1).integers(0, 256, 700, dtype=np.uint8).tobytes(),
    "text": TEXT,
    "binary": binary_sample(),
}


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip(name: str) -> None:
    data = CASES[name]
    c = _codec(min_segment=128, max_segments=8)
    payload = c.compress(data)
    assert _codec(**c.params).decompress(payload, len(data)) == data


@pytest.mark.parametrize("min_segment,max_segments,size", [(4096, 1, 300), (200, 3, 900), (64, 64, 1100)])
def test_segment_counts(min_segment: int, max_segments: int, size: int) -> None:
    data = TEXT[:size]
    c = _codec(min_segment=min_segment, max_segments=max_segments)
    payload = c.compress(data)
    assert c.decompress(payload, len(data)) == data


def test_compresses_text_and_keeps_random_near_raw() -> None:
    c = _codec(min_segment=256)
    assert len(c.compress(TEXT)) < 0.5 * len(TEXT)
    rnd = CASES["random"]
    assert len(c.compress(rnd)) < len(rnd) * 1.15 + 32  # tiny input: the mixer has not learnt to abstain yet


def test_params_and_profile_recorded() -> None:
    c = _codec(scheme="cm5")
    assert c.params["model"] == FLOAT_MODEL
    assert c.params["model_sha256"] == model_files.file_sha256(FLOAT_SHIPPED)
    info = c.header_info()
    for key in ("model", "provider", "onnxruntime", "numpy", "cpu_flags", "machine"):
        assert key in info
    assert c.mismatch_hint(info).startswith("numerics profile matches")
    hint = c.mismatch_hint({**info, "provider": "CUDAExecutionProvider", "onnxruntime": "0.1"})
    assert "provider" in hint and "onnxruntime" in hint and "\n" not in hint
    facts = type(c).info()
    assert facts["model_bytes"] == SHIPPED.stat().st_size and facts["model"] == MODEL


def test_bad_payloads_raise_codec_error_quickly() -> None:
    data = TEXT[:900]
    c = _codec(min_segment=128)
    payload = c.compress(data)
    bad = [payload[:-4], payload[:10], payload[:-1], b"", b"junk" * 4,
           payload[:20] + bytes([payload[20] ^ 0x55]) + payload[21:]]
    t = time.monotonic()
    for blob in bad:
        with pytest.raises(CodecError):
            c.decompress(blob, len(data))
    with pytest.raises(CodecError):
        c.decompress(payload, len(data) + 1)  # a different plan cannot decode this stream
    assert time.monotonic() - t < 60


_CHILD = r"""
import sys, json, os
from lmar.plugins.lm_codec import LmCodec
mode, path = sys.argv[1], sys.argv[2]
job = json.load(open(path + ".json"))
if mode == "enc":
    c = LmCodec(**job["params"])
    data = open(path + ".raw", "rb").read()
    open(path + ".lm", "wb").write(c.compress(data))
    json.dump({**job, "params": c.params}, open(path + ".json", "w"))
else:
    c = LmCodec(**job["params"])
    out = c.decompress(open(path + ".lm", "rb").read(), job["size"])
    open(path + ".out", "wb").write(out)
"""


def _child(mode: str, path: Path, threads: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "LMAR_DEVICE": "cpu",
           "OPENBLAS_NUM_THREADS": threads}
    r = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path)], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_encode_and_decode_in_separate_processes(tmp_path: Path) -> None:
    """Different processes and thread settings must see identical numerics; 5 segments = 5 batch rows."""
    data = TEXT[:1000] + CASES["binary"][:300]
    base = tmp_path / "blk"
    base.with_suffix(".raw").write_bytes(data)
    Path(str(base) + ".raw").write_bytes(data)
    Path(str(base) + ".json").write_text(json.dumps({"params": {"min_segment": 256, "max_segments": 5},
                                                     "size": len(data)}))
    _child("enc", base, "1")
    _child("dec", base, "2")
    assert Path(str(base) + ".out").read_bytes() == data
    # The same bytes decode in this process too (a third thread configuration).
    job = json.loads(Path(str(base) + ".json").read_text())
    assert _codec(**job["params"]).decompress(Path(str(base) + ".lm").read_bytes(), len(data)) == data


def test_model_missing_is_a_clear_codec_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmar.plugins.lm_codec import LmCodec

    monkeypatch.setattr(model_files, "SHIPPED_DIR", tmp_path)
    monkeypatch.delenv(model_files.MODEL_DIR_ENV, raising=False)
    ok, why = LmCodec.availability()
    assert not ok and MODEL in why and "not installed" in why
    with pytest.raises(CodecUnavailable, match=f"{MODEL}.*not installed"):
        LmCodec()


def test_corrupt_model_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmar.plugins.lm_codec import LmCodec

    blob = bytearray(SHIPPED.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (tmp_path / f"{MODEL}.onnx").write_bytes(bytes(blob))
    shutil.copy(SHIPPED.with_suffix(".json"), tmp_path / f"{MODEL}.json")
    monkeypatch.setenv(model_files.MODEL_DIR_ENV, str(tmp_path))
    with pytest.raises(CodecUnavailable, match=f"{MODEL}.*corrupt"):
        LmCodec()


def test_different_model_hash_is_refused() -> None:
    with pytest.raises(CodecUnavailable, match=f"{MODEL}.*not installed"):
        _codec(model_sha256="0" * 64)


def _model_dir_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default model and its card copied to a search directory of their own (no prior yet)."""
    shutil.copy(SHIPPED, tmp_path / SHIPPED.name)
    shutil.copy(SHIPPED.with_suffix(".json"), tmp_path / f"{MODEL}.json")
    monkeypatch.setenv(model_files.MODEL_DIR_ENV, str(tmp_path))
    return tmp_path


def test_missing_prior_names_model_and_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmar.plugins.lm_codec import LmCodec

    _model_dir_copy(tmp_path, monkeypatch)
    ok, why = LmCodec.availability()
    assert not ok and MODEL in why and "cm6" in why
    with pytest.raises(CodecUnavailable, match=f"{MODEL}.*no mixer prior for scheme cm6"):
        LmCodec()
    assert LmCodec(scheme="cm4").params["scheme"] == "cm4"  # schemes without a prior still work


def test_corrupt_prior_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmar.plugins.lm_codec import LmCodec
    from lmar.plugins.lmcore import prior

    shipped = prior.prior_path(model_files.load_card(MODEL), "cm6")
    blob = bytearray(shipped.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (_model_dir_copy(tmp_path, monkeypatch) / shipped.name).write_bytes(bytes(blob))
    with pytest.raises(CodecUnavailable, match="prior.*corrupt"):
        LmCodec()


def test_prior_hash_is_recorded_and_a_different_one_refused() -> None:
    c = _codec(scheme="cm5")
    assert len(c.params["prior_sha256"]) == 64
    with pytest.raises(CodecUnavailable, match="prior.*not installed"):
        _codec(scheme="cm5", prior_sha256="0" * 64)


def test_prior_changes_the_bits_but_not_the_bytes() -> None:
    """cm6 is cm4's tables started from the prior: the same block coded cold (cm4's layout, at block level:
    the codec no longer encodes cm4) is longer."""
    from lmar.plugins.lmcore import block_coder

    data = TEXT[:1500]
    warm = _codec(min_segment=300)
    pw = warm.compress(data)
    plan = warm._plan(len(data))
    pc = block_coder.encode_block(data, plan, warm._network(), warm._fingerprint(), "cm4")
    assert len(pw) < len(pc)  # a warm mixer codes a short text better than a cold one
    assert _codec(**warm.params).decompress(pw, len(data)) == data


def test_cuda_request_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    from lmar.plugins.lmcore import runtime

    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA is available here")
    monkeypatch.setenv(runtime.DEVICE_ENV, "cuda")
    with pytest.raises(CodecUnavailable, match="cuda"):
        _codec(scheme="cm5").decompress(b"", 3)  # the float network; cm6's integer one always runs on the CPU
    assert _codec().compress(b"abc")


def test_integer_network_rows_do_not_depend_on_batch_position_or_threads() -> None:
    """cm6 relies on this: its block coder splits the segments into two lanes from 32 segments on
    (``block_coder.MIN_LANES_EXACT``) and its payloads are portable, which holds only if a row's outputs
    ignore its position, the batch size and the session's thread count. The float network of cm2-cm5
    promises nothing of the kind (those schemes pin the threads and the batch layout instead, and
    decoding their fixtures is their check), so it is not tested for it."""
    import onnxruntime as ort

    from lmar.plugins.lmcore import runtime

    card = model_files.require_model(MODEL, None)
    net = runtime.step_model(card, model_files.file_sha256(card.path))
    assert net.batch_exact
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    two = ort.InferenceSession(str(card.path), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    b = rng.integers(0, 257, 32)
    st = rng.integers(-32768, 32769, (card.layers, 32, card.hidden)).astype(np.int32)
    ref = net.step(b, st)
    perm = rng.permutation(32)
    permuted = net.step(b[perm], st[:, perm])
    small = net.step(b[:3], st[:, :3])
    threaded = two.run(["logits", "state_out"], {"byte": b, "state": st})
    threaded = [threaded[0].reshape(ref[0].shape), threaded[1]]  # graph 2's logits have a leading axis
    for i in range(2):  # logits, then the next state
        assert np.array_equal(ref[i][..., perm, :] if i else ref[i][perm], permuted[i])
        assert np.array_equal(ref[i][..., :3, :] if i else ref[i][:3], small[i])
        assert np.array_equal(ref[i], threaded[i])


FIXTURE_V1 = Path(__file__).parent / "data" / "lm_v1_cm1.lmar"
#: Members of the fixture, written by lmar 0.1.0 with ``--codec lm`` (lm version 1, scheme cm1).
FIXTURE_V1_SHA256 = {
    "in/notes.txt": "89279fcbe866872c380d41fa5111c594c9ea2d34a7ddc1b713e7fdb67d02d74a",
    "in/small.bin": "785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9",
}


def test_archive_written_by_lm_version_1_still_extracts() -> None:
    """Old archives keep extracting: the legacy scheme cm1 (lmar 0.1) stays decodable."""
    import hashlib

    import lmar

    with lmar.open(str(FIXTURE_V1)) as ar:
        members = {m.path: m for m in ar.getmembers() if m.type == "file"}
        assert set(members) == set(FIXTURE_V1_SHA256)
        for path, digest in FIXTURE_V1_SHA256.items():
            assert members[path].codec.name == "lm" and members[path].codec.version == 1
            assert members[path].codec.params["scheme"] == "cm1"
            assert hashlib.sha256(ar.read(path)).hexdigest() == digest


# A payload of every scheme (lm_fixtures.SCHEME_FIXTURES): a change that alters any scheme's bits fails.
def test_every_scheme_has_a_fixture() -> None:
    assert sorted(FIXTURE_MODEL) == sorted(SCHEMES)


@pytest.mark.parametrize("scheme,model,name", SCHEME_FIXTURES)
def test_scheme_fixture_decodes_and_the_compiled_schemes_reencode_it(scheme: str, model: str, name: str) -> None:
    """Decoding pins the decoder; coding the input again pins the encoder's half of the shared compiled
    mixer: through the codec for the live scheme, through the block coder for the decode-only ones (the
    codec refuses to encode them; their header keeps the writer's numerics fingerprint, which names the
    machine that wrote it, so that is taken from the fixture). cm1 has no encoder any more."""
    from lmar.plugins.lmcore import block_coder
    from lmar.plugins.lmcore.payload import SCHEME_FORMATS, Payload

    data = fixture_input()
    payload = fixture_payload(scheme)
    c = _codec(**FIXTURE_PARAMS, scheme=scheme, model=model)
    assert c.decompress(payload, len(data)) == data
    if scheme in ENCODE_SCHEMES:
        assert c.compress(data) == payload
    elif scheme != "cm1":
        fingerprint = Payload.unpack(payload, SCHEME_FORMATS[scheme]).fingerprint
        again = block_coder.encode_block(data, c._plan(len(data)), c._network(), fingerprint, scheme, c._prior)
        assert again == payload


@pytest.mark.parametrize("scheme,model,name", SCHEME_FIXTURES)
def test_every_scheme_refuses_another_schemes_payload(scheme: str, model: str, name: str) -> None:
    data = fixture_input()
    payload = fixture_payload(scheme)
    for other in sorted(set(SCHEMES) - {scheme}):
        c = _codec(**FIXTURE_PARAMS, scheme=other, model=FIXTURE_MODEL[other])
        with pytest.raises(CodecError, match="format"):
            c.decompress(payload, len(data))


@pytest.mark.parametrize("scheme", sorted(set(SCHEMES) - set(ENCODE_SCHEMES)))
def test_decode_only_schemes_refuse_to_encode(scheme: str) -> None:
    c = _codec(scheme=scheme, model=FIXTURE_MODEL[scheme])
    with pytest.raises(CodecError, match=f"scheme {scheme} only decodes"):
        c.compress(TEXT[:100])


def test_legacy_schemes_are_imported_only_to_decode_their_members() -> None:
    """Coding new members never loads the frozen legacy package; reading a cm1 member does."""
    code = (
        "import sys, lmar\n"
        "from lmar.plugins.lm_codec import LmCodec\n"
        "c = LmCodec(min_segment=64)\n"
        "c.decompress(c.compress(b'hello world ' * 20), 240)\n"
        "print('lmar.plugins.lmcore.legacy' in sys.modules)\n"
        f"with lmar.open({str(FIXTURE_V1)!r}) as ar:\n"
        "    ar.read('in/notes.txt')\n"
        "print('lmar.plugins.lmcore.legacy' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "LMAR_LOAD_PLUGINS": ""})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"]


def test_default_scheme_is_cm6() -> None:
    assert _codec().params["scheme"] == "cm6"


def test_two_lanes_give_the_same_stream_as_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The network/mixer overlap must not change a bit: the mixer visits segments in the same order."""
    from lmar.plugins.lmcore import block_coder

    data = fixture_input()
    c = _codec(**FIXTURE_PARAMS)
    assert c._plan(len(data)).count >= block_coder.MIN_LANES_SEGMENTS
    two = c.compress(data)
    monkeypatch.setattr(block_coder, "MIN_LANES_SEGMENTS", 10**9)
    one = c.compress(data)
    assert one == two
    assert c.decompress(two, len(data)) == data
