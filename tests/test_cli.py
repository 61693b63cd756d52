"""The ``lmar`` command: JSON shapes, exit codes, options, pipes, and never leaving a half archive behind.

Subprocesses cost about half a second each, so the real command runs where the process boundary matters
(pipes, exit status, interrupts, worker processes); the rest calls ``lmar.cli.main`` in this process.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from lmar.cli import main as lmar_main
from lmar.codec import Codec

from conftest import assert_clean, read_all, run_lmar, run_lmar_j1

TEXT = b"The quick brown fox jumps over the lazy dog.\n" * 200
RUNS = b"\0" * 5000 + b"\xff" * 3000


@pytest.fixture
def tree(tmp_path):
    """A small tree: text, random bytes, runs, an empty file, an empty dir, a subdir and a symlink."""
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty_dir").mkdir()
    (root / "text.txt").write_bytes(TEXT)
    (root / "random.bin").write_bytes(random.Random(1).randbytes(4000))
    (root / "runs.dat").write_bytes(RUNS)
    (root / "empty").write_bytes(b"")
    (root / "sub" / "notes.md").write_bytes(b"# notes\n" * 50)
    (root / "sub" / "deeper" / "skip.log").write_bytes(b"log line\n" * 30)
    os.symlink("text.txt", root / "link")
    return root


def main_in(capsys, *args):
    """``lmar.cli.main`` in this process; returns (exit code, stdout, stderr)."""
    rc = lmar_main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return rc, out, err


def no_temp_files(directory) -> bool:
    return not [n for n in os.listdir(directory) if n.startswith(".lmar-")]


# -- create, list, codecs: JSON shapes ---------------------------------------------------------------------
def test_create_list_and_codecs_json(tmp_path, tree):
    arc = tmp_path / "t.lmar"
    run = run_lmar_j1("create", "--json", "--level", "fast", arc, "tree", cwd=tmp_path)
    assert_clean(run)
    assert run.rc == 0, run.err
    doc = json.loads(run.out)
    assert set(doc) >= {"archive", "members", "totals"}
    by_path = {m["path"]: m for m in doc["members"]}
    text = by_path["tree/text.txt"]
    assert {"path", "type", "size", "stored_size", "codec", "candidates", "warnings", "error"} <= set(text)
    assert text["type"] == "file" and text["size"] == len(TEXT) and text["stored_size"] < len(TEXT)
    assert text["codec"] in text["candidates"]
    for cand in text["candidates"].values():
        assert set(cand) == {"size", "how"}
    assert by_path["tree/link"]["type"] == "symlink" and by_path["tree/empty_dir"]["type"] == "dir"
    assert doc["totals"]["failed"] == 0 and doc["totals"]["size"] == sum(
        m["size"] for m in doc["members"] if m["type"] == "file")

    run = run_lmar("list", "--json", arc)
    assert run.rc == 0, run.err
    listed = json.loads(run.out)
    assert isinstance(listed, list) and len(listed) == len(doc["members"])
    for m in listed:
        assert {"path", "type", "size", "codec", "stored_size"} <= set(m)
    files = {m["path"]: m for m in listed if m["type"] == "file"}
    assert files["tree/text.txt"]["codec"] == text["codec"]
    assert files["tree/random.bin"]["codec"] == "store"  # incompressible
    assert files["tree/empty"]["size"] == 0

    run = run_lmar("codecs", "--json")
    assert run.rc == 0, run.err
    codecs = json.loads(run.out)
    assert isinstance(codecs, list)
    real = [c for c in codecs if c.get("name")]
    for c in real:
        assert {"name", "version", "kind", "available", "provider"} <= set(c)
        assert isinstance(c["available"], bool) and isinstance(c["version"], int)
    names = {c["name"]: c for c in real}
    assert {"store", "zlib", "zstd"} <= set(names) and names["zlib"]["provider"] == "lmar"
    assert names["zlib"]["kind"] == "classical"


def test_parallel_create_is_byte_identical_to_serial(tmp_path, tree):
    """Determinism: -j 2 (worker processes) and -j 1 give the same bytes for the same input and options."""
    a, b = tmp_path / "j1.lmar", tmp_path / "j2.lmar"
    r1 = run_lmar("create", "-q", "-j", "1", "--level", "fast", a, "tree", cwd=tmp_path)
    r2 = run_lmar("create", "-q", "-j", "2", "--level", "fast", b, "tree", cwd=tmp_path)
    assert r1.rc == 0 and r2.rc == 0, (r1.err, r2.err)
    assert a.read_bytes() == b.read_bytes()


# -- pipes -----------------------------------------------------------------------------------------------
def test_create_to_stdout_and_read_from_stdin(tmp_path, tree):
    """``create -`` writes the archive to stdout; list/test/extract read it from a pipe (no seeking)."""
    run = run_lmar_j1("create", "--level", "fast", "-", "tree", cwd=tmp_path)
    assert run.rc == 0, run.err
    data = run.out
    assert data.startswith(b"LMAR")
    assert read_all(data)["tree/text.txt"] == TEXT

    listed = run_lmar("list", "-", input=data)
    assert listed.rc == 0, listed.err
    assert "tree/text.txt" in listed.text.splitlines() and "tree/sub/" in listed.text.splitlines()

    tested = run_lmar("test", "-", input=data)
    assert tested.rc == 0 and "FAILED" not in tested.err, tested.err

    dest = tmp_path / "from_pipe"
    run = run_lmar("extract", "-", "-C", dest, input=data)
    assert run.rc == 0, run.err
    assert (dest / "tree" / "text.txt").read_bytes() == TEXT
    assert (dest / "tree" / "runs.dat").read_bytes() == RUNS
    assert os.readlink(dest / "tree" / "link") == "text.txt"
    assert (dest / "tree" / "empty_dir").is_dir()

    # Without its footer the archive has no index and is read by scanning, from a file or a pipe.
    headless = tmp_path / "noindex.lmar"
    headless.write_bytes(data[:-32])
    for args, inp in (((headless,), None), (("-",), data[:-32])):
        run = run_lmar("list", *args, input=inp)
        assert run.rc == 0, run.err
        assert "tree/text.txt" in run.text.splitlines()


# -- options ---------------------------------------------------------------------------------------------
def test_exclude_globs(capsys, tmp_path, tree, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = main_in(capsys, "create", "-q", "-j", "1", "--level", "fast", "--exclude", "*.log",
                           "--exclude", "tree/sub/notes.md", "--exclude", "empty_dir", "x.lmar", "tree")
    assert rc == 0, err
    rc, out, err = main_in(capsys, "list", "x.lmar")
    names = set(out.splitlines())
    assert "tree/sub/deeper/skip.log" not in names and "tree/sub/notes.md" not in names
    assert "tree/empty_dir/" not in names
    assert {"tree/text.txt", "tree/sub/", "tree/sub/deeper/"} <= names


def test_create_with_directory_option(tmp_path, tree, lmar_cli):
    """-C changes directory before adding, so names are stored relative to it."""
    arc = tmp_path / "c.lmar"
    run = lmar_cli("create", "--level", "fast", "-C", tree, arc, "text.txt", "sub")
    assert run.rc == 0, run.err
    assert set(read_all(str(arc))) == {"text.txt", "sub/notes.md", "sub/deeper/skip.log"}


def test_extract_member_globs_directory_and_to_stdout(capsys, tmp_path, tree, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert lmar_main(["create", "-q", "-j", "1", "--level", "fast", "x.lmar", "tree"]) == 0
    capsys.readouterr()
    rc, out, err = main_in(capsys, "extract", "-q", "x.lmar", "-C", "d1", "tree/*.txt", "tree/sub")
    assert rc == 0, err
    got = {os.path.relpath(os.path.join(d, f), "d1") for d, _, fs in os.walk("d1") for f in fs}
    assert got == {"tree/text.txt", "tree/sub/notes.md", "tree/sub/deeper/skip.log"}
    rc, out, err = main_in(capsys, "extract", "-q", "x.lmar", "-C", "d2", "tree/nope*", "tree/runs.dat")
    assert rc == 1 and "tree/nope*" in err and "not found" in err
    assert (tmp_path / "d2" / "tree" / "runs.dat").read_bytes() == RUNS
    # -O: contents to stdout, nothing on disk.
    run = run_lmar("extract", "-O", "x.lmar", "tree/text.txt", "tree/runs.dat", cwd=tmp_path)
    assert run.rc == 0, run.err
    assert run.out == RUNS + TEXT  # archive order
    assert sorted(os.listdir(tmp_path)) == ["d1", "d2", "tree", "x.lmar"]


def test_codec_forcing_and_candidates(capsys, tmp_path, tree, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = main_in(capsys, "create", "-q", "-j", "1", "--codec", "zlib", "z.lmar", "tree")
    assert rc == 0, err
    rc, out, err = main_in(capsys, "list", "--json", "z.lmar")
    # empty files carry no data and so no codec (format 2)
    assert {m["codec"] for m in json.loads(out) if m["type"] == "file" and m["size"]} == {"zlib"}
    rc, out, err = main_in(capsys, "create", "-q", "-j", "1", "--candidates", "zlib,bz2", "c.lmar", "tree")
    assert rc == 0, err
    rc, out, err = main_in(capsys, "list", "--json", "c.lmar")
    assert {m["codec"] for m in json.loads(out) if m["type"] == "file" and m["size"]} <= {"zlib", "bz2", "store"}


# -- errors and exit codes -------------------------------------------------------------------------------
def test_unknown_codec_is_one_line_exit_2_and_no_archive(capsys, tmp_path, tree, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for opt in (("--codec", "nosuch"), ("--candidates", "zlib,nosuch")):
        rc, out, err = main_in(capsys, "create", "-q", "-j", "1", *opt, "x.lmar", "tree")
        assert rc == 2
        assert err.count("\n") == 1 and err.startswith("lmar: ") and "nosuch" in err
        assert not (tmp_path / "x.lmar").exists() and no_temp_files(tmp_path)


def test_missing_input_is_exit_1_rest_archived(capsys, tmp_path, tree, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = main_in(capsys, "create", "-q", "-j", "1", "--level", "fast", "x.lmar", "no/such/path",
                           "tree/text.txt")
    assert rc == 1
    assert "no/such/path" in err and err.startswith("lmar: ")
    assert read_all(str(tmp_path / "x.lmar")) == {"tree/text.txt": TEXT}


def test_create_refuses_to_overwrite_an_archive(capsys, tmp_path, tree, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.lmar").write_bytes(b"precious")
    rc, out, err = main_in(capsys, "create", "-q", "-j", "1", "x.lmar", "tree/text.txt")
    assert rc == 2 and "already exists" in err and "--overwrite" in err
    assert (tmp_path / "x.lmar").read_bytes() == b"precious" and no_temp_files(tmp_path)
    rc, out, err = main_in(capsys, "create", "-q", "-j", "1", "--level", "fast", "--overwrite", "x.lmar",
                           "tree/text.txt")
    assert rc == 0, err
    assert read_all(str(tmp_path / "x.lmar")) == {"tree/text.txt": TEXT}


def test_odd_names_print_on_one_line_each(capsys, tmp_path, monkeypatch):
    """A newline or an escape sequence in a name, or bytes that are not UTF-8, never split or drive a line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "new\nline").write_bytes(b"a")
    (tmp_path / "odd" / "esc\x1b[31m").write_bytes(b"b")
    os.mkdir(os.fsencode(tmp_path / "odd") + b"/bad\xff")
    rc, out, err = main_in(capsys, "create", "-q", "-j", "1", "--level", "fast", "x.lmar", "odd")
    assert rc == 1 and err == "lmar: odd/bad\\xff: name is not valid UTF-8; not archived\n"
    for args in (("list",), ("list", "-l"), ("test", "-v")):
        rc, out, err = main_in(capsys, *args, "x.lmar")
        assert rc == 0 and "\x1b" not in out + err
        assert any(line.endswith("odd/new\\nline") or "odd/new\\nline  [" in line for line in out.splitlines())
    rc, out, err = main_in(capsys, "extract", "x.lmar")  # everything exists already: one line per member
    assert rc == 1 and err.count("\n") == 2 and "odd/new\\nline: already exists" in err
    assert json.loads(main_in(capsys, "list", "--json", "x.lmar")[1])[1]["path"] in ("odd/new\nline", "odd/esc\x1b[31m")


def test_an_archive_path_that_is_a_directory_is_refused(capsys, tmp_path, tree, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    for extra in ((), ("--overwrite",)):
        rc, out, err = main_in(capsys, "create", "-q", "-j", "1", *extra, "adir", "tree/text.txt")
        assert rc == 2 and err == "lmar: " + str(tmp_path / "adir") + ": is a directory; name the archive file to write\n"
        assert (tmp_path / "adir").is_dir() and no_temp_files(tmp_path)


def test_absolute_and_dotdot_paths_are_stored_relative_and_said_once(capsys, tmp_path, tree, monkeypatch):
    monkeypatch.chdir(tree / "sub")
    rc, out, err = main_in(capsys, "create", "-j", "1", "--level", "fast", str(tmp_path / "a.lmar"),
                           str(tree / "text.txt"), str(tree / "runs.dat"), "../empty")
    assert rc == 0 and err == ("lmar: removing leading '/' from member names\n"
                               "lmar: removing '..' from member names\n")
    rc, out, err = main_in(capsys, "create", "-q", "-j", "1", "--level", "fast", str(tmp_path / "b.lmar"),
                           str(tree / "text.txt"))
    assert rc == 0 and err == ""
    names = set(read_all(str(tmp_path / "a.lmar")))
    assert names == {str(tree / "text.txt").lstrip("/"), str(tree / "runs.dat").lstrip("/"), "empty"}


def test_archive_does_not_include_itself(capsys, tmp_path, tree, monkeypatch):
    monkeypatch.chdir(tree)
    rc, out, err = main_in(capsys, "create", "-q", "-j", "1", "--level", "fast", "self.lmar", ".")
    assert rc == 0, err
    assert not [p for p in read_all(str(tree / "self.lmar")) if "lmar" in p]


def test_test_command_names_the_damaged_member(capsys, tmp_path, tree, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # --no-solid: each file in a block of its own (in a solid block, damage reaches every member of the block)
    rc, _, err = main_in(capsys, "create", "-q", "-j", "1", "--no-solid", "--codec", "store", "x.lmar",
                         "tree/text.txt", "tree/runs.dat")
    assert rc == 0, err
    data = bytearray((tmp_path / "x.lmar").read_bytes())
    where = data.find(TEXT[:64])
    data[where + 10] ^= 0x01
    (tmp_path / "x.lmar").write_bytes(bytes(data))
    rc, out, err = main_in(capsys, "test", "x.lmar")
    assert rc == 1
    assert "tree/text.txt" in err and "tree/runs.dat" not in err.replace("1 of 2", "")
    assert "1 of 2 members OK" in err
    # Extraction writes the intact member and nothing for the damaged one.
    rc, out, err = main_in(capsys, "extract", "-q", "x.lmar", "-C", "out")
    assert rc == 1 and "tree/text.txt" in err
    assert (tmp_path / "out" / "tree" / "runs.dat").read_bytes() == RUNS
    assert not (tmp_path / "out" / "tree" / "text.txt").exists()
    assert no_temp_files(tmp_path / "out" / "tree")


def test_usage_errors_exit_2(capsys):
    run = run_lmar()  # no command: help on stderr, exit 2
    assert run.rc == 2 and "usage" in run.err
    assert_clean(run)
    for args in (("create",), ("frobnicate",), ("list", "--bogus", "x"), ("create", "-j", "x", "a", "b")):
        with pytest.raises(SystemExit) as exc:
            lmar_main(list(args))
        assert exc.value.code == 2
    capsys.readouterr()


def test_missing_archive_is_exit_2(capsys, tmp_path):
    for cmd in ("list", "test", "extract"):
        rc, out, err = main_in(capsys, cmd, tmp_path / "nope.lmar")
        assert rc == 2 and "nope.lmar" in err and err.count("\n") == 1


# -- a create that fails leaves nothing behind ----------------------------------------------------------
FAILING_CODEC = textwrap.dedent("""
    import signal, sys, time
    from lmar.codec import Codec
    from lmar.registry import get_registry
    from lmar.cli import main

    class Boom(Codec):
        name = "boom"
        def compress(self, data):
            if sys.argv[1] == "sleep":  # only a real SIGINT stops this create
                print("compressing", file=sys.stderr, flush=True)
                time.sleep(20)
                return data
            raise KeyboardInterrupt
        def decompress(self, payload, size):
            return payload

    # Python leaves SIGINT ignored when it starts ignored (e.g. under a background job); a terminal would not.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    get_registry().register(Boom, "test")
    sys.exit(main(["create", "-q", "-j", "1", "--codec", "boom", *sys.argv[2:]]))
""")


def test_interrupted_create_leaves_no_half_archive(tmp_path, tree):
    """An interrupt in the middle of coding (a codec raising KeyboardInterrupt): exit 130, no archive,
    no temp file, and an archive that was already there untouched (with --overwrite too)."""
    arc = tmp_path / "x.lmar"
    proc = subprocess.run([sys.executable, "-c", FAILING_CODEC, "raise", str(arc), "tree"], cwd=tmp_path,
                          capture_output=True, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert b"Traceback" not in proc.stderr and b"interrupted" in proc.stderr
    assert not arc.exists() and no_temp_files(tmp_path)
    arc.write_bytes(b"old archive")
    proc = subprocess.run([sys.executable, "-c", FAILING_CODEC, "raise", "--overwrite", str(arc), "tree"],
                          cwd=tmp_path, capture_output=True, timeout=120)
    assert proc.returncode == 130
    assert arc.read_bytes() == b"old archive" and no_temp_files(tmp_path)


def test_sigint_during_create_leaves_no_half_archive(tmp_path, tree):
    """A real Ctrl-C (SIGINT) while a codec is busy."""
    arc = tmp_path / "x.lmar"
    proc = subprocess.Popen([sys.executable, "-c", FAILING_CODEC, "sleep", str(arc), "tree"], cwd=tmp_path,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        line = proc.stderr.readline()  # the codec has started: the temp archive exists
        assert b"compressing" in line
        assert not no_temp_files(tmp_path)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        # Promptly: not after the next file's coding (each takes 20 s here).
        assert time.monotonic() - started < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
    assert not arc.exists() and no_temp_files(tmp_path)


def test_failed_create_to_stdout_is_an_error_not_an_archive(tmp_path, tree):
    """Refusing to write binary to a terminal is covered by the code; here: a bad codec name with '-'."""
    run = run_lmar_j1("create", "--codec", "nosuch", "-", "tree", cwd=tmp_path)
    assert run.rc == 2 and run.out == b"" and "nosuch" in run.err
    assert_clean(run)


def test_codec_failing_midway_through_a_large_file_leaves_nothing(tmp_path, tree, monkeypatch):
    """A large file is coded block by block after its header is written; if a block then fails the archive
    cannot be completed, so the whole create fails cleanly and removes its temp file."""
    import lmar
    import lmar.pipeline
    from lmar.errors import LmarError
    from lmar.registry import get_registry

    from conftest import fast_options

    class FailsLater(Codec):
        name = "failslater"
        block_size = 64 << 10
        calls = 0

        def compress(self, data):
            FailsLater.calls += 1
            if FailsLater.calls > 2:
                raise RuntimeError("disk on fire")
            return bytes(data)

        def decompress(self, payload, size):
            return payload

    monkeypatch.setattr(lmar.pipeline, "WHOLE_LIMIT", 100 << 10)
    reg = get_registry()
    reg.register(FailsLater, "tests")
    try:
        big = tmp_path / "big.bin"
        big.write_bytes(random.Random(2).randbytes(500 << 10))
        arc = tmp_path / "x.lmar"
        with pytest.raises(LmarError, match="big.bin.*disk on fire"):
            options = fast_options(codec="failslater")
            options.grouping.solid_limit = 64 << 10  # big.bin is a large file, coded block by block
            with lmar.open(arc, "w", options=options) as w:
                w.add([str(tree / "text.txt"), str(big)])
        assert not arc.exists() and no_temp_files(tmp_path)
    finally:
        reg.codecs.pop("failslater", None)
        reg.providers.pop("failslater", None)


def test_destination_and_disk_problems_are_one_line_errors(capsys, tmp_path, tree):
    """Not 'internal error': an existing file as -C, an uncreatable destination, a full disk on stdout."""
    (tmp_path / "afile").write_bytes(b"")
    arc = tmp_path / "x.lmar"
    assert lmar_main(["create", "-q", "-j", "1", "--codec", "store", str(arc), str(tree / "text.txt")]) == 0
    for dest in (tmp_path / "afile", tmp_path / "afile" / "below"):
        rc, out, err = main_in(capsys, "extract", arc, "-C", dest)
        assert rc == 2 and err.startswith("lmar: ") and str(dest) in err and err.count("\n") == 1
    if os.path.exists("/dev/full"):
        with open("/dev/full", "wb") as full:
            proc = subprocess.run([sys.executable, "-m", "lmar.cli", "create", "-q", "-j", "1", "--codec", "store",
                                   "-", str(tree)], stdout=full, stderr=subprocess.PIPE, timeout=120)
        err = proc.stderr.decode()
        assert proc.returncode == 2 and "No space left" in err and "internal error" not in err, err


def test_reading_an_archive_from_a_terminal_is_refused(capsys, monkeypatch):
    """`lmar list -` with a terminal on stdin would wait silently for input: refused, as tar does."""
    class Tty:
        buffer = None

        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty())
    for command in ("list", "test", "extract"):
        rc, out, err = main_in(capsys, command, "-")
        assert rc == 2 and err == "lmar: refusing to read an archive from a terminal (pipe one in, or name the file)\n"


def test_list_patterns_files_from_and_strip_components(capsys, tmp_path, tree, monkeypatch):
    """tar's everyday options: `list ARCHIVE MEMBER...` lists only those (an unmatched pattern is named,
    exit 1); `create -T FILE` (`--null` for find -print0) adds the paths a file lists; `extract
    --strip-components N` drops leading name components, hard link targets too, and skips what has none left."""
    monkeypatch.chdir(tmp_path)
    os.link(tree / "text.txt", tree / "hard.txt")
    (tmp_path / "names").write_bytes(b"tree/sub/notes.md\0tree/hard.txt\0tree/text.txt\0")
    rc, out, err = main_in(capsys, "create", "-q", "-j", "1", "--level", "fast", "--null", "-T", "names", "n.lmar")
    assert rc == 0, err
    assert main_in(capsys, "list", "n.lmar")[1].split() == ["tree/sub/notes.md", "tree/hard.txt", "tree/text.txt"]
    (tmp_path / "lines").write_text("tree/empty\n\ntree/runs.dat\n")
    rc, out, err = main_in(capsys, "create", "-q", "-j", "1", "--level", "fast", "-T", "lines", "l.lmar", "tree/link")
    assert rc == 0 and main_in(capsys, "list", "l.lmar")[1].split() == ["tree/empty", "tree/runs.dat", "tree/link"]
    rc, out, err = main_in(capsys, "create", "-q", "x.lmar")
    assert rc == 2 and "no paths to archive" in err

    assert main_in(capsys, "create", "-q", "-j", "1", "--level", "fast", "t.lmar", "tree")[0] == 0
    rc, out, err = main_in(capsys, "list", "t.lmar", "tree/sub", "*.dat", "tree/nosuch")
    assert rc == 1 and err == "lmar: tree/nosuch: not found in archive\n"
    assert sorted(out.split()) == ["tree/runs.dat", "tree/sub/", "tree/sub/deeper/", "tree/sub/deeper/skip.log",
                                   "tree/sub/notes.md"]

    rc, out, err = main_in(capsys, "extract", "--strip-components", "1", "n.lmar", "-C", "s1")
    assert rc == 0, err
    assert sorted(str(p.relative_to(tmp_path / "s1")) for p in (tmp_path / "s1").rglob("*")) == [
        "hard.txt", "sub", "sub/notes.md", "text.txt"]
    assert (tmp_path / "s1" / "hard.txt").read_bytes() == TEXT
    rc, out, err = main_in(capsys, "extract", "--strip-components", "2", "n.lmar", "-C", "s2")
    assert rc == 0 and [p.name for p in (tmp_path / "s2").iterdir()] == ["notes.md"]
    with pytest.raises(SystemExit) as usage:
        lmar_main(["extract", "--strip-components", "-1", "n.lmar"])
    assert usage.value.code == 2 and "must be 0 or more" in capsys.readouterr().err


def test_compare_says_what_differs_from_the_disk(capsys, tmp_path, tree, monkeypatch):
    """`lmar compare` (alias `diff`, tar's --diff): every member checked against the path it would extract
    to; each difference is named on one line, with a summary and exit 1; nothing is written."""
    monkeypatch.chdir(tmp_path)
    os.link(tree / "runs.dat", tree / "hard.dat")
    assert main_in(capsys, "create", "-q", "-j", "1", "--level", "fast", "t.lmar", "tree")[0] == 0
    rc, out, err = main_in(capsys, "compare", "t.lmar")
    assert rc == 0 and err == "12 of 12 members match the disk\n"

    same_time = os.stat(tree / "text.txt").st_mtime_ns
    (tree / "text.txt").write_bytes(TEXT.replace(b"quick", b"QUICK"))  # same size, other bytes, same time
    os.utime(tree / "text.txt", ns=(same_time, same_time))
    (tree / "sub" / "notes.md").write_bytes(b"longer " * 100)
    os.chmod(tree / "random.bin", 0o600)
    os.unlink(tree / "empty")
    os.unlink(tree / "link")
    os.symlink("runs.dat", tree / "link")
    os.unlink(tree / "hard.dat")
    (tree / "hard.dat").write_bytes(RUNS)
    (tree / "new.txt").write_text("not in the archive: not reported, as tar does")
    before = sorted(p.name for p in tree.rglob("*"))
    rc, out, err = main_in(capsys, "diff", "t.lmar", "-C", ".")
    assert rc == 1
    lines = err.splitlines()
    assert lines[-1] == "5 of 12 members match the disk, 7 differ"
    assert set(lines[:-1]) == {
        "lmar: tree/text.txt: contents differ",
        "lmar: tree/sub/notes.md: mod time differs; size differs (archive: 400, disk: 700)",
        "lmar: tree/random.bin: mode differs (archive: 644, disk: 600)",
        "lmar: tree/empty: missing on disk",
        "lmar: tree/link: symlink differs (archive: text.txt, disk: runs.dat)",
        "lmar: tree/hard.dat: mod time differs",  # hard.dat was walked first: the file, runs.dat its link
        "lmar: tree/runs.dat: not linked to tree/hard.dat"}
    assert sorted(p.name for p in tree.rglob("*")) == before
    rc, out, err = main_in(capsys, "compare", "-v", "t.lmar", "tree/runs.dat", "tree/text.txt", "tree/nosuch")
    assert rc == 1 and out == "" and "tree/nosuch: not found in archive" in err
    rc, out, err = main_in(capsys, "compare", "-v", "t.lmar", "tree/sub/deeper")
    assert rc == 0 and out.split() == ["same", "tree/sub/deeper", "same", "tree/sub/deeper/skip.log"]


def test_compare_names_a_kind_change_and_what_is_missing_beneath_it(capsys, tmp_path, tree, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main_in(capsys, "create", "-q", "-j", "1", "--level", "fast", "t.lmar", "tree/sub")[0] == 0
    import shutil

    shutil.rmtree(tree / "sub" / "deeper")
    (tree / "sub" / "deeper").write_text("now a file")
    rc, out, err = main_in(capsys, "compare", "t.lmar")
    assert rc == 1 and err.splitlines() == ["lmar: tree/sub/deeper: is not a directory on disk",
                                            "lmar: tree/sub/deeper/skip.log: missing on disk",
                                            "2 of 4 members match the disk, 2 differ"]
