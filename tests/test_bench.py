"""``lmar bench``: rate and chunking arithmetic, failures kept as results, the JSON schema, the CLI contract.

Fake codecs with exactly predictable payload sizes make the arithmetic checkable to the byte; they live
in a private :class:`Registry`, so the tests measure what the bench layer does, not the built-in codecs.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import zlib
from pathlib import Path

import pytest

from lmar.bench import (ALL_GROUP, DECLINED, ERROR, MISMATCH, OK, SCHEMA_VERSION, TIMEOUT, BenchRun,
                        Machine, Settings, adjusted_rate_pct, bits_per_byte, collect_files, discover_contenders,
                        interleave, iter_results, measure, rate_pct, sample, split, summarize)
from lmar.bench.cli import add_parser, run
from lmar.bench.outputs import to_json_dict
from lmar.bench.tables import render_markdown
from lmar.codec import Codec
from lmar.errors import LmarError
from lmar.registry import Registry

HEADER = b"HDR!"


class HeaderCodec(Codec):
    """Payload = 4-byte header + data: compressed size is exactly raw + 4 per independent piece."""

    name = "hdr"
    description = "test: 4-byte header"

    def compress(self, data: bytes) -> bytes:
        return HEADER + data

    def decompress(self, payload: bytes, size: int) -> bytes:
        return payload[len(HEADER):]


class DeflateCodec(HeaderCodec):
    """A codec that really compresses, so plots have something to draw."""

    name = "deflate"

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data)

    def decompress(self, payload: bytes, size: int) -> bytes:
        return zlib.decompress(payload)


class FakeLM(HeaderCodec):
    name = "fakelm"
    kind = "lm"

    @classmethod
    def info(cls) -> dict:
        return {"model_bytes": 1000}


class BoomCodec(HeaderCodec):
    name = "boom"

    def compress(self, data: bytes) -> bytes:
        raise RuntimeError("boom")


class LossyCodec(HeaderCodec):
    name = "lossy"

    def decompress(self, payload: bytes, size: int) -> bytes:
        return b"\0" * size


class PickyCodec(HeaderCodec):
    """A general-purpose codec that refuses everything: a failure to report, not a domain refusal."""

    name = "picky"

    def accepts(self, data: bytes) -> bool:
        return False


class FakeImage(HeaderCodec):
    name = "fakeimage"
    kind = "image"

    def accepts(self, data: bytes) -> bool:
        return data.startswith(b"P6")


class Missing(HeaderCodec):
    name = "missing"

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        return False, "needs a model file"


ALL_FAKES = (HeaderCodec, FakeLM, BoomCodec, LossyCodec, PickyCodec, FakeImage, Missing)


def make_registry(*classes: type[Codec]) -> Registry:
    reg = Registry()
    for cls in classes:
        reg.register(cls, "tests")
    return reg


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "text").mkdir(parents=True)
    (root / "image").mkdir()
    (root / "text" / "a.txt").write_bytes(b"hello world " * 400)  # 4800 bytes: 3 chunks of 2048
    (root / "image" / "p.ppm").write_bytes(b"P6\n4 4\n255\n" + bytes(range(48)))  # 59 bytes
    (root / "top.bin").write_bytes(random.Random(3).randbytes(1000))
    return root


def no_tools(_: str) -> None:
    return None


def bench_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lmar")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["bench", *argv])


def run_all(root: Path, chunk_size: int | None = 2048) -> BenchRun:
    files, skipped_files = collect_files([str(root)])
    contenders, skipped = discover_contenders(make_registry(*ALL_FAKES), which=no_tools)
    settings = Settings(paths=(str(root),), repeat=2, chunk_size=chunk_size)
    results = list(iter_results(files, contenders, settings))
    return BenchRun(settings, Machine("cpu", 1, None, "test", "3"), tuple(contenders),
                    tuple(skipped + skipped_files), tuple(files), tuple(results))


# -- arithmetic -------------------------------------------------------------------------------------------


def test_rate_bpb_and_adjusted_rate_follow_the_paper_definitions() -> None:
    assert rate_pct(25, 100) == 25.0
    assert bits_per_byte(25, 100) == 2.0
    assert adjusted_rate_pct(25, 50, 100) == 75.0  # (compressed + model) / raw
    assert adjusted_rate_pct(25, None, 100) is None
    assert rate_pct(0, 0) is None and rate_pct(None, 10) is None


def test_split_cuts_independent_chunks_with_a_short_tail() -> None:
    assert [len(p) for p in split(b"x" * 5000, 2048)] == [2048, 2048, 904]
    assert split(b"abc", 2048) == [b"abc"]
    assert split(b"", 2048) == [b""]
    assert split(b"abcd", None) == [b"abcd"]


def test_sample_spreads_chunks_evenly_and_keeps_ends() -> None:
    pieces = [bytes([i]) for i in range(10)]
    assert sample(pieces, None) == pieces and sample(pieces, 20) == pieces
    assert sample(pieces, 4) == [b"\x00", b"\x03", b"\x06", b"\x09"]
    assert sample(pieces, 1) == [b"\x05"]


def test_sampled_chunk_rates_cover_only_the_sampled_bytes() -> None:
    data = b"q" * 10_000  # chunks of 2048: 4 full + 1808 tail; sample 2 = first and last
    m = measure(HeaderCodec(), sample(split(data, 2048), 2))
    assert (m.pieces, m.raw_bytes, m.compressed_bytes) == (2, 2048 + 1808, 2048 + 1808 + 8)


class SlowCodec(HeaderCodec):
    name = "slow"

    def compress(self, data: bytes) -> bytes:
        import time

        for _ in range(200):
            time.sleep(0.01)
        return super().compress(data)


def test_timeout_is_a_reported_failure() -> None:
    m = measure(SlowCodec(), [b"abc"], timeout=0.1)
    assert m.status == TIMEOUT and "0.1 s" in m.reason


def test_measure_sums_sizes_over_chunks() -> None:
    data = b"y" * 5000
    whole = measure(HeaderCodec(), split(data, None), repeat=3)
    chunked = measure(HeaderCodec(), split(data, 2048), repeat=1)
    assert (whole.status, whole.compressed_bytes, whole.pieces) == (OK, 5004, 1)
    assert (chunked.status, chunked.compressed_bytes, chunked.pieces) == (OK, 5000 + 3 * 4, 3)
    assert whole.compress_s is not None and whole.compress_s >= 0


def test_each_failure_mode_is_a_result_with_its_reason() -> None:
    data = b"z" * 100
    boom = measure(BoomCodec(), [data])
    assert boom.status == ERROR and "RuntimeError: boom" in boom.reason
    lossy = measure(LossyCodec(), [data])
    assert lossy.status == MISMATCH and "first difference at byte 0" in lossy.reason
    picky = measure(PickyCodec(), [data])
    assert picky.status == DECLINED and "accepts()" in picky.reason


# -- discovery and inputs ---------------------------------------------------------------------------------


def test_unavailable_codecs_and_missing_tools_are_reported_not_dropped() -> None:
    contenders, skipped = discover_contenders(make_registry(*ALL_FAKES), which=no_tools)
    names = [c.name for c in contenders]
    assert "missing" not in names and {"hdr", "fakelm", "boom", "fakeimage"} <= set(names)
    reasons = {s.path: s.reason for s in skipped}
    assert reasons["missing"] == "unavailable: needs a model file"
    for tool in ("ext:xz", "ext:zstd", "ext:brotli", "ext:bzip2", "ext:gzip"):
        assert "not found on PATH" in reasons[tool]
    assert next(c for c in contenders if c.name == "fakelm").model_bytes == 1000


def test_selecting_an_unknown_codec_fails_before_measuring() -> None:
    with pytest.raises(LmarError, match="unknown codec"):
        discover_contenders(make_registry(HeaderCodec), selected=["hdr", "nope"], which=no_tools)
    contenders, _ = discover_contenders(make_registry(*ALL_FAKES), selected=["hdr"], which=no_tools)
    assert [c.name for c in contenders] == ["hdr"]


def test_collect_files_walks_in_archive_order_and_names_modalities(tree: Path) -> None:
    """The archiver's walker: sorted names at every level, as ``create`` stores them."""
    files, skipped = collect_files([str(tree)])
    assert [(f.name, f.modality) for f in files] == [
        ("image/p.ppm", "image"), ("text/a.txt", "text"), ("top.bin", "data")]
    assert skipped == []
    only_text, _ = collect_files([str(tree / "text"), str(tree / "top.bin")], excludes=["*.ppm"])
    assert [(f.name, f.modality) for f in only_text] == [("a.txt", "text"), ("top.bin", "data")]
    no_image, _ = collect_files([str(tree)], excludes=["image/*", "top.bin"])
    assert [f.name for f in no_image] == ["text/a.txt"]
    with pytest.raises(LmarError, match="no such file"):
        collect_files([str(tree / "absent")])


# -- a whole run ------------------------------------------------------------------------------------------


def test_summary_totals_and_adjusted_rate_count_the_model_once(tree: Path) -> None:
    bench = run_all(tree)
    groups = {(s.group, s.codec): s for s in summarize(bench.results, bench.contenders)}
    raw = 4800 + 59 + 1000
    lm = groups[(ALL_GROUP, "fakelm")]
    assert lm.whole.raw_bytes == raw and lm.whole.compressed_bytes == raw + 3 * 4
    # chunked: 3 + 1 + 1 chunks, each with its own 4-byte header
    assert lm.chunked is not None and lm.chunked.compressed_bytes == raw + 5 * 4
    data = to_json_dict(bench)
    overall = next(g for g in data["summary"] if g["group"] == ALL_GROUP)
    lm_json = next(c for c in overall["codecs"] if c["codec"] == "fakelm")
    assert lm_json["whole"]["adjusted_rate_pct"] == pytest.approx(100 * (raw + 12 + 1000) / raw, abs=1e-4)
    assert lm_json["chunked"]["adjusted_rate_pct"] == pytest.approx(100 * (raw + 20 + 1000) / raw, abs=1e-4)
    text = next(g for g in data["summary"] if g["group"] == "text")
    assert text["best_codec"] in {"hdr", "fakelm"}
    image = groups[("image", "fakeimage")]
    assert image.whole.files_ok == 1 and image.whole.complete
    assert groups[(ALL_GROUP, "fakeimage")].whole.files_declined == 2


def test_json_follows_the_documented_schema(tree: Path) -> None:
    data = json.loads(json.dumps(to_json_dict(run_all(tree))))
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert set(data) >= {"schema_version", "generator", "lmar_version", "created_utc", "complete", "settings",
                         "machine", "codecs", "skipped", "files", "results", "summary"}
    assert data["settings"]["chunk_size"] == 2048
    assert set(data["machine"]) == {"cpu_model", "cpu_cores", "gpu", "platform", "python"}
    assert set(data["files"][0]) == {"path", "name", "modality", "raw_bytes", "sha256", "best_codec",
                                     "best_codec_chunked"}
    assert set(data["settings"]) == {"paths", "repeat", "chunk_size", "chunk_sample", "whole_only", "only",
                                     "chunked_repeat", "timeout_s", "max_time_s", "command", "reused_from"}
    assert set(data["codecs"][0]) == {"name", "kind", "source", "description", "version", "model_bytes", "block_size",
                                      "info"}
    measurement_keys = {"status", "reason", "pieces", "raw_bytes", "compressed_bytes", "rate_pct", "bits_per_byte",
                        "adjusted_rate_pct", "compress_s", "decompress_s", "compress_bytes_per_s",
                        "decompress_bytes_per_s"}
    for r in data["results"]:
        assert set(r) == {"path", "codec", "reused", "whole", "chunked"}
        assert set(r["whole"]) == measurement_keys and set(r["chunked"]) == measurement_keys
    assert len(data["results"]) == len(data["files"]) * len(data["codecs"])
    by = {(Path(r["path"]).name, r["codec"]): r for r in data["results"]}
    assert by[("a.txt", "hdr")]["whole"]["rate_pct"] == pytest.approx(100 * 4804 / 4800, abs=1e-4)
    assert by[("a.txt", "boom")]["whole"]["status"] == "error"
    assert by[("a.txt", "lossy")]["chunked"]["status"] == "mismatch"
    assert by[("a.txt", "fakeimage")]["whole"]["status"] == "declined"
    assert [g["group"] for g in data["summary"]] == [ALL_GROUP, "image", "text", "data"]


def test_markdown_shows_declines_and_every_failure_reason(tree: Path) -> None:
    md = render_markdown(run_all(tree))
    assert "n/a (declined)" in md
    assert "RuntimeError: boom" in md and "round trip differs" in md
    assert "picky on" in md and "accepts() returned False" in md
    assert "missing: unavailable: needs a model file" in md
    assert "rate @2048" in md


# -- the command line -------------------------------------------------------------------------------------


def test_cli_writes_json_and_markdown(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    args = bench_args(str(tree), "--codecs", "hdr,fakelm,boom,fakeimage", "--repeat", "1", "--chunk-size", "1024",
                      "--chunk-sample", "2", "--json", str(out_json), "--md", str(out_md), "-q")
    assert run(args, registry=make_registry(*ALL_FAKES)) == 0
    data = json.loads(out_json.read_text())
    assert data["settings"]["chunk_size"] == 1024 and data["complete"] is True
    assert data["settings"]["chunk_sample"] == 2
    chunked = next(r["chunked"] for r in data["results"] if r["codec"] == "hdr" and r["path"].endswith("a.txt"))
    assert (chunked["pieces"], chunked["raw_bytes"]) == (2, 1024 + 704)  # first and last of 5 chunks
    assert [c["name"] for c in data["codecs"]] == ["boom", "hdr", "fakelm", "fakeimage"]
    assert "boom" in out_md.read_text()
    shown = capsys.readouterr().out
    assert "All files" in shown and "RuntimeError: boom" in shown


@pytest.mark.parametrize("argv, message", [
    (["MISSING"], "no such file or directory"),
    (["TREE", "--repeat", "0"], "--repeat must be at least 1"),
    (["TREE", "--chunk-size", "-1"], "--chunk-size"),
    (["TREE", "--codecs", "nope"], "unknown codec"),
    (["TREE", "--chunk-sample", "0"], "--chunk-sample"),
    (["TREE", "--timeout", "0"], "--timeout"),
    (["TREE", "--json", "/no/such/dir/out.json"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(tree: Path, argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(tree / "absent") if a == "MISSING" else str(tree) if a == "TREE" else a for a in argv]
    assert run(bench_args(*argv, "-q"), registry=make_registry(HeaderCodec)) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmar: ") and message in err and err.count("\n") == 1


def test_plot_without_matplotlib_says_how_to_get_it(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes ``import matplotlib`` raise ImportError
    assert run(bench_args(str(tree), "--plot", str(tmp_path / "p.png"), "-q"), registry=make_registry(HeaderCodec)) == 2
    assert "lmar[plot]" in capsys.readouterr().err


def test_plot_is_written(tree: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "p.png"
    assert run(bench_args(str(tree), "--codecs", "deflate,fakelm,fakeimage", "--repeat", "1", "--plot", str(out), "-q"),
               registry=make_registry(DeflateCodec, *ALL_FAKES)) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class InterruptOnSecondFile(HeaderCodec):
    name = "interrupt"
    calls = 0

    def compress(self, data: bytes) -> bytes:
        InterruptOnSecondFile.calls += 1
        if InterruptOnSecondFile.calls > 1:
            raise KeyboardInterrupt
        return super().compress(data)


def test_ctrl_c_prints_what_was_measured_and_exits_130(tree: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "r.json"
    args = bench_args(str(tree), "--chunk-size", "0", "--repeat", "1", "--json", str(out_json), "-q")
    assert run(args, registry=make_registry(InterruptOnSecondFile)) == 130
    captured = capsys.readouterr()
    assert "Interrupted" in captured.out and "p.ppm" in captured.out  # the first file measured
    assert "interrupted" in captured.err and not out_json.exists()


def test_files_are_measured_round_robin_across_modalities(tree: Path) -> None:
    (tree / "text" / "b.txt").write_bytes(b"b")
    files, _ = collect_files([str(tree)])
    assert [f.name for f in interleave(files)] == ["image/p.ppm", "text/a.txt", "top.bin", "text/b.txt"]


def test_max_time_reports_the_rest_as_not_measured(tree: Path) -> None:
    files, _ = collect_files([str(tree)])
    contenders, _ = discover_contenders(make_registry(HeaderCodec), which=no_tools)
    ticks = iter(range(100))
    results = list(iter_results(files, contenders, Settings(paths=(str(tree),), repeat=1, chunk_size=None, max_time=2.5),
                                clock=lambda: next(ticks)))
    assert [r.whole.status for r in results] == [OK, OK, TIMEOUT]  # clock: 0 at start, then 1, 2, 3 > 2.5
    assert "--max-time" in results[2].whole.reason and results[2].chunked is None


def test_only_limits_a_codec_to_matching_files_and_reports_the_rest(tree: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "r.json"
    args = bench_args(str(tree), "--codecs", "hdr,fakelm", "--only", "fakelm=text/*", "--repeat", "1",
                      "--json", str(out_json), "-q")
    assert run(args, registry=make_registry(*ALL_FAKES)) == 0
    data = json.loads(out_json.read_text())
    status = {(Path(r["path"]).name, r["codec"]): r["whole"]["status"] for r in data["results"]}
    assert status[("a.txt", "fakelm")] == "ok" and status[("top.bin", "fakelm")] == "skipped"
    assert status[("top.bin", "hdr")] == "ok"
    overall = next(g for g in data["summary"] if g["group"] == ALL_GROUP)
    lm = next(c for c in overall["codecs"] if c["codec"] == "fakelm")["whole"]
    assert (lm["files_ok"], lm["files_skipped"], lm["complete"]) == (1, 2, False)
    assert data["settings"]["only"] == [{"codec": "fakelm", "glob": "text/*"}]
    out = capsys.readouterr().out
    assert "not run" in out and "measured only on files matching text/* (--only)" in out
    assert run(bench_args(str(tree), "--only", "fakelm", "-q"), registry=make_registry(*ALL_FAKES)) == 2


def test_whole_only_skips_the_chunked_setting_and_says_so(tree: Path, tmp_path: Path) -> None:
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    args = bench_args(str(tree), "--codecs", "hdr,fakelm", "--whole-only", "fakelm", "--repeat", "1",
                      "--json", str(out_json), "--md", str(out_md), "-q")
    assert run(args, registry=make_registry(*ALL_FAKES)) == 0
    data = json.loads(out_json.read_text())
    chunked = {r["codec"]: r["chunked"] for r in data["results"] if r["path"].endswith("a.txt")}
    assert chunked["fakelm"] is None and chunked["hdr"]["status"] == "ok"
    assert any(s["name"] == "fakelm" and "--whole-only" in s["reason"] for s in data["skipped"])
    assert "chunked setting (2048-byte chunks) not measured" in out_md.read_text()
    bad = bench_args(str(tree), "--codecs", "hdr", "--whole-only", "fakelm", "-q")
    assert run(bad, registry=make_registry(*ALL_FAKES)) == 2


@pytest.mark.skipif(shutil.which("gzip") is None, reason="gzip not on PATH")
def test_external_tool_round_trips() -> None:
    contenders, _ = discover_contenders(Registry(), selected=["ext:gzip"])
    coder = contenders[0].factory()
    m = measure(coder, split(b"external " * 500, 1024), repeat=1)
    assert m.status == OK and m.pieces == 5 and 0 < m.compressed_bytes < 4500


class RetrainedLM(FakeLM):
    """Same name, size and description; only the model checksum in ``info()`` tells the models apart."""

    name = "retrained"
    sha = "first"

    @classmethod
    def info(cls) -> dict:
        return {"model_bytes": 1000, "model_sha256": cls.sha}


def test_reuse_keeps_earlier_figures_for_unchanged_bytes_and_codecs(tree: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    reg = make_registry(DeflateCodec, RetrainedLM, *ALL_FAKES)
    common = ["--repeat", "1", "--chunk-size", "1024", "-q"]
    assert run(bench_args(str(tree), "--codecs", "hdr,boom,retrained,fakelm", "--whole-only", "fakelm",
                          "--json", str(first), *common), registry=reg) == 0
    (tree / "text" / "a.txt").write_bytes(b"changed " * 100)  # new bytes: must be measured again
    monkeypatch.setattr(RetrainedLM, "sha", "second")  # a new model: must be measured again
    assert run(bench_args(str(tree), "--codecs", "hdr,boom,deflate,retrained,fakelm", "--reuse", str(first),
                          "--json", str(second), *common), registry=reg) == 0
    data = json.loads(second.read_text())
    reused = {(Path(r["path"]).name, r["codec"]): r["reused"] for r in data["results"]}
    assert reused[("top.bin", "hdr")] and reused[("p.ppm", "hdr")]
    assert not reused[("a.txt", "hdr")]  # file changed
    assert not reused[("top.bin", "retrained")]  # model changed
    assert not reused[("top.bin", "fakelm")]  # measured whole-only before, chunked wanted now
    assert not reused[("top.bin", "boom")]  # errors are measured again
    assert not reused[("top.bin", "deflate")]  # not in the earlier report
    assert data["settings"]["reused_from"]["path"] == str(first)
    assert "measurements reused from" in capsys.readouterr().out
    # figures measured with other settings do not compare: refuse
    assert run(bench_args(str(tree), "--reuse", str(first), "--repeat", "2", "-q"), registry=reg) == 2
    assert "measured with repeat 1, this run uses 2" in capsys.readouterr().err
