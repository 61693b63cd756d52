"""The executor interface without Ray: blocks decoded ahead by a local pool give what one process gives.

``extract -j N`` and ``test -j N`` decode blocks on workers (lmar.prefetch) while this process still
checks and writes every member in order, so the output, the report and every message must be those of
``-j 1``, damage included.
"""
from __future__ import annotations

import os

import pytest

import lmar
from lmar import prefetch
from lmar.archive import CreateOptions, GroupingOptions
from lmar.errors import LmarError
from lmar.executors import InlineExecutor, open_executor
from lmar.local_pool import LocalPool
from lmar.selection import SelectOptions

from conftest import classical_codecs


def _archive(tmp_path) -> str:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}.txt").write_bytes(b"some words to code %d " % i * (3000 + 500 * i))
    (src / "dup.txt").write_bytes((src / "f2.txt").read_bytes())
    path = str(tmp_path / "a.lmar")
    opts = CreateOptions(select=SelectOptions(candidates=classical_codecs()), jobs=1,
                         grouping=GroupingOptions(solid_limit=4 << 10))
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        with lmar.open(path, "w", options=opts) as w:
            w.add(["src"])
    finally:
        os.chdir(here)
    return path


def _served(monkeypatch) -> list[int]:
    served: list[int] = []
    close = prefetch.BlockPrefetcher.close
    monkeypatch.setattr(prefetch.BlockPrefetcher, "close", lambda self: (served.append(self.served), close(self))[1])
    return served


def test_open_executor_kinds():
    assert isinstance(open_executor("local", 1), InlineExecutor)
    pool = open_executor("local", 2)
    try:
        assert isinstance(pool, LocalPool) and pool.workers == 2 and pool.reads_paths
    finally:
        pool.shutdown()
    with pytest.raises(LmarError, match="unknown executor"):
        open_executor("spark", 2)


def test_extract_with_a_local_pool_matches_one_process(tmp_path, monkeypatch):
    path = _archive(tmp_path)
    served = _served(monkeypatch)
    with lmar.open(path) as r:
        assert r.extractall(str(tmp_path / "one")).ok
    with lmar.open(path) as r:
        assert r.extractall(str(tmp_path / "two"), jobs=2).ok
    assert len(served) == 1 and served[0] >= 3
    for name in os.listdir(tmp_path / "src"):
        one = (tmp_path / "one" / "src" / name).read_bytes()
        assert one == (tmp_path / "two" / "src" / name).read_bytes() == (tmp_path / "src" / name).read_bytes()


def test_damage_reads_the_same_with_a_pool(tmp_path):
    path = _archive(tmp_path)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x40  # inside some block's stored bytes or a table: either way, reported
    open(path, "wb").write(bytes(data))
    reports = []
    for jobs in (1, 2):
        with lmar.open(path) as r:
            rep = r.test(jobs=jobs)
        reports.append((rep.visited, rep.failures))
    assert reports[0] == reports[1] and reports[0][1], reports


class _CountingExecutor:
    """Runs each task when its result is asked for, and records the most tasks ever outstanding."""

    reads_paths = True

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.outstanding = 0
        self.most = 0

    def submit(self, fn, *args):
        from concurrent.futures import Future

        executor = self

        class Lazy(Future):
            def result(self, timeout=None):
                if not self.done():
                    executor.outstanding -= 1
                    self.set_result(fn(*args))
                return super().result()

        self.outstanding += 1
        self.most = max(self.most, self.outstanding)
        return Lazy()

    def shutdown(self, wait=True, cancel_futures=False):
        pass


@pytest.mark.parametrize("cap, most", [(1 << 30, 8), (1, 1)])
def test_in_flight_window_is_bounded_by_tasks_and_bytes(tmp_path, monkeypatch, cap, most):
    """Create and extract keep at most 2 x workers tasks, and at most IN_FLIGHT_BYTES of their bytes (one task
    always goes), so a driver feeding many workers holds bounded memory."""
    from lmar import executors, writer

    monkeypatch.setattr(executors, "IN_FLIGHT_BYTES", cap)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"f{i:02d}.txt").write_bytes(b"line %d of a file\n" % i * 400)
    ex = _CountingExecutor(4)
    monkeypatch.setattr(writer, "open_executor", lambda *a, **k: ex)
    opts = CreateOptions(select=SelectOptions(candidates=["zlib"]), jobs=4, grouping=GroupingOptions(solid=False))
    path = str(tmp_path / "a.lmar")
    monkeypatch.chdir(tmp_path)
    with lmar.open(path, "w", options=opts) as w:
        assert not [r for r in w.add(["src"]) if r.error]
    assert ex.most == most
    dec = _CountingExecutor(4)
    monkeypatch.setattr(prefetch, "open_executor", lambda *a, **k: dec)
    with lmar.open(path) as r:
        assert r.extractall(str(tmp_path / "out"), jobs=4).ok
    assert dec.most == most + 1  # ...besides the block the reader is taking
    assert (tmp_path / "out" / "src" / "f11.txt").read_bytes() == (src / "f11.txt").read_bytes()


@pytest.mark.parametrize("grouping, jobs_asked, jobs_used", [
    (GroupingOptions(), 4, 1),  # every file small, one solid group: coded in this process
    (GroupingOptions(solid_limit=1 << 10), 4, 4),  # the 1.2 KB files are large files: a pool
    (GroupingOptions(solid_size=2 << 10), 4, 4),  # more than one solid group: a pool
    (GroupingOptions(solid=False), 4, 4),
])
def test_one_solid_group_is_coded_in_this_process(tmp_path, monkeypatch, grouping, jobs_asked, jobs_used):
    """A tree that makes a single solid group is one task: create runs it here rather than paying for a
    process pool's start-up; the archive is the same either way."""
    from lmar import writer

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}.txt").write_bytes(b"line %d\n" % i * 200)
    asked: list[int] = []
    monkeypatch.setattr(writer, "open_executor", lambda kind, jobs, address: (asked.append(jobs), InlineExecutor())[1])
    monkeypatch.chdir(tmp_path)
    opts = CreateOptions(select=SelectOptions(candidates=["zlib"]), jobs=jobs_asked, grouping=grouping)
    with lmar.open(str(tmp_path / "a.lmar"), "w", options=opts) as w:
        assert not [r for r in w.add(["src"]) if r.error]
    assert asked == [jobs_used]


def _lm_archive(tmp_path, monkeypatch, files: int) -> str:
    src = tmp_path / "lmsrc"
    src.mkdir()
    for i in range(files):
        (src / f"f{i}.txt").write_bytes(b"a few words for the model, file %d. " % i * 6)
    monkeypatch.chdir(tmp_path)
    opts = CreateOptions(select=SelectOptions(codec="lm"), jobs=1, grouping=GroupingOptions(solid=False))
    with lmar.open("lm.lmar", "w", options=opts) as w:
        w.add(["lmsrc"])
    return str(tmp_path / "lm.lmar")


@pytest.mark.parametrize("files, pooled", [(1, False), (2, True)])
def test_extract_uses_workers_by_default_for_two_lm_groups(tmp_path, monkeypatch, files, pooled):
    """Without -j, extraction decodes on every core when two or more groups are coded by a slow codec
    (a language model), and in this process otherwise."""
    pytest.importorskip("onnxruntime")
    path = _lm_archive(tmp_path, monkeypatch, files)
    assert prefetch.slow_groups(path) == files
    served = _served(monkeypatch)
    with lmar.open(path) as r:
        assert r.extractall(str(tmp_path / "out")).ok
    assert (len(served) == 1 and served[0] == files) if pooled else served == []
    assert (tmp_path / "out" / "lmsrc" / "f0.txt").read_bytes() == (tmp_path / "lmsrc" / "f0.txt").read_bytes()


def test_groups_slow_to_decode_by_declared_speed_earn_workers(tmp_path, monkeypatch):
    """A classical codec's group counts as slow to decode when its raw bytes at the codec's declared decoding
    speed take at least WORKER_WORTH_S (four 4 MiB PPMd groups take ~0.5 s each); zlib's small groups do not."""
    src = tmp_path / "zsrc"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}.txt").write_bytes(b"%d some words to deflate " % i * 200)
    monkeypatch.chdir(tmp_path)
    opts = CreateOptions(select=SelectOptions(codec="zlib"), jobs=1, grouping=GroupingOptions(solid=False))
    with lmar.open("z.lmar", "w", options=opts) as w:
        w.add(["zsrc"])
    path = str(tmp_path / "z.lmar")
    assert prefetch.slow_groups(path) == 0
    monkeypatch.setattr(prefetch, "WORKER_WORTH_S", 4000 / 300e6)  # zlib declares 300 MB/s; each file ~5 KB
    assert prefetch.slow_groups(path) == 3
    assert prefetch.slow_groups(path, stop_at=2) == 2
