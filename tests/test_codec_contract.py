"""The codec contract (``lmar.testing``) run on every built-in codec, the example plugin, and a copy of
``plugins/zlib_codec.py`` installed as a new package; and the refusal of a codec name already taken."""
from __future__ import annotations

import importlib
import io
import re
import shutil
import struct
import sys
import wave
from pathlib import Path

import pytest

from lmar.codec import Codec
from lmar.errors import CodecError
from lmar.registry import BUILTIN_DISTRIBUTION, load_registry
from lmar.testing import ContractLimits, check_codec

from conftest import run_lmar

ROOT = Path(__file__).resolve().parents[1]
ZLIB_PLUGIN = ROOT / "plugins" / "zlib_codec.py"
#: Decoders whose working memory is their model, set by recorded (and bounded) parameters.
MEMORY = {"lzma": 160 << 20, "ppmd": 1100 << 20}
CLASSICAL = ["store", "zlib", "bz2", "lzma", "zstd", "brotli", "ppmd"]


@pytest.mark.parametrize("name", CLASSICAL)
def test_builtin_classical_codec_keeps_the_contract(name):
    cls = load_registry().codecs[name]
    limits = ContractLimits(traced_bytes=MEMORY.get(name, ContractLimits.traced_bytes))
    assert "hostile payloads" in check_codec(cls, limits=limits)


def test_lm_codec_keeps_the_contract():
    """Small samples: the byte model codes ~20 KB/s, and each hostile payload is decoded step by step."""
    cls = load_registry().codecs["lm"]
    samples = {"empty": b"", "text": b"def f(x):\n    return x + 1\n" * 20, "binary": bytes(range(256))}
    limits = ContractLimits(seconds_per_decode=30.0, mutations=6, bomb_raw=1 << 16, traced_bytes=256 << 20)
    assert "hostile payloads" in check_codec(cls, samples=samples, limits=limits)


def _wav(frames: int = 4000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<hh", (i * 37) % 2000 - 1000, (i * 11) % 500) for i in range(frames)))
    return buf.getvalue()


def _pgm(width: int = 48, height: int = 32) -> bytes:
    return f"P5\n{width} {height}\n255\n".encode() + bytes((x * 5 + y * 3) % 256 for y in range(height) for x in range(width))


@pytest.mark.parametrize("name, sample", [("audio", _wav), ("image", _pgm)])
def test_builtin_whole_file_codec_keeps_the_contract(name, sample):
    cls = load_registry().codecs[name]
    ok, why = cls.availability()
    if not ok:
        pytest.skip(f"{name} unavailable here: {why}")
    limits = ContractLimits(seconds_per_decode=20.0, mutations=8, traced_bytes=256 << 20)
    assert "hostile payloads" in check_codec(cls, samples={"file": sample()}, limits=limits)


def test_the_contract_catches_an_unbounded_decoder():
    class Unbounded(Codec):
        name = "unbounded"
        default_params: dict = {}

        def compress(self, data: bytes) -> bytes:
            return zlib.compress(data)

        def decompress(self, payload: bytes, size: int) -> bytes:  # the README's old example: no bound
            try:
                return zlib.decompress(payload)
            except zlib.error as exc:
                raise CodecError(str(exc)) from None

    import zlib

    with pytest.raises(AssertionError, match=r"codec unbounded: hostile payloads: bomb .* over the announced"):
        check_codec(Unbounded)


def test_the_contract_catches_a_nondeterministic_encoder():
    import itertools

    calls = itertools.count()

    class Salted(Codec):
        name = "salted"

        def compress(self, data: bytes) -> bytes:  # a salt that differs per call, as a clock or nonce would
            return bytes([next(calls) % 256]) + data

        def decompress(self, payload: bytes, size: int) -> bytes:
            return payload[1: size + 2]

    with pytest.raises(AssertionError, match="codec salted: determinism"):
        check_codec(Salted)


def _install_copy(root: Path, dist: str, module: str) -> None:
    """A real (if minimal) installed distribution: the module plus its .dist-info with one entry point."""
    shutil.copyfile(ZLIB_PLUGIN, root / f"{module}.py")
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[lmar]\nmyzlib = {module}\n")


def test_a_copy_of_zlib_codec_passes_unchanged_and_its_name_clash_is_refused(tmp_path, monkeypatch):
    _install_copy(tmp_path, "lmar-clash-probe", "lmar_clash_probe_codec")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setenv("LMAR_LOAD_PLUGINS", "lmar-clash-probe")  # a distribution name, as `lmar codecs` shows
    copied = importlib.import_module("lmar_clash_probe_codec")
    assert "hostile payloads" in check_codec(copied.ZlibCodec)

    reg = load_registry()
    assert reg.codecs["zlib"].__module__ == "lmar.plugins.zlib_codec"
    assert reg.providers["zlib"] == BUILTIN_DISTRIBUTION
    failures = [f for f in reg.failures if f.provider == "lmar-clash-probe"]
    assert len(failures) == 1
    assert re.search(r"codec name 'zlib' from lmar-clash-probe is already provided by lmar; refused", failures[0].error)

    run = run_lmar("codecs", env={"PYTHONPATH": str(tmp_path), "LMAR_LOAD_PLUGINS": "lmar-clash-probe"})
    assert run.rc == 0
    assert "from lmar-clash-probe" not in run.text.split("zlib", 1)[1].splitlines()[0]
    assert "already provided by lmar" in run.err + run.text
    sys.modules.pop("lmar_clash_probe_codec", None)


def test_readme_plugin_example_is_the_real_file():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert ZLIB_PLUGIN.read_text() in blocks
