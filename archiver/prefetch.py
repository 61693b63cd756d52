"""Parallel decoding for extract and test: blocks decoded ahead by an executor's workers.

The reader still walks the archive in order and does everything that touches the destination or a
checksum (so extraction keeps every safety rule and every message). What moves to workers is only
``codec.decompress(stored, raw_len)``: a second handle on the archive reads ahead through the index,
ships each block's stored bytes with its codec descriptor to a worker (bytes, never the archive's path),
and keeps a bounded window of blocks in flight. When the reader reaches a block, it takes the worker's
answer instead of decoding; a block the read-ahead does not hold (a duplicate served from earlier, a
damaged group) is decoded in this process as before, so the result never depends on the executor.
"""
from __future__ import annotations

import contextlib
import os
from collections import deque
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from lmar.formats.container import Block, GroupEnd, open_container

from .errors import CodecError, FormatError
from .executors import default_jobs, open_executor, window_has_room
from .registry import get_registry

if TYPE_CHECKING:
    from .archive import ArchiveReader

#: Codecs a worker built, by descriptor: an LM codec's model stays loaded across the blocks it decodes.
_WORKER_CODECS: dict[str, Any] = {}


def decode_task(desc: dict[str, Any], stored: bytes, raw_len: int) -> bytes:
    """Worker entry point: one block's stored bytes decoded by the codec its descriptor names."""
    key = repr((desc.get("name"), desc.get("version"), desc.get("provider"), desc.get("params")))
    codec = _WORKER_CODECS.get(key)
    if codec is None:
        codec = get_registry().create(desc["name"], desc.get("params") or {}, desc.get("provider") or "",
                                      desc.get("version"))
        _WORKER_CODECS[key] = codec
    return codec.decompress(stored, raw_len)


class _Decoded:
    """Stands in for a member's codec for one block whose decoding a worker already did (or is doing)."""

    def __init__(self, codec: Any, fut: Future) -> None:
        self._codec, self._fut = codec, fut

    def __getattr__(self, name: str) -> Any:  # name, mismatch_hint, ...: the real codec's
        return getattr(self._codec, name)

    def decompress(self, stored: bytes, raw_len: int) -> bytes:
        try:
            return self._fut.result()
        except CodecError:
            raise  # the codec refused the payload: the reader reports it against the member
        except Exception:
            return self._codec.decompress(stored, raw_len)  # the worker was lost for good: decode here


def _held(block: Block) -> int:
    return len(block.stored) + block.raw_len


class BlockPrefetcher:
    """Reads blocks ahead in archive order and keeps a bounded window of them (:func:`lmar.executors.window_has_room`) decoding on ``executor``."""

    def __init__(self, path: str, executor: Any, wanted: Callable[[str], bool] | None = None) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._executor = executor
        self._workers = executor.workers
        self._in_flight = 0  # bytes held by the blocks ahead: stored, and raw once decoded
        self._wanted = wanted
        self._ahead: deque[tuple[tuple[int, int], Block, Future]] = deque()
        self._source = self._blocks()
        #: Blocks whose decoding came from a worker (tests check the work really moved).
        self.served = 0

    def _blocks(self) -> Iterator[tuple[int, int, dict[str, Any], Block]]:
        c = open_container(self._f, self._f.name)
        for g, table in _wanted_tables(c, self._wanted):
            desc = c.descriptors[table.codec]
            try:
                for k, rec in enumerate(c.iter_blocks(f"group {g}")):
                    if isinstance(rec, GroupEnd):
                        break
                    if rec.intact:
                        yield g, k, desc, rec
            except FormatError:
                continue  # the reader meets the same damage and reports it

    def _fill(self) -> None:
        while window_has_room(len(self._ahead), self._in_flight, self._workers):
            item = next(self._source, None)
            if item is None:
                return
            g, k, desc, block = item
            self._ahead.append(((g, k), block, self._executor.submit(decode_task, desc, block.stored, block.raw_len)))
            self._in_flight += _held(block)

    def _take(self) -> tuple[tuple[int, int], Block, Future]:
        item = self._ahead.popleft()
        self._in_flight -= _held(item[1])
        return item

    def codec_for_block(self, group: int, k: int, block: Block, codec: Any) -> Any:
        """``codec``, or a stand-in answering with the worker's decoding of block ``k`` of ``group``."""
        self._fill()
        while self._ahead and self._ahead[0][0] < (group, k):
            self._take()[2].cancel()  # skipped by the reader (not wanted, or served otherwise)
        if self._ahead and self._ahead[0][0] == (group, k):
            _, ahead, fut = self._take()
            self._fill()
            if ahead.raw_len == block.raw_len and ahead.raw_xxh64 == block.raw_xxh64 and ahead.stored == block.stored:
                self.served += 1
                return _Decoded(codec, fut)
        return codec

    def close(self) -> None:
        for _, _, fut in self._ahead:
            fut.cancel()
        self._ahead.clear()
        self._in_flight = 0
        self._f.close()


def _wanted_tables(c: Any, wanted: Callable[[str], bool] | None,
                   codec_ok: Callable[[dict[str, Any]], bool] | None = None) -> Iterator[tuple[int, Any]]:
    """(group number, member table) of each group of the indexed container ``c`` that has a codec (one
    ``codec_ok`` accepts, when given) and a wanted member, in archive order. No table is read when no
    descriptor passes ``codec_ok``; a table that cannot be read is skipped (the reader meets the same
    damage and reports it)."""
    index = c.read_index()
    if index is None:
        return
    c.load_descriptors(index)
    ids = {k for k, desc in c.descriptors.items() if codec_ok is None or codec_ok(desc)}
    if not ids:
        return
    first = index.first_members()
    for g, (offset, _) in enumerate(index.tables):
        try:
            c.seek_table(offset, g, first[g])
            table = c.next_group()
        except FormatError:
            continue
        if table is None or table.codec not in ids:
            continue
        if wanted is None or any(wanted(m.path) for m in table.members):
            yield g, table


#: A group earns a decoding worker when it takes at least this long to decode at its codec's declared speed:
#: starting a pool of two costs ~0.4 s on 2 cores. (20,000 small files at --level fast: four PPMd groups of
#: 4 MiB, ~0.5 s each to decode, were decoded in the extracting process one after another.)
WORKER_WORTH_S = 0.25


def slow_groups(path: str, wanted: Callable[[str], bool] | None = None, stop_at: int | None = None) -> int:
    """How many groups holding a wanted member are slow to decode: coded by a codec that declares itself
    ``slow`` (a language model), or whose raw bytes at the codec's declared decoding speed take at least
    :data:`WORKER_WORTH_S` (counting stops at ``stop_at``); 0 for an archive without an index or one that
    cannot be read."""
    codecs = get_registry().codecs

    def known(desc: dict[str, Any]) -> bool:
        return str(desc.get("name")) in codecs

    count = 0
    try:
        with open(path, "rb") as f:
            c = open_container(f, path)
            for _, table in _wanted_tables(c, wanted, known):
                cls = codecs[str(c.descriptors[table.codec].get("name"))]
                raw = sum(m.size for m in table.members if m.ref is None)
                if not cls.slow and raw < WORKER_WORTH_S * (cls.decode_speed or cls.speed):
                    continue
                count += 1
                if stop_at is not None and count >= stop_at:
                    break
    except (OSError, FormatError, LookupError, TypeError, ValueError):
        pass  # the reader meets the same damage and reports it
    return count


@contextlib.contextmanager
def parallel_decoding(reader: "ArchiveReader", members: Sequence[str] | None, jobs: int | None,
                      executor: str, ray_address: str | None) -> Iterator[None]:
    """Attach a read-ahead decoder to ``reader`` for the length of one extract or test run.

    Runs as before (everything in this process) for ``-j 1`` on the local executor, and for archives the
    read-ahead cannot open a second time: a stream, or a format 1.0 archive. Locally, ``jobs=None`` means
    every core when the wanted members span at least two groups coded by a ``slow`` codec (a language
    model decodes at KB/s, so each such group is worth a worker's start-up), else one process."""
    from .bulk import MemberFilter

    impl = getattr(reader, "_impl", None)
    path = reader.name
    if impl is None or not hasattr(impl, "prefetch") or not reader.indexed or not os.path.isfile(path):
        yield
        return
    wanted = MemberFilter(members) if members else None
    if executor == "local" and jobs is None:
        jobs = default_jobs() if slow_groups(path, wanted, stop_at=2) >= 2 else 1
    if executor == "local" and (jobs or 1) <= 1:
        yield
        return
    pool = open_executor(executor, jobs or 0, ray_address)
    pre = None
    try:
        pre = BlockPrefetcher(path, pool, wanted)
        impl.prefetch = pre
        yield
    finally:
        impl.prefetch = None
        if pre is not None:
            pre.close()
        pool.shutdown(wait=True, cancel_futures=True)
