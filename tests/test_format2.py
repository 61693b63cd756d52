"""Format 2: solid groups, deduplication, codec descriptors, the compact index, and every way a hostile or
damaged archive can break them (each a one-line error naming the member, never a traceback)."""
from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path

import pytest
import xxhash

import lmar
from lmar.archive import CreateOptions, GroupingOptions
from lmar.errors import FormatError, LmarError
from lmar.formats import records as rec
from lmar.formats.container import ContainerWriter
from lmar.formats.member_table import Table, TableMember
from lmar.selection import SelectOptions

from conftest import assert_clean, classical_codecs, run_lmar, run_lmar_j1, tree_snapshot

DATA = Path(__file__).parent / "data"
H0 = xxhash.xxh3_64_intdigest


def make_tree(root: Path) -> Path:
    """Text files of several kinds, a duplicate pair, an empty file, a larger file, a symlink, a hardlink."""
    t = root / "proj"
    (t / "src" / "pkg").mkdir(parents=True)
    (t / "docs").mkdir()
    for i in range(12):
        (t / "src" / "pkg" / f"mod{i}.py").write_text(
            "".join(f"def f{i}_{j}(x):\n    return x * {j} + {i}  # helper {j}\n" for j in range(20 + i)))
    for i in range(5):
        (t / "docs" / f"page{i}.md").write_text(f"# Page {i}\n\n" + "Some prose about the project. " * (30 + i))
    blob = bytes(range(256)) * 64 + b"tail"
    (t / "docs" / "logo.bin").write_bytes(blob)
    (t / "src" / "copy_of_logo.bin").write_bytes(blob)  # a duplicate
    (t / "empty.txt").write_bytes(b"")
    (t / "big.log").write_bytes(b"".join(b"%06d log line with some words\n" % i for i in range(40000)))
    os.symlink("docs/page0.md", t / "readme-link")
    os.link(t / "docs" / "page1.md", t / "hard.md")
    return t


def create(tmp: Path, tree: Path, *extra: str, name: str = "a.lmar") -> Path:
    arc = tmp / name
    r = run_lmar_j1("create", "--candidates", ",".join(classical_codecs()), "--solid-limit", "200K",
                    *extra, str(arc), tree.name, cwd=tree.parent)
    assert r.rc == 0, r.err
    return arc


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return make_tree(tmp_path_factory.mktemp("tree"))


@pytest.mark.parametrize("mode", [(), ("--no-solid",), ("--no-dedup",), ("--no-solid", "--no-dedup")])
def test_round_trip_in_every_mode(tmp_path, tree, mode):
    arc = create(tmp_path, tree, *mode)
    out = tmp_path / "out"
    r = run_lmar("extract", "-q", str(arc), "-C", str(out))
    assert r.rc == 0, r.err
    assert tree_snapshot(out / tree.name) == tree_snapshot(tree)
    r = run_lmar("test", "-q", str(arc))
    assert r.rc == 0, r.err


def test_dedup_and_solid_are_recorded_and_listed(tmp_path, tree):
    arc = create(tmp_path, tree)
    with lmar.open(arc) as ar:
        members = {m.path: m for m in ar.getmembers()}
        copy = members["proj/src/copy_of_logo.bin"]
        orig = members["proj/docs/logo.bin"]
        assert (copy.dedup_of, orig.dedup_of) == (None, "proj/src/copy_of_logo.bin") or \
            (copy.dedup_of, orig.dedup_of) == ("proj/docs/logo.bin", None)
        assert members["proj/src/pkg/mod3.py"].solid
        assert not members["proj/big.log"].solid
        assert ar.read("proj/src/copy_of_logo.bin") == (tree / "src" / "copy_of_logo.bin").read_bytes()
        assert ar.read("proj/docs/page2.md") == (tree / "docs" / "page2.md").read_bytes()
    text = run_lmar("list", "-l", str(arc)).text
    assert "solid block" in text and "= proj/" in text and "trials not recorded" in text
    arc2 = create(tmp_path, tree, "--no-dedup", name="b.lmar")
    with lmar.open(arc2) as ar:
        assert not any(m.dedup_of for m in ar.getmembers())
    arc3 = create(tmp_path, tree, "--record-trials", name="c.lmar")
    assert "zstd=" in run_lmar("list", "-l", str(arc3)).text


def test_identical_archive_for_any_worker_count_and_streaming(tmp_path, tree):
    a = create(tmp_path, tree, name="j1.lmar")
    r = run_lmar("create", "-q", "-j", "2", "--candidates", ",".join(classical_codecs()), "--solid-limit", "200K",
                 str(tmp_path / "j2.lmar"), tree.name, cwd=tree.parent)
    assert r.rc == 0, r.err
    piped = run_lmar("create", "-q", "-j", "2", "--candidates", ",".join(classical_codecs()), "--solid-limit",
                     "200K", "-", tree.name, cwd=tree.parent)
    assert a.read_bytes() == (tmp_path / "j2.lmar").read_bytes() == piped.out
    out = tmp_path / "piped"
    r = run_lmar("extract", "-q", "-", "-C", str(out), input=piped.out)
    assert r.rc == 0, r.err
    assert tree_snapshot(out / tree.name) == tree_snapshot(tree)


def test_metadata_is_lean(tmp_path):
    """Everything but payload (tables, group ends, descriptors, index, framing) within 40 bytes per member
    on a tree of 150 small files in 10 directories (fixed costs are spread as on a real tree)."""
    root = tmp_path / "src"
    for d in range(10):
        (root / f"dir{d}").mkdir(parents=True)
        for i in range(15):
            (root / f"dir{d}" / f"module_{i}.py").write_text(f"# module {d}.{i}\n" + "x = 1\n" * (i + d))
    arc = tmp_path / "lean.lmar"
    r = run_lmar_j1("create", "--candidates", ",".join(classical_codecs()), str(arc), "src", cwd=tmp_path)
    assert r.rc == 0, r.err
    data = arc.read_bytes()
    payload = 0
    reader = rec.RecordReader(io.BytesIO(data[rec.PREAMBLE_SIZE:]), "a", rec.PREAMBLE_SIZE)
    while True:
        x = reader.next()
        if x.tag == rec.TAG_BLOCK:
            payload += len(x.body) - 12
        if x.tag == rec.TAG_INDEX:
            break
    with lmar.open(arc) as ar:
        count = len(ar.getmembers())
    assert count == 161
    assert (len(data) - payload) / count <= 40, (len(data) - payload, count)


def test_format1_fixture_still_extracts(tmp_path):
    """tests/data/format_v1.lmar was written by lmar 0.1 (format 1.0) from the tree rebuilt here."""
    out = tmp_path / "out"
    r = run_lmar("extract", "-q", str(DATA / "format_v1.lmar"), "-C", str(out))
    assert r.rc == 0, r.err
    text = "".join(f"line {i}: the quick brown fox jumps over the lazy dog {i*i}\n" for i in range(400)).encode()
    assert (out / "tree" / "a.txt").read_bytes() == text
    assert (out / "tree" / "sub" / "b.txt").read_bytes() == text[:1000]
    assert (out / "tree" / "sub" / "deeper" / "c.bin").read_bytes() == bytes(range(256)) * 20
    assert (out / "tree" / "empty").read_bytes() == b""
    assert os.readlink(out / "tree" / "link") == "a.txt"
    assert (out / "tree" / "sub" / "hard").read_bytes() == text
    assert os.stat(out / "tree" / "a.txt").st_mtime_ns == 1_600_000_000_123_456_789
    assert run_lmar("test", "-q", str(DATA / "format_v1.lmar")).rc == 0


# -- hostile archives ------------------------------------------------------------------------------------
STORE = {"name": "store", "version": 1, "params": {}, "provider": "lmar"}


def _write(groups: list[tuple[list[TableMember], list[bytes], list[int] | None]], codec: int | None = 0,
           descriptors: list[dict] | None = None, group_numbers: list[int] | None = None) -> bytes:
    """Groups of (members, block contents, member hashes or None for the true ones), stored uncompressed."""
    buf = io.BytesIO()
    w = ContainerWriter(buf)
    for d in descriptors if descriptors is not None else [STORE]:
        w.descriptor(d)
    for gi, (members, blocks, hashes) in enumerate(groups):
        number = group_numbers[gi] if group_numbers else w.next_group
        w.begin_group(Table(number, codec if blocks else None, members))
        for b in blocks:
            w.block(len(b), b, H0(b))
        if hashes is None:
            data, pos, hashes = b"".join(blocks), 0, []
            for m in members:
                if m.kind == "file":
                    if m.ref is None:
                        hashes.append(H0(data[pos:pos + m.size]))
                        pos += m.size
                    else:
                        hashes.append(H0(b"x" * m.size))
        w.end_group(hashes)
    w.close()
    return buf.getvalue()


def _read_all(data: bytes) -> tuple[dict[str, bytes], list[str]]:
    ok, errors = {}, []
    with lmar.open(io.BytesIO(data)) as ar:
        for info, read in ar.iter_members():
            try:
                if info.damage:
                    raise LmarError(info.damage)
                content = b"".join(read())
                if info.isfile():
                    ok[info.path] = content
            except LmarError as exc:
                errors.append(str(exc))
    return ok, errors


def test_crafted_solid_group_reads():
    members = [TableMember("a", "file", size=3), TableMember("b", "file", size=2), TableMember("c", "file", size=3,
                                                                                              ref=0)]
    members[0].refd = 1
    data = _write([(members, [b"abcde"], [H0(b"abc"), H0(b"de"), H0(b"abc")])])
    ok, errors = _read_all(data)
    assert ok == {"a": b"abc", "b": b"de", "c": b"abc"} and not errors


@pytest.mark.parametrize("case, match", [
    ("ref_later", "not an earlier member"),
    ("ref_missing", "not an earlier member"),
    ("sizes_too_big", "hold 5 bytes"),
    ("sizes_too_small", "hold 5 bytes"),
    ("no_descriptor", "descriptor 3, which does not exist"),
    ("wrong_group_number", "says it is group 7"),
    ("ref_to_dir", "deduplicated from"),
])
def test_hostile_tables_are_named_errors(case, match):
    a, b = TableMember("a", "file", size=3), TableMember("b", "file", size=2)
    groups: list = [([a, b], [b"abcde"], None)]
    kwargs: dict = {}
    if case == "ref_later":
        groups = [([TableMember("r", "file", size=3, ref=1), a, b], [b"abcde"], None)]
    elif case == "ref_missing":
        groups = [([a, b], [b"abcde"], None), ([TableMember("r", "file", size=3, ref=99)], [], [H0(b"abc")])]
    elif case == "sizes_too_big":
        groups = [([a, TableMember("b", "file", size=9)], [b"abcde"], [H0(b"abc"), H0(b"de")])]
    elif case == "sizes_too_small":
        groups = [([a, TableMember("b", "file", size=1)], [b"abcde"], [H0(b"abc"), H0(b"d")])]
    elif case == "no_descriptor":
        kwargs["codec"] = 3
    elif case == "wrong_group_number":
        kwargs["group_numbers"] = [7]
    elif case == "ref_to_dir":
        groups = [([TableMember("d", "dir")], [], []), ([TableMember("r", "file", size=0, ref=0)], [], [H0(b"")])]
    data = _write(groups, **kwargs)
    ok, errors = _read_all(data)
    assert errors and any(match in e for e in errors), errors
    assert all(content in (b"abc", b"de", b"") for content in ok.values())


def test_descriptor_out_of_order_or_huge_is_refused():
    body = rec.pack({"id": 5, "name": "store", "version": 1, "params": {}, "provider": "", "info": {}})
    data = rec.preamble() + rec.frame(rec.TAG_DESCRIPTOR, body)
    with pytest.raises(FormatError, match="descriptor 0 is corrupt or out of order"):
        _read_all(data)
    huge = rec.preamble() + struct.pack("<cI", rec.TAG_DESCRIPTOR, 1 << 30)
    with pytest.raises(FormatError, match="claims"):
        _read_all(huge)


def test_damaged_preamble_is_damage_not_a_version(tmp_path, tree):
    arc = create(tmp_path, tree)
    data = bytearray(arc.read_bytes())
    data[9] ^= 0x80  # the major version's high byte
    arc.write_bytes(bytes(data))
    r = run_lmar("list", str(arc))
    assert r.rc == 2 and "preamble is damaged" in r.err and "upgrade" not in r.err
    assert_clean(r)


def test_damaged_index_and_footer_warn_and_scan(tmp_path, tree):
    arc = create(tmp_path, tree)
    good = arc.read_bytes()
    for at in (len(good) - 3, len(good) - 40):  # the footer's check, then inside the index
        data = bytearray(good)
        data[at] ^= 0x01
        arc.write_bytes(bytes(data))
        for cmd in ("list", "test"):
            r = run_lmar(cmd, "-q", str(arc)) if cmd == "test" else run_lmar(cmd, str(arc))
            assert r.rc == 0 and "warning" in r.err and "scanning" in r.err, (cmd, r.err)
            assert_clean(r)


def test_damaged_table_names_its_members_in_extract_and_test(tmp_path, tree):
    arc = create(tmp_path, tree)
    data = bytearray(arc.read_bytes())
    with lmar.open(arc) as ar:
        victim = [m for m in ar.getmembers() if m.solid][0]
        group = victim.group
    # find the group's table through the index and damage a byte of its body
    with open(arc, "rb") as f:
        from lmar.formats.container import open_container
        c = open_container(f, "a")
        offset = c.read_index().tables[group][0]
    data[offset + 12] ^= 0xFF
    arc.write_bytes(bytes(data))
    rt = run_lmar("test", "-q", str(arc))
    rx = run_lmar("extract", "-q", str(arc), "-C", str(tmp_path / "x"))
    assert rt.rc == rx.rc == 1
    for r in (rt, rx):
        assert victim.path in r.err and "damaged" in r.err, r.err
        assert_clean(r)
    assert (tmp_path / "x" / "proj" / "big.log").exists()  # the rest still extracts


def test_corruption_campaign(tmp_path, tree):
    """Seeded mutants of an archive of every member kind: never a crash, never wrong bytes reported OK, and
    extract and test agree on which members failed."""
    import random

    arc = create(tmp_path, tree, "--solid-limit", "4K")
    good = arc.read_bytes()
    originals = {p: (tree.parent / p).read_bytes() for p in _files(arc)}
    rnd = random.Random(2026)
    for n in range(300):
        data = bytearray(good)
        kind = n % 4
        if kind == 0:
            data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
        elif kind == 1:
            data = data[:rnd.randrange(len(data))]
        elif kind == 2:
            at = rnd.randrange(len(data))
            data[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 9)))
        else:
            at = rnd.randrange(len(data) - 8)
            data[at:at + 8] = bytes(rnd.randrange(256) for _ in range(8))
        ok, errors = _read_all_safely(bytes(data))
        for path, content in ok.items():
            assert content == originals.get(path, content), f"mutant {n}: {path} read wrong bytes"
        if n % 30 == 0:  # through the command too: extract and test agree
            m = tmp_path / f"m{n}.lmar"
            m.write_bytes(bytes(data))
            rt = run_lmar("test", "-q", str(m))
            rx = run_lmar("extract", "-q", str(m), "-C", str(tmp_path / f"x{n}"))
            assert_clean(rt), assert_clean(rx)
            assert (rt.rc == 0) == (rx.rc == 0), (n, rt.err, rx.err)


def _files(arc: Path) -> list[str]:
    with lmar.open(arc) as ar:
        return [m.path for m in ar.getmembers() if m.isfile()]


def _read_all_safely(data: bytes) -> tuple[dict[str, bytes], list[str]]:
    try:
        return _read_all(data)
    except LmarError as exc:
        return {}, [str(exc)]


def test_api_grouping_options_round_trip():
    buf = io.BytesIO()
    opts = CreateOptions(select=SelectOptions(candidates=classical_codecs()), jobs=1,
                         grouping=GroupingOptions(solid=False, dedup=False))
    w = lmar.open(buf, "w", options=opts)
    w.addbytes("x", b"hello" * 100)
    w.addbytes("y", b"")
    w.close()
    with lmar.open(io.BytesIO(buf.getvalue())) as ar:
        assert ar.read("x") == b"hello" * 100 and ar.read("y") == b""


def test_solid_limit_is_one_mib_unless_given(tmp_path):
    """Without --solid-limit, a 200 KiB file joins the small files' solid group at every level (1 MiB limit:
    the codec's statistics carry across them); with a 64 KiB limit it keeps a group of its own."""
    from lmar.grouping import DEFAULT_SOLID_LIMIT, solid_limit_for

    assert solid_limit_for("default") == solid_limit_for("fast") == DEFAULT_SOLID_LIMIT == 1 << 20
    src = tmp_path / "t"
    src.mkdir()
    (src / "big.txt").write_bytes(b"".join(b"line %d of a medium file\n" % i for i in range(8000)))
    for i in range(3):
        (src / f"s{i}.txt").write_bytes(b"small file %d\n" % i * 50)
    solid = {}
    for level, limit in (("default", None), ("fast", None), ("fast", 64 << 10)):
        arc = tmp_path / f"{level}{limit}.lmar"
        opts = CreateOptions(select=SelectOptions(candidates=classical_codecs(), level=level), jobs=1,
                             grouping=GroupingOptions(solid_limit=limit))
        here = os.getcwd()
        os.chdir(tmp_path)
        try:
            with lmar.open(str(arc), "w", options=opts) as w:
                w.add(["t"])
        finally:
            os.chdir(here)
        with lmar.open(str(arc)) as ar:
            solid[level, limit] = ar.getmember("t/big.txt").solid
    assert solid == {("default", None): True, ("fast", None): True, ("fast", 64 << 10): False}


def test_solid_group_size_follows_the_level_unless_given():
    """Fast makes 4 MiB groups (its classical codecs code 4 MiB blocks, so the groups can go to parallel
    workers); the default level 16 MiB (one lm block); --solid-size wins at every level."""
    from lmar.grouping import DEFAULT_SOLID_SIZE, LEVEL_SOLID_SIZE

    assert GroupingOptions().size_at("fast") == LEVEL_SOLID_SIZE["fast"] == 4 << 20
    assert GroupingOptions().size_at("default") == GroupingOptions().size_at("max") == DEFAULT_SOLID_SIZE
    assert GroupingOptions(solid_size=1 << 20).size_at("fast") == 1 << 20


def test_duplicate_search_hands_its_reads_to_the_grouping(tmp_path, monkeypatch):
    """Small files the duplicate search reads (those sharing a size) are not opened again by plan_groups,
    up to KEEP_LIMIT bytes; the groups are the same either way."""
    from lmar import grouping
    from lmar.walk import collect

    src = tmp_path / "t"
    src.mkdir()
    for i in range(6):
        (src / f"f{i}.txt").write_bytes(b"%02d" % i * 50)  # six files of 100 bytes: all share a size
    (src / "g.txt").write_bytes(b"00" * 50)  # a duplicate of f0
    monkeypatch.chdir(tmp_path)
    sources = [s for s in collect(["t"]) if not hasattr(s, "reason")]
    files = [s for s in sources if s.info.type == "file"]
    keep: dict[int, bytes] = {}
    dups = grouping.find_duplicates(files, keep, len(files))
    assert len(dups) == 1 and sorted(keep) == list(range(len(files)))
    assert all(keep[i] == (tmp_path / files[i].fs_path).read_bytes() for i in keep)
    monkeypatch.setattr(grouping, "KEEP_LIMIT", 250)
    keep = {}
    grouping.find_duplicates(files, keep, len(files))
    assert sum(map(len, keep.values())) <= 250 and len(keep) == 2

    def groups() -> list[tuple[list[str], bytes | None, dict[int, int]]]:
        return [([m.info.path for m in g.members], g.data, g.refs)
                for g in grouping.plan_groups(sources, GroupingOptions(), lambda d: "solid")]

    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: opened.append(p) or real_open(p, *a, **k))
    with_limit = groups()
    monkeypatch.setattr(grouping, "KEEP_LIMIT", 1 << 20)
    opened.clear()
    assert groups() == with_limit
    # each file read once (f0 and its duplicate g once more, compared byte for byte)
    assert all(opened.count(os.path.join("t", f"f{i}.txt")) == 1 for i in range(1, 6)), opened


def test_a_file_that_changes_while_archived_is_said_and_its_copies_stay_right(tmp_path, monkeypatch):
    """A small file read at another size than walked is archived at most at its walked size and warned
    about; one that changed after its duplicates were matched does not lend them its new bytes: they are
    stored on their own. A large file's duplicates are references to what is streamed: the warning names them."""
    from lmar import grouping
    from lmar.walk import collect

    src = tmp_path / "t"
    src.mkdir()
    (src / "a.txt").write_bytes(b"same content\n" * 20)
    (src / "b.txt").write_bytes(b"same content\n" * 20)  # a duplicate of a.txt
    (src / "grows.log").write_bytes(b"line\n" * 10)
    monkeypatch.chdir(tmp_path)
    sources = [s for s in collect(["t"]) if not hasattr(s, "reason")]
    real_find = grouping.find_duplicates

    def find_then_change(files, keep=None, keep_below=0, digests=None):
        dups = real_find(files, keep, keep_below, digests)
        keep.clear()  # as if past KEEP_LIMIT: plan_groups reads the files again
        (src / "a.txt").write_bytes(b"SAME content\n" * 20)  # same size, other bytes
        (src / "grows.log").write_bytes(b"line\n" * 30)
        return dups

    monkeypatch.setattr(grouping, "find_duplicates", find_then_change)
    groups = list(grouping.plan_groups(sources, GroupingOptions(), lambda d: "solid"))
    [g] = [g for g in groups if g.kind == "solid"]
    names = [m.info.path for m in g.members]
    assert g.refs == {}, "b.txt must not refer to the changed a.txt"
    assert g.data == b"".join(
        {"t/a.txt": b"SAME content\n" * 20, "t/b.txt": b"same content\n" * 20, "t/grows.log": b"line\n" * 10}[n]
        for n in names)
    assert {names[i]: notes for i, notes in g.notes.items()} == {"t/grows.log": [grouping.CHANGED]}

    # through the writer: the warning reaches the member's result, the archive holds what was read
    monkeypatch.setattr(grouping, "find_duplicates", real_find)
    (src / "big.bin").write_bytes(b"0123456789abcdef" * 80_000)
    (src / "big-copy.bin").write_bytes(b"0123456789abcdef" * 80_000)
    real_submit = lmar.writer.submit_file

    def submit_changed(executor, path, size, opts):  # the plan reads the large file whole, changed
        if path.endswith("big-copy.bin"):  # the original: it comes first in tree order
            (src / "big-copy.bin").write_bytes(b"fedcba9876543210" * 80_000)
        return real_submit(executor, path, size, opts)

    monkeypatch.setattr(lmar.writer, "submit_file", submit_changed)
    with lmar.open(tmp_path / "x.lmar", "w", options=CreateOptions(
            select=SelectOptions(codec="zstd"), grouping=GroupingOptions(solid_limit=1 << 20))) as w:
        results = w.add(["t"])
    warned = {r.path: r.warnings for r in results if r.warnings}
    assert list(warned) == ["t/big-copy.bin"] and "(t/big.bin)" in warned["t/big-copy.bin"][0]


def test_a_cut_archive_names_the_member_it_cuts(tmp_path):
    """Truncation inside a member's data is that member's failure, named, not only the archive's."""
    src = tmp_path / "t"
    src.mkdir()
    (src / "big.txt").write_bytes(b"".join(b"%07d some words\n" % i for i in range(120_000)))
    with lmar.open(tmp_path / "a.lmar", "w", options=CreateOptions(select=SelectOptions(codec="store"))) as w:
        w.add([str(src)])
    whole = (tmp_path / "a.lmar").read_bytes()
    (tmp_path / "cut.lmar").write_bytes(whole[:len(whole) // 2])
    problems = []
    with pytest.raises(FormatError, match="group end record is missing"):
        with lmar.open(tmp_path / "cut.lmar") as r:
            r.test(on_member=lambda info, problem: problems.append(problem))
    assert [p for p in problems if p] and all(p.endswith("big.txt: " + str(tmp_path / "cut.lmar")
                                                         + " is truncated (in data block)") for p in problems if p)


def test_a_file_emptied_while_archived_leaves_a_readable_archive(tmp_path, monkeypatch):
    """A small file found empty when read (after the walk saw bytes) does not join a solid group, where a
    group with one data member listed second is refused by readers as corrupt: it gets a group of its own."""
    from lmar import grouping

    (tmp_path / "t").mkdir()
    for name in ("b.txt", "e.txt"):
        (tmp_path / "t" / name).write_text(name * 50)
    real_find = grouping.find_duplicates

    def find_then_empty(files, keep=None, keep_below=0, digests=None):
        dups = real_find(files, keep, keep_below, digests)
        keep.clear()
        (tmp_path / "t" / "b.txt").write_bytes(b"")
        return dups

    monkeypatch.setattr(grouping, "find_duplicates", find_then_empty)
    monkeypatch.chdir(tmp_path)
    with lmar.open("x.lmar", "w", options=CreateOptions(select=SelectOptions(codec="zstd"))) as w:
        warned = {r.path: r.warnings for r in w.add(["t"]) if r.warnings}
    assert warned == {"t/b.txt": [grouping.CHANGED]}
    with lmar.open("x.lmar") as r:
        assert r.test().ok and {m.path: m.size for m in r.getmembers() if m.isfile()} == {"t/b.txt": 0, "t/e.txt": 250}


def test_owners_round_trip_through_a_table_and_hostile_columns_are_refused():
    """Format 2.1's ``own``/``owner`` columns: distinct owners once, an index per member (nil: not recorded);
    anything else is a one-line error naming the table, before a reader uses a value."""
    from lmar.formats.member_table import decode_table, encode_table

    alice, bob = (1000, 1000, "alice", "staff"), (0, 0, "root", "root")
    members = [TableMember("a", "dir", owner=alice), TableMember("b", "file", size=3, owner=bob),
               TableMember("c", "file", size=2, owner=alice), TableMember("d", "file", size=1)]
    body = encode_table(Table(0, 0, members))
    doc = rec.unpack(rec.decompress(body, 1 << 20, "t"), "t")
    assert doc["own"] == [list(alice), list(bob)] and doc["owner"] == [0, 1, 0, None]
    assert [m.owner for m in decode_table(body, "t", 0).members] == [alice, bob, alice, None]
    ownerless = encode_table(Table(0, 0, [TableMember("x", "dir")]))
    assert "own" not in rec.unpack(rec.decompress(ownerless, 1 << 20, "t"), "t")
    odd = [TableMember("a", "dir", owner=(5, 6, "u" * 300, "g")), TableMember("b", "dir", owner=(-1, 0, "x", "y"))]
    assert [m.owner for m in decode_table(encode_table(Table(0, 0, odd)), "t", 0).members] == [(5, 6, "", "g"), None]
    for own, column in [(None, [0, 0, 0, 0]), ([list(alice)], None), ([list(alice)], [0, 1, 0, 0]),
                        ([list(alice)], [0, 0]), ([[-1, 0, "", ""]], [0, 0, 0, 0]), ([[1 << 32, 0, "", ""]], [0] * 4),
                        ([[0, 0, "x" * 256, ""]], [0] * 4), ([[0, 0, "", 5]], [0] * 4), ([[0, 0, ""]], [0] * 4),
                        ([list(alice)] * 5, [0] * 4), ([list(alice)], [True, 0, 0, 0]), ("x", [0] * 4)]:
        hostile = dict(doc, own=own, owner=column)
        hostile = {k: v for k, v in hostile.items() if v is not None}
        with pytest.raises(FormatError, match="t: owner columns are corrupt"):
            decode_table(rec.compress(rec.pack(hostile)), "t", 0)


def test_owners_are_recorded_listed_and_given_back_only_when_asked(tmp_path, monkeypatch, capsys):
    """create records each member's user and group (ids and names); `list -l` shows user/group and
    `--json` adds uid, gid, uname and gname; `--no-owner` records none; extraction leaves files to the user
    extracting unless `--same-owner` (root only) gives the recorded owners back."""
    from lmar.cli import main

    src = tmp_path / "t"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a\n")
    (src / "sub" / "b.txt").write_text("b\n")
    os.symlink("a.txt", src / "link")
    st = os.lstat(src / "a.txt")
    monkeypatch.chdir(tmp_path)
    assert main(["create", "-q", "-j", "1", "--level", "fast", "o.lmar", "t"]) == 0
    assert main(["create", "-q", "-j", "1", "--level", "fast", "--no-owner", "n.lmar", "t"]) == 0
    capsys.readouterr()
    with lmar.open(tmp_path / "o.lmar") as r:
        names = ("t", "t/sub", "t/a.txt", "t/sub/b.txt", "t/link")
        assert {m.path: (m.uid, m.gid) for m in r.getmembers()} == {p: (st.st_uid, st.st_gid) for p in names}
    with lmar.open(tmp_path / "n.lmar") as r:
        assert all(m.owner is None for m in r.getmembers())
    assert main(["list", "--json", "o.lmar"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {(m["uid"], m["gid"]) for m in listed} == {(st.st_uid, st.st_gid)} and "uname" in listed[0]
    assert main(["list", "-l", "n.lmar"]) == 0
    assert all(line.split()[1] == "-" for line in capsys.readouterr().out.splitlines())

    if os.geteuid() != 0:  # giving files away needs root: here only the refusal can be checked
        assert main(["extract", "--same-owner", "o.lmar", "-C", "x"]) == 2
        assert "--same-owner needs root" in capsys.readouterr().err
        return
    for p in ("a.txt", "sub/b.txt", "sub", "link"):
        os.chown(src / p, 12345, 54321, follow_symlinks=False)
    assert main(["create", "-q", "-j", "1", "--level", "fast", "p.lmar", "t"]) == 0
    assert main(["extract", "-q", "p.lmar", "-C", "plain"]) == 0
    assert main(["extract", "-q", "--same-owner", "p.lmar", "-C", "same"]) == 0
    for p in ("a.txt", "sub/b.txt", "sub", "link"):
        plain, same = os.lstat(tmp_path / "plain" / "t" / p), os.lstat(tmp_path / "same" / "t" / p)
        assert (plain.st_uid, plain.st_gid) == (0, 0) and (same.st_uid, same.st_gid) == (12345, 54321), p
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["extract", "--same-owner", "p.lmar", "-C", "user"]) == 2
    assert "--same-owner needs root" in capsys.readouterr().err and not (tmp_path / "user").exists()


def test_a_format_2_0_archive_and_a_future_minor_version_still_read(tmp_path, tree):
    """Minor versions only add what readers may ignore: an archive stamped 2.0 (no owner columns) and one
    stamped 2.9 both list, test and extract, the first with no owners."""
    arc = create(tmp_path, tree, "--no-owner")
    data = bytearray(arc.read_bytes())
    for minor in (0, 9):
        head = rec.PREAMBLE_V1.pack(rec.MAGIC, 2, minor)
        data[:16] = head + struct.pack("<I", rec.check32(head))
        stamped = tmp_path / f"v2_{minor}.lmar"
        stamped.write_bytes(bytes(data))
        with lmar.open(stamped) as r:
            assert r.test().ok and all(m.owner is None for m in r.getmembers())
