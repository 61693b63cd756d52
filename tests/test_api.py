"""The Python API does what the CLI does: ``ArchiveReader.extractall()`` and ``ArchiveReader.test()`` carry the
member loops and their safety rules, and the CLI is a caller of them."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

import lmar
from lmar.archive import ArchiveReader, MemberFilter
from lmar.formats.container import open_container

from conftest import fast_options, tree_snapshot


@pytest.fixture()
def tree(tmp_path) -> Path:
    t = tmp_path / "proj"
    (t / "src").mkdir(parents=True)
    for i in range(6):
        (t / "src" / f"m{i}.py").write_text("".join(f"x{i}_{j} = {j}\n" for j in range(50 + i)))
    (t / "README").write_text("read me\n" * 40)
    (t / "copy").write_text("read me\n" * 40)  # a duplicate
    os.symlink("README", t / "link")
    return t


def make(tmp_path: Path, tree: Path) -> Path:
    arc = tmp_path / "a.lmar"
    cwd = os.getcwd()
    os.chdir(tree.parent)
    try:
        with lmar.open(arc, "w", options=fast_options()) as w:
            results = w.add([tree.name])
    finally:
        os.chdir(cwd)
    assert not [r for r in results if r.error]
    return arc


def test_extractall_round_trips_and_reports(tmp_path, tree):
    arc = make(tmp_path, tree)
    seen = []
    with lmar.open(arc) as ar:
        report = ar.extractall(tmp_path / "out", on_member=lambda m, e: seen.append((m.path, e)))
    assert report.ok and report.visited == len(seen) == 11
    assert all(e is None for _, e in seen)
    assert tree_snapshot(tmp_path / "out" / "proj") == tree_snapshot(tree)


def test_extractall_keeps_existing_files_unless_overwrite(tmp_path, tree):
    arc = make(tmp_path, tree)
    out = tmp_path / "out"
    (out / "proj").mkdir(parents=True)
    (out / "proj" / "README").write_text("mine")
    with lmar.open(arc) as ar:
        report = ar.extractall(out)
    assert [p for p, _ in report.failures] == ["proj/README"]
    assert "already exists" in report.failures[0][1]
    assert (out / "proj" / "README").read_text() == "mine"
    assert (out / "proj" / "copy").exists()  # the rest went through
    with lmar.open(arc) as ar:
        assert ar.extractall(out, overwrite=True).ok
    assert (out / "proj" / "README").read_text() == "read me\n" * 40


def test_extractall_selects_members_and_names_unmatched_patterns(tmp_path, tree):
    arc = make(tmp_path, tree)
    with lmar.open(arc) as ar:
        report = ar.extractall(tmp_path / "out", members=["proj/src/m1.py", "proj/*.nothing", "proj/co*"])
    assert report.visited == 2
    assert report.unmatched == ["proj/*.nothing"] and not report.ok
    assert sorted(p.name for p in (tmp_path / "out" / "proj").rglob("*")) == ["copy", "m1.py", "src"]


def test_extract_to_stream_writes_file_bytes_in_order(tmp_path, tree):
    arc = make(tmp_path, tree)
    sink = io.BytesIO()
    with lmar.open(arc) as ar:
        assert ar.extract_to_stream(sink, members=["proj/README", "proj/copy"]).ok
    assert sink.getvalue() == (tree / "README").read_bytes() * 2


def test_test_names_a_damaged_member_and_goes_on(tmp_path, tree):
    arc = make(tmp_path, tree)
    with lmar.open(arc) as ar:
        assert ar.test().ok
        members = ar.getmembers()
    # damage the first block of the group holding the .py files: its members fail by name, the others pass
    group = next(m.group for m in members if m.path == "proj/src/m0.py")
    with open(arc, "rb") as f:
        offset = open_container(f, "a").read_index().tables[group][0]
    data = bytearray(arc.read_bytes())
    table_len = int.from_bytes(data[offset + 1:offset + 5], "little")
    data[offset + 9 + table_len + 12] ^= 0x55  # inside the block record after the table record
    arc.write_bytes(bytes(data))
    with lmar.open(arc) as ar:
        report = ar.test()
    assert report.failures and report.visited == len(members)
    victims = {m.path for m in members if m.group == group}
    assert {p for p, _ in report.failures} <= victims | {m.path for m in members if m.dedup_of in victims}
    assert all(p in msg for p, msg in report.failures)


def test_member_filter_matches_like_tar():
    f = MemberFilter(["dir", "*.py", "exact.txt"])
    assert f("dir/a") and f("x.py") and f("exact.txt") and f("dir")
    assert not f("dirt/a") and not f("exact.txt.bak")
    assert f.unmatched == []
    assert MemberFilter()("anything")


def test_reader_api_is_public():
    assert hasattr(ArchiveReader, "extractall") and hasattr(ArchiveReader, "test")


def test_machine_bound_names_float_members_and_spares_portable_ones(tmp_path):
    """Float lm members (cm1) are bound to the CPU family that coded them; classical members to nothing."""
    from pathlib import Path

    from lmar.archive import machine_bound

    fixture = Path(__file__).parent / "data" / "lm_v1_cm1.lmar"
    with lmar.open(str(fixture)) as reader:
        files = [m for m in reader.getmembers() if m.isfile()]
    assert files and all("x86_64 CPUs with sse4_2, avx, avx2, fma (float numerics)" == machine_bound(m) for m in files)
    (tmp_path / "t.txt").write_text("plain text\n" * 50)
    with lmar.open(str(tmp_path / "z.lmar"), "w", options=fast_options(codec="zlib")) as w:
        w.add([str(tmp_path / "t.txt")])
    with lmar.open(str(tmp_path / "z.lmar")) as reader:
        assert [machine_bound(m) for m in reader.getmembers() if m.isfile()] == [""]


def test_a_decode_error_carries_the_codecs_explanation():
    """A float model decoded on another CPU often fails inside the coder, before any checksum: the codec's
    mismatch_hint (what differs) must reach the message then too, not only on a checksum mismatch."""
    from lmar.errors import CodecError
    from lmar.member_codec import decode_checked
    from lmar.members import MemberInfo

    class Drifting:
        name = "drift"

        def decompress(self, payload: bytes, size: int) -> bytes:
            raise CodecError("decoded past the end of a segment")

        def mismatch_hint(self, recorded: dict) -> str:
            return f"cpu_flags: recorded {recorded['cpu_flags']!r}, here 'sse4_2'"

    info = MemberInfo("a.txt", "file", size=3)
    info.codec = type("Ref", (), {"info": {"cpu_flags": "avx2"}})()
    with pytest.raises(CodecError, match=r"a.txt: block 0: decoded past the end of a segment \(cpu_flags: recorded 'avx2'"):
        decode_checked(Drifting(), b"x", 3, 0, True, info, 0)


def test_a_progress_without_a_total_spares_reading_the_tables_twice(tmp_path, monkeypatch):
    """extract/test get the total from every member table read once more; a display that shows no total
    (``shows_total = False``: -q, pipes, library use) is started with 0 and the tables are read once."""
    from lmar import bulk

    src = tmp_path / "t"
    src.mkdir()
    (src / "a.txt").write_bytes(b"abc" * 100)
    with lmar.open(str(tmp_path / "t.lmar"), "w") as w:
        w.add([str(src)])
    calls = []
    monkeypatch.setattr(bulk, "_total", lambda reader: calls.append(1) or 300)

    class Quiet:
        shows_total = False
        started: list[int] = []

        def start(self, total_bytes, description):
            self.started.append(total_bytes)

        def advance(self, nbytes, current=""):
            pass

        def note(self, message):
            pass

        def stop(self):
            pass

    with lmar.open(str(tmp_path / "t.lmar")) as r:
        assert r.extractall(str(tmp_path / "out1"), progress=Quiet()).ok
    assert calls == [] and Quiet.started == [0]
    Quiet.shows_total = True
    with lmar.open(str(tmp_path / "t.lmar")) as r:
        assert r.extractall(str(tmp_path / "out2"), progress=Quiet()).ok
    assert calls == [1] and Quiet.started == [0, 300]


def test_long_runs_of_zeros_extract_as_holes(tmp_path):
    """A sparse file (a disk image) extracts sparse: aligned zero pieces of extract.HOLE bytes are skipped,
    whatever the chunking of the decoded bytes; the content is exact."""
    import random

    from lmar import extract
    from lmar.members import MemberInfo

    hole = extract.HOLE
    rnd = random.Random(5)
    for _ in range(200):  # exact content for any mix of runs and chunk cuts
        data = b"".join(bytes(n) if rnd.random() < 0.5 else rnd.randbytes(n)
                        for n in (rnd.choice([0, 1, hole - 1, hole, hole + 1, 3 * hole + 7, rnd.randint(0, 5 * hole)])
                                  for _ in range(rnd.randint(0, 6))))
        cuts = sorted(rnd.randint(0, len(data)) for _ in range(rnd.randint(0, 4)))
        with open(tmp_path / "x", "wb") as f:
            extract._write_content(f, str(tmp_path / "x"), iter(data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])),
                                   MemberInfo("x", "file", 0o644, 0, len(data)))
        assert (tmp_path / "x").read_bytes() == data

    probe = tmp_path / "probe"
    with open(probe, "wb") as f:
        f.truncate(1 << 20)
    if os.stat(probe).st_blocks * 512 >= 1 << 20:
        pytest.skip("this file system does not keep holes")
    (tmp_path / "t").mkdir()
    image = b"boot" + bytes(8 << 20) + b"data" + bytes(4 << 20)
    (tmp_path / "t" / "disk.img").write_bytes(image)
    with lmar.open(tmp_path / "a.lmar", "w", options=fast_options()) as w:
        w.add([str(tmp_path / "t")])
    with lmar.open(tmp_path / "a.lmar") as r:
        assert r.extractall(str(tmp_path / "out")).ok
    [out] = list((tmp_path / "out").rglob("disk.img"))
    assert out.read_bytes() == image and os.stat(out).st_blocks * 512 <= 4 * hole


def test_skip_existing_resumes_an_extraction_without_touching_what_is_there(tmp_path, tree):
    """tar's --skip-old-files: a member whose name exists is left alone, silently (no failure), and the
    missing ones are written; without it each existing name is a failure; with --overwrite it cannot go."""
    arc = make(tmp_path, tree)
    out = tmp_path / "out"
    with lmar.open(arc) as r:
        assert r.extractall(str(out)).ok
    (out / "proj" / "README").write_text("mine")
    (out / "proj" / "src" / "m3.py").unlink()
    (out / "proj" / "link").unlink()
    with lmar.open(arc) as r:
        report = r.extractall(str(out), skip_existing=True)
    assert report.ok and not report.failures
    assert (out / "proj" / "README").read_text() == "mine"
    assert (out / "proj" / "src" / "m3.py").read_text() == (tree / "src" / "m3.py").read_text()
    assert os.readlink(out / "proj" / "link") == "README"
    with lmar.open(arc) as r:
        report = r.extractall(str(out))
    assert len(report.failures) == report.visited - 2  # all but the two directories, which may exist
    assert all("--skip-existing" in why for _, why in report.failures)


def test_a_hard_link_extracted_without_its_target_gets_the_content(tmp_path):
    """Asking for one name of a hard-linked file: from a seekable archive it is written as a copy of the
    target's (verified) content, and the members after it still extract; from a stream it is refused, as
    tar refuses it, naming the target."""
    src = tmp_path / "t"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_text("shared content\n" * 50)
    os.link(src / "a.txt", src / "d" / "hard.txt")
    os.symlink("a.txt", src / "s")
    (src / "z.txt").write_text("last\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with lmar.open(tmp_path / "a.lmar", "w", options=fast_options()) as w:
            w.add(["t"])
    finally:
        os.chdir(cwd)
    with lmar.open(tmp_path / "a.lmar") as r:
        assert [m.type for m in r.getmembers() if m.path == "t/d/hard.txt"] == ["hardlink"]
        report = r.extractall(str(tmp_path / "out"), ["t/d/hard.txt", "t/s", "t/z.txt"])
    assert report.ok, report.failures
    out = tmp_path / "out" / "t"
    assert (out / "d" / "hard.txt").read_text() == "shared content\n" * 50 and not (out / "a.txt").exists()
    assert os.readlink(out / "s") == "a.txt" and (out / "z.txt").read_text() == "last\n"

    from lmar import reader as reader_module

    saved = reader_module.READ_ASIDE_LIMIT
    reader_module.READ_ASIDE_LIMIT = 100  # a target larger than this is not held in memory: refused
    try:
        with lmar.open(tmp_path / "a.lmar") as r:
            report = r.extractall(str(tmp_path / "out3"), ["t/d/hard.txt"])
        assert [why for _, why in report.failures] == ["t/d/hard.txt: hard link target t/a.txt was not extracted"]
    finally:
        reader_module.READ_ASIDE_LIMIT = saved

    class Pipe(io.RawIOBase):  # a stream that cannot seek, as stdin from a pipe
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            chunk = self._data.read(len(b))
            b[:len(chunk)] = chunk
            return len(chunk)

    with ArchiveReader(io.BufferedReader(Pipe((tmp_path / "a.lmar").read_bytes())), "<stdin>") as r:
        report = r.extractall(str(tmp_path / "out2"), ["t/d/hard.txt"])
    assert [why for _, why in report.failures] == ["t/d/hard.txt: hard link target t/a.txt was not extracted"]
