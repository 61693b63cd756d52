"""The codec registry and the plugin path: built-ins and third-party codecs arrive the same way.

``tests/plugin_example`` is a real distribution (``lmar-example-codec``) installed into the test
environment; it registers the ``rle`` codec through the ``lmar`` entry point group. A member coded with a
plugin that is missing must fail with a message naming the codec and the distribution to install.
"""
from __future__ import annotations

import io
import json
from importlib import metadata

import pytest
import xxhash

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError, CodecUnavailable, LmarError
from craft import MemberWriter as ContainerWriter
from lmar.registry import BUILTIN_DISTRIBUTION, ENTRY_POINT_GROUP, load_registry, reset_registry

from conftest import EXAMPLE_DIST, EXAMPLE_PLUGIN, assert_clean, fast_options, run_lmar, run_lmar_j1

BUILTINS = {"store", "zlib", "bz2", "lzma", "zstd", "brotli", "ppmd"}


def test_builtin_codecs_come_from_the_lmar_distribution():
    reg = load_registry()
    assert BUILTINS <= set(reg.codecs)
    for name in BUILTINS:
        assert reg.providers[name] == BUILTIN_DISTRIBUTION
        cls = reg.codecs[name]
        assert issubclass(cls, Codec) and cls.name == name and isinstance(cls.version, int)
    assert not reg.failures, reg.failures


def test_loading_the_plugins_imports_no_heavy_library():
    """Every lmar command loads every plugin (codecs and commands), so a plugin module imports its numpy,
    numba, onnxruntime or imagecodecs core on first use, not at import: together they cost ~0.4 s, which
    `lmar list` or a fast-level `create` of a small tree should not pay."""
    import subprocess
    import sys

    code = ("import sys; from lmar.registry import load_registry; r = load_registry(); "
            "print(sorted(m for m in ('numpy', 'numba', 'onnxruntime', 'imagecodecs') if m in sys.modules)); "
            "print(len(r.codecs))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "[]", out
    assert int(out[1]) >= len(BUILTINS)


def test_third_party_plugins_are_off_in_tests_by_default():
    """conftest sets LMAR_LOAD_PLUGINS="" so stray plugins cannot change results; built-ins still load."""
    reg = load_registry()
    assert all(p == BUILTIN_DISTRIBUTION for p in reg.providers.values())


def test_unknown_codec_is_codec_unavailable_naming_the_provider():
    reg = load_registry()
    with pytest.raises(CodecUnavailable, match="'nosuch' is not installed.*lmar-nosuch"):
        reg.create("nosuch", provider="lmar-nosuch")
    with pytest.raises(CodecError, match="unknown parameter"):
        reg.create("zlib", {"colour": "blue"})


def test_a_broken_plugin_is_recorded_not_fatal(monkeypatch):
    """A plugin that fails to import is listed as a failure; every other codec still loads."""
    broken = metadata.EntryPoint(name="broken", value="lmar_no_such_module_xyz", group=ENTRY_POINT_GROUP)
    real = metadata.entry_points

    def fake_entry_points(**kw):
        return [*real(**kw), broken]

    monkeypatch.setattr("lmar.registry.metadata.entry_points", fake_entry_points)
    monkeypatch.setenv("LMAR_LOAD_PLUGINS", "broken")
    reg = load_registry()
    assert BUILTINS <= set(reg.codecs)
    assert [f.plugin for f in reg.failures] == ["broken"]
    assert "ModuleNotFoundError" in reg.failures[0].error


def test_plugin_filter_names_entry_points(monkeypatch, example_plugin):
    assert "rle" in example_plugin.codecs and example_plugin.providers["rle"] == EXAMPLE_DIST
    monkeypatch.setenv("LMAR_LOAD_PLUGINS", "something-else")
    assert "rle" not in load_registry().codecs
    monkeypatch.delenv("LMAR_LOAD_PLUGINS")
    assert "rle" in load_registry().codecs  # unset: every installed plugin


def test_example_plugin_round_trip_in_process(example_plugin):
    data = b"a" * 1000 + b"bc" * 10 + b"\0" * 300
    buf = io.BytesIO()
    with lmar.open(buf, "w", options=fast_options(codec="rle")) as w:
        result = w.addbytes("runs.bin", data)
    assert result.codec == "rle" and result.stored_size < len(data) // 4
    with lmar.open(io.BytesIO(buf.getvalue())) as r:
        (m,) = r.getmembers()
        assert m.codec.name == "rle" and m.codec.provider == EXAMPLE_DIST
        assert r.read(m) == data


def test_example_plugin_round_trip_through_the_command_and_missing_plugin(tmp_path, example_plugin):
    """Create and extract with the plugin; then without it (LMAR_LOAD_PLUGINS=""), as if uninstalled."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "runs.bin").write_bytes(b"x" * 5000 + b"y" * 5000)
    (src / "plain.txt").write_bytes(b"")
    arc = tmp_path / "p.lmar"
    on = {"LMAR_LOAD_PLUGINS": EXAMPLE_PLUGIN}
    run = run_lmar_j1("create", "--codec", "rle", arc, "src", cwd=tmp_path, env=on)
    assert run.rc == 0, run.err

    run = run_lmar("codecs", "--json", env=on)
    rle = [c for c in json.loads(run.out) if c.get("name") == "rle"]
    assert rle and rle[0]["provider"] == EXAMPLE_DIST and rle[0]["kind"] == "classical"

    run = run_lmar("extract", arc, "-C", tmp_path / "with", env=on)
    assert run.rc == 0, run.err
    assert (tmp_path / "with" / "src" / "runs.bin").read_bytes() == b"x" * 5000 + b"y" * 5000

    off = {"LMAR_LOAD_PLUGINS": ""}
    run = run_lmar("extract", arc, "-C", tmp_path / "without", env=off)
    assert_clean(run)
    assert run.rc in (1, 2)
    lines = [line for line in run.err.splitlines() if "rle" in line]
    assert lines and all(line.startswith("lmar: ") for line in lines)
    assert "runs.bin" in run.err and EXAMPLE_DIST in run.err and "not installed" in run.err
    assert not (tmp_path / "without" / "src" / "runs.bin").exists()

    run = run_lmar("list", "-l", arc, env=off)  # listing needs no codec
    assert run.rc == 0 and "rle" in run.text


def test_member_coded_with_a_newer_codec_version_says_upgrade():
    data = b"hello"
    buf = io.BytesIO()
    w = ContainerWriter(buf)
    w.begin_member({"path": "f", "type": "file", "size": 5,
                    "codec": {"name": "store", "version": 7, "params": {}, "provider": "lmar"}})
    w.write_block(5, data, xxhash.xxh3_64_intdigest(data))
    w.end_member(5, xxhash.xxh3_128_digest(data))
    w.close()
    with lmar.open(io.BytesIO(buf.getvalue())) as r:
        with pytest.raises(LmarError, match="version 7.*upgrade lmar"):
            r.read("f")


def test_plugin_distribution_metadata_is_real(example_plugin):
    """The example is installed as a distribution whose entry point is in the lmar group."""
    eps = [ep for ep in metadata.distribution(EXAMPLE_DIST).entry_points if ep.group == ENTRY_POINT_GROUP]
    assert [ep.name for ep in eps] == [EXAMPLE_PLUGIN]
    reset_registry()


def test_a_core_command_imports_neither_bench_nor_a_process_pool(tmp_path):
    """`lmar list` (and every core command without workers) starts without ``lmar.bench`` or
    ``multiprocessing`` (~30 and ~40 ms to import); `lmar --help` still lists the optional commands."""
    import subprocess
    import sys

    from lmar.cli import main

    (tmp_path / "f.txt").write_text("x\n")
    assert main(["create", "-q", "-j", "1", "--level", "fast", str(tmp_path / "a.lmar"), str(tmp_path / "f.txt")]) == 0
    code = ("import sys; from lmar.cli import main; main(['list', sys.argv[1]]); "
            "print(sorted(m for m in ('lmar.bench', 'multiprocessing', 'concurrent.futures.process') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.lmar")], capture_output=True, text=True, check=True)
    assert run.stdout.splitlines()[-1] == "[]", run.stdout
    helped = subprocess.run([sys.executable, "-m", "lmar.cli", "--help"], capture_output=True, text=True, check=True)
    assert "bench" in helped.stdout
