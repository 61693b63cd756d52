"""Running a benchmark: every contender on every file, as the archiver cuts it and in fixed chunks.

Why its own module: the order of work (modalities interleaved), reuse of an earlier report's figures and
the run's time limit are policy; :mod:`.measure` only times one coder on some bytes.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from ..walk import matches_any
from .contenders import Contender
from .inputs import BenchFile
from .measure import DECLINED, ERROR, OK, SKIPPED, TIMEOUT, Coder, Measurement, measure, sample, split


@dataclass(frozen=True)
class FileResult:
    """A contender on a file: as the archiver would code it (``whole``) and in fixed chunks (``chunked``).

    ``reused`` marks figures taken from an earlier report (see :class:`Reuse`) instead of measured now.
    """

    path: str
    modality: str
    raw_bytes: int
    codec: str
    whole: Measurement
    chunked: Measurement | None = None
    sha256: str = ""
    reused: bool = False


#: Statuses worth keeping from an earlier run; errors and timeouts are measured again.
REUSABLE_STATUSES = frozenset({OK, DECLINED})


@dataclass(frozen=True)
class Reuse:
    """Measurements from an earlier report that still hold: same bytes (sha256), same codec, same settings.

    Why: LM codecs code tens of kB/s, so adding one codec to a published benchmark should not mean
    measuring every other codec again. The report says which figures were reused and from when.
    """

    source: str
    created_utc: str
    table: Mapping[tuple[str, str], tuple[Measurement, Measurement | None]]

    def lookup(self, sha256: str, codec: str) -> tuple[Measurement, Measurement | None] | None:
        return self.table.get((sha256, codec))


@dataclass(frozen=True)
class Settings:
    """How a run measures; recorded in every report so figures can be compared (and reused) safely."""

    paths: tuple[str, ...]
    repeat: int = 3
    chunk_size: int | None = 2048
    command: str = ""
    #: At most this many chunks per file, evenly spread (None: all).
    chunk_sample: int | None = None
    #: Seconds allowed to one measurement (None: no limit).
    timeout: float | None = None
    #: Contenders measured on whole files only.
    whole_only: tuple[str, ...] = ()
    #: Seconds after which no new measurement starts (None: no limit).
    max_time: float | None = None
    #: (codec, glob): the codec is measured only on files matching one of its globs (``--only``).
    only: tuple[tuple[str, str], ...] = ()

    def measures(self, codec: str, f: BenchFile) -> bool:
        """Whether ``codec`` is to be measured on ``f`` under ``only``."""
        globs = [g for c, g in self.only if c == codec]
        return not globs or matches_any(f.name, globs)


def interleave(files: Sequence[BenchFile]) -> list[BenchFile]:
    """Files in measuring order: round robin over modalities, each modality in path order.

    Why: a run cut short (``--max-time``, Ctrl-C) then still covers every modality instead of only the
    first folders of the alphabet. Reports list files in path order whatever the measuring order.
    """
    by_modality: dict[str, list[BenchFile]] = {}
    for f in files:
        by_modality.setdefault(f.modality, []).append(f)
    queues = list(by_modality.values())
    return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]


def iter_results(
    files: Sequence[BenchFile],
    contenders: Sequence[Contender],
    settings: Settings,
    on_start: Callable[[BenchFile, Contender], None] | None = None,
    read: Callable[[str], bytes] = lambda p: Path(p).read_bytes(),
    reuse: Reuse | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[FileResult]:
    """Measure each contender on each file (in :func:`interleave` order), yielding as it goes so an
    interrupted run keeps its results.

    ``whole`` cuts the file at the codec's ``block_size`` (what the archiver does); ``chunked`` cuts it
    into ``chunk_size`` pieces, the setting of Deletang et al. (2023), keeps at most ``chunk_sample`` of
    them, and is measured once (its sizes are the point; repeating thousands of tiny calls would multiply
    the run time for little). Pairs found in ``reuse`` (with the same chunked setting) are not measured
    again; once ``max_time`` has passed, the remaining pairs are reported as not measured.
    """
    st = settings
    deadline = None if st.max_time is None else clock() + st.max_time
    coders: dict[str, Coder | Exception] = {}
    for f in interleave(files):
        try:
            data = read(f.path)
        except OSError as exc:
            failed = Measurement(ERROR, f"cannot read: {exc.strerror or exc}")
            for c in contenders:
                yield FileResult(f.path, f.modality, f.raw_bytes, c.name, failed, failed if st.chunk_size else None)
            continue
        chunks = sample(split(data, st.chunk_size), st.chunk_sample) if st.chunk_size else None
        digest = hashlib.sha256(data).hexdigest()
        for c in contenders:
            wants_chunks = chunks is not None and c.name not in st.whole_only
            earlier = reuse.lookup(digest, c.name) if reuse is not None else None
            if earlier is not None and (earlier[1] is not None) == wants_chunks:
                yield FileResult(f.path, f.modality, len(data), c.name, *earlier, sha256=digest, reused=True)
                continue
            if not st.measures(c.name, f):
                why = f"not measured: --only {c.name}=" + ",".join(g for n, g in st.only if n == c.name)
                out = Measurement(SKIPPED, why, raw_bytes=len(data))
                yield FileResult(f.path, f.modality, len(data), c.name, out, out if wants_chunks else None, digest)
                continue
            if deadline is not None and clock() > deadline:
                late = Measurement(TIMEOUT, f"not measured: the run's --max-time of {st.max_time:g} s had passed",
                                   raw_bytes=len(data))
                yield FileResult(f.path, f.modality, len(data), c.name, late, late if wants_chunks else None, digest)
                continue
            if on_start is not None:
                on_start(f, c)
            if c.name not in coders:
                try:
                    coders[c.name] = c.factory()
                except Exception as exc:
                    coders[c.name] = exc
            coder = coders[c.name]
            if isinstance(coder, Exception):
                failed = Measurement(ERROR, f"cannot create codec: {type(coder).__name__}: {coder}")
                yield FileResult(f.path, f.modality, len(data), c.name, failed, failed if wants_chunks else None,
                                 digest)
                continue
            whole = measure(coder, split(data, c.block_size), st.repeat, st.timeout)
            chunked = measure(coder, chunks, 1, st.timeout) if wants_chunks and chunks is not None else None
            yield FileResult(f.path, f.modality, len(data), c.name, whole, chunked, digest)


# -- figures ----------------------------------------------------------------------------------------------
