"""Shared fixtures for lmar's core tests.

Two ways in: the Python API in-process (fast, used for most checks) and the real command in a subprocess
(``run_lmar``), which is how users meet error messages and exit codes. Third-party plugins are switched
off by default (``LMAR_LOAD_PLUGINS=""``) so whatever else is installed cannot change results; the
``example_plugin`` fixture switches the test plugin in ``tests/plugin_example`` back on.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Iterable

import pytest

import lmar
from lmar.archive import CreateOptions
from craft import MemberWriter as ContainerWriter
from lmar.registry import get_registry, reset_registry
from lmar.selection import SelectOptions

#: Entry point name and distribution of the example plugin in tests/plugin_example.
EXAMPLE_PLUGIN = "example"
EXAMPLE_DIST = "lmar-example-codec"
#: Every subprocess gets this long; a hang is a failure, not a stuck test run.
SUBPROCESS_TIMEOUT = 120


@dataclass
class Run:
    """What one ``lmar`` invocation did. Unpacks as ``rc, out, err`` (stdout bytes, stderr text)."""

    rc: int
    out: bytes
    err: str

    def __iter__(self):
        return iter((self.rc, self.out, self.err))

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace")


def assert_clean(run: Run) -> None:
    """No traceback and no 'internal error' (the CLI's last line of defence means a bug was hit)."""
    assert "Traceback" not in run.err, run.err
    assert "internal error" not in run.err, run.err


def assert_flipped_payload_fails_cleanly(codec: Any, payload: bytes, size: int,
                                         flips: Iterable[tuple[int, int]]) -> None:
    """Flipped bits give CodecError or exactly ``size`` bytes (the archive checksum catches those), nothing else."""
    from lmar.errors import CodecError

    bad = bytearray(payload)
    for at, bit in flips:
        bad[at] ^= 1 << bit
    try:
        out = codec.decompress(bytes(bad), size)
    except CodecError:
        return
    assert isinstance(out, bytes) and len(out) == size


def run_lmar(*args: str, cwd: str | os.PathLike | None = None, input: bytes | None = None,
             env: dict[str, str] | None = None, timeout: float = SUBPROCESS_TIMEOUT) -> Run:
    """Run ``python -m lmar.cli ARGS`` and return its exit code, stdout (bytes) and stderr (text)."""
    full_env = dict(os.environ)
    full_env.pop("LMAR_DEBUG", None)
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable, "-m", "lmar.cli", *map(str, args)], cwd=cwd, input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, timeout=timeout,
                          stdin=None if input is not None else subprocess.DEVNULL)
    return Run(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


def run_lmar_j1(*args: str, **kwargs: Any) -> Run:
    """``run_lmar`` with ``-j 1 -q`` added to ``create`` (no worker processes where parallelism is not the point)."""
    args = tuple(map(str, args))
    if args and args[0] == "create" and not any(a in ("-j", "--jobs") or a.startswith("-j") for a in args[1:]):
        args = ("create", "-j", "1", "-q", *args[1:])
    return run_lmar(*args, **kwargs)


# Load only lmar's own codecs unless a test asks for a plugin. Set at import, before collection, so
# codec lists used to parametrize tests match the registry the tests then run against.
os.environ["LMAR_LOAD_PLUGINS"] = ""
reset_registry()


def example_plugin_installed() -> bool:
    try:
        metadata.distribution(EXAMPLE_DIST)
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture
def example_plugin(monkeypatch):
    """Enable the example plugin (in this process and in subprocesses); skip if it is not installed."""
    if not example_plugin_installed():
        pytest.skip(f"{EXAMPLE_DIST} is not installed (pip install -e tests/plugin_example)")
    monkeypatch.setenv("LMAR_LOAD_PLUGINS", EXAMPLE_PLUGIN)
    reset_registry()
    yield get_registry()
    monkeypatch.undo()
    reset_registry()


@pytest.fixture(name="lmar_cli")
def _lmar_cli():
    """The CLI runner with ``-j 1`` for create."""
    return run_lmar_j1


def classical_codecs() -> list[str]:
    """Names of the registry's classical codecs that can run here."""
    reg = get_registry()
    return sorted(n for n, c in reg.codecs.items() if c.kind == "classical" and c.availability()[0])


def fast_options(**select: Any) -> CreateOptions:
    """Create options for in-process tests: one process, classical codecs only (no LM, no time budget)."""
    select.setdefault("candidates", None if select.get("codec", "auto") != "auto" else classical_codecs())
    return CreateOptions(select=SelectOptions(**select), jobs=1)


def archive_bytes(files: dict[str, bytes], **select: Any) -> bytes:
    """An in-memory archive of ``files`` (name -> content) written through the API."""
    buf = io.BytesIO()
    writer = lmar.open(buf, "w", options=fast_options(**select))
    for name, data in files.items():
        writer.addbytes(name, data)
    writer.close()
    return buf.getvalue()


def read_all(data_or_path: bytes | str | os.PathLike) -> dict[str, bytes]:
    """Every file member's content, through the API."""
    src = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    with lmar.open(src) as reader:
        return {info.path: b"".join(read()) for info, read in reader.iter_members() if info.isfile()}


def craft_archive(path: str | os.PathLike, members: Iterable[tuple[dict[str, Any], bytes | None]],
                  close: bool = True) -> None:
    """Write an archive straight through the format layer, bypassing every check the archiver makes.

    Each member is ``(header, data)``; file data is stored with the ``store`` codec (and correct checksums)
    unless the header already names a codec. This is how hostile archives are made.
    """
    import xxhash

    with open(path, "wb") as f:
        w = ContainerWriter(f)
        for header, data in members:
            header = dict(header)
            header.setdefault("mode", 0o644)
            header.setdefault("mtime_ns", 0)
            if data is not None:
                header.setdefault("size", len(data))
                header.setdefault("codec", {"name": "store", "version": 1, "params": {}, "provider": "lmar"})
            w.begin_member(header)
            if data:
                w.write_block(len(data), data, xxhash.xxh3_64_intdigest(data))
            w.end_member(len(data or b""), xxhash.xxh3_128_digest(data or b""))
        if close:
            w.close()


def file_member(path: str, data: bytes = b"data\n", **extra: Any) -> tuple[dict[str, Any], bytes]:
    return {"path": path, "type": "file", **extra}, data


def link_member(path: str, target: str, kind: str = "symlink", **extra: Any) -> tuple[dict[str, Any], None]:
    return {"path": path, "type": kind, "link": target, **extra}, None


def dir_member(path: str, **extra: Any) -> tuple[dict[str, Any], None]:
    return {"path": path, "type": "dir", "mode": 0o755, **extra}, None


def tree_snapshot(root: str | os.PathLike) -> dict[str, tuple]:
    """A comparable picture of a tree: type, content/link target, permission bits, mtime (ns) per path."""
    import stat

    out: dict[str, tuple] = {}
    root = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
            else:
                with open(full, "rb") as f:
                    out[rel] = ("file", f.read(), stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    return out
