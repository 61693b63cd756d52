"""Measure codecs on files: sizes, rates and speeds, every figure backed by a verified round trip.

Why a layer of its own: the archiver keeps only the winning codec per block, while a benchmark must run
*every* contender on the same bytes and keep failures as results, so a comparison never silently loses a
codec. Contenders are the registry's codecs (never imported directly) plus the classical command-line
compressors found on ``PATH``, which anchor the figures to tools readers already know.

Everything here is measurement: inputs in, dataclasses out. Rendering (terminal, Markdown, JSON, plots)
lives in :mod:`lmar.bench_report`, the command line in :mod:`lmar.bench_cli`.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator, Mapping, Protocol, Sequence

from . import __version__
from .errors import CodecError, LmarError
from .registry import Registry

#: Bump when a field of the JSON report changes meaning or disappears (adding fields keeps the version).
SCHEMA_VERSION = 1
#: Codec kinds that only understand one kind of data; their refusals are expected, not failures.
DOMAIN_KINDS = frozenset({"image", "audio"})
#: Name of the summary group that covers every file.
ALL_GROUP = "all"
#: Order of kinds in reports: the classical references first, then the contenders they are measured against.
_KIND_ORDER = {"classical": 0, "lm": 1, "image": 2, "audio": 3}

OK, DECLINED, ERROR, MISMATCH, TIMEOUT = "ok", "declined", "error", "mismatch", "timeout"
#: Not measured on purpose (``--only``): neither the codec's refusal nor a failure.
SKIPPED = "skipped"


class Coder(Protocol):
    """What a measurement needs: the codec contract's coding half (``lmar.codec.Codec`` satisfies it)."""

    def accepts(self, data: bytes) -> bool: ...

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, payload: bytes, size: int) -> bytes: ...


# -- contenders -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    """One codec to measure. ``factory`` builds the coder once, lazily (LM codecs load a model)."""

    name: str
    kind: str
    source: str  # "registry" or "external"
    description: str
    version: int | None
    #: Size of the model a decoder must own; counted by the adjusted rate (Deletang et al. 2023).
    model_bytes: int | None
    #: Independent blocks the archiver would cut a file into for this codec (None: one stream per file).
    block_size: int | None
    factory: Callable[[], Coder] = field(repr=False, compare=False)
    #: The codec's ``info()`` facts (model id, checksum...), JSON-safe; part of its identity for ``--reuse``.
    info: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """Something that was not measured (codec unavailable, tool missing, file unreadable) and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class ExternalTool:
    """A command-line compressor used as a baseline, driven through stdin/stdout.

    ``-T1`` keeps xz and zstd single-threaded so their speed compares with the in-process codecs;
    ``size_hint`` passes the input size to zstd, which otherwise sizes its window for an unbounded stream
    (at ``--ultra -22`` that costs most of a second per call) and codes differently from ``zstd FILE``.
    """

    name: str
    program: str
    level_args: tuple[str, ...]
    decompress_args: tuple[str, ...] = ("-d", "-c")
    size_hint: bool = False

    @property
    def label(self) -> str:
        return " ".join((self.program, *self.level_args))


EXTERNAL_TOOLS: tuple[ExternalTool, ...] = (
    ExternalTool("ext:xz", "xz", ("-9e", "-T1")),
    ExternalTool("ext:zstd", "zstd", ("--ultra", "-22", "-T1"), ("-d", "-c", "-q"), size_hint=True),
    ExternalTool("ext:brotli", "brotli", ("-q", "11")),
    ExternalTool("ext:bzip2", "bzip2", ("-9",)),
    ExternalTool("ext:gzip", "gzip", ("-9", "-n")),
)


class ExternalCoder:
    """Runs an :class:`ExternalTool` once per call; process start-up is part of its measured time."""

    def __init__(self, tool: ExternalTool, executable: str) -> None:
        self.tool = tool
        self.executable = executable

    def accepts(self, data: bytes) -> bool:
        return True

    def compress(self, data: bytes) -> bytes:
        argv = [self.executable, *self.tool.level_args, "-c"]
        if self.tool.size_hint:
            argv.append(f"--stream-size={len(data)}")
        return self._run(argv, data)

    def decompress(self, payload: bytes, size: int) -> bytes:
        return self._run([self.executable, *self.tool.decompress_args], payload)

    def _run(self, argv: list[str], data: bytes) -> bytes:
        proc = subprocess.run(argv, input=data, capture_output=True, check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise CodecError(f"{self.tool.program} exited with {proc.returncode}: {err[-1] if err else 'no message'}")
        return proc.stdout


def _model_bytes(info: dict) -> int | None:
    value = info.get("model_bytes")
    return int(value) if isinstance(value, (int, float)) and value >= 0 else None


def discover_contenders(
    registry: Registry,
    selected: Sequence[str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    external: Sequence[ExternalTool] = EXTERNAL_TOOLS,
) -> tuple[list[Contender], list[Skipped]]:
    """Every codec that can run here (or the ``selected`` ones), plus what could not and why.

    Raises :class:`LmarError` for a selected name that is neither a registry codec nor an external tool,
    so a typo fails before a long run instead of quietly measuring less.
    """
    wanted = list(dict.fromkeys(selected)) if selected else None
    known = set(registry.codecs) | {t.name for t in external}
    unknown = [n for n in wanted or () if n not in known]
    if unknown:
        raise LmarError(
            f"unknown codec(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}")

    contenders: list[Contender] = []
    skipped: list[Skipped] = [
        Skipped(f"plugin {f.plugin}", f"failed to load: {f.error}") for f in registry.failures]
    for name, cls in registry.codecs.items():
        if wanted is not None and name not in wanted:
            continue
        ok, why = cls.availability()
        if not ok:
            skipped.append(Skipped(name, f"unavailable: {why}"))
            continue
        try:
            info = json.loads(json.dumps(cls.info(), default=str))
        except Exception as exc:  # a codec's metadata bug must not hide its measurements
            info = {}
            skipped.append(Skipped(f"{name} (info)", f"info() raised {type(exc).__name__}: {exc}"))
        contenders.append(Contender(
            name=name, kind=cls.kind, source="registry", description=cls.description, version=cls.version,
            model_bytes=_model_bytes(info), block_size=cls.block_size if cls.block_size > 0 else None,
            factory=lambda _n=name: registry.create(_n), info=info))
    contenders.sort(key=lambda c: (_KIND_ORDER.get(c.kind, len(_KIND_ORDER)), c.name))

    for tool in external:
        if wanted is not None and tool.name not in wanted:
            continue
        exe = which(tool.program)
        if exe is None:
            skipped.append(Skipped(tool.name, f"'{tool.program}' not found on PATH"))
            continue
        contenders.append(Contender(
            name=tool.name, kind="external", source="external", description=f"{tool.label} (command line)",
            version=None, model_bytes=None, block_size=None,
            factory=lambda _t=tool, _e=exe: ExternalCoder(_t, _e)))
    return contenders, skipped


# -- inputs -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchFile:
    """A file to measure. ``modality`` is its top-level folder under the path it was found through.

    ``name`` is the path relative to that given path (short, for tables); ``path`` is where to read it.
    """

    path: str
    name: str
    modality: str
    raw_bytes: int


def _matches(rel: Path, patterns: Sequence[str]) -> bool:
    """Whether ``rel`` (a path relative to the directory given) or its file name matches a glob."""
    return any(fnmatch.fnmatchcase(rel.as_posix(), p) or fnmatch.fnmatchcase(rel.name, p) for p in patterns)


def collect_files(paths: Sequence[str], excludes: Sequence[str] = ()) -> tuple[list[BenchFile], list[Skipped]]:
    """Files under ``paths`` in a stable order (sorted walk), each once; raises for a missing path.

    A file's modality is its top-level folder under the directory given; a file with no such folder
    (given directly, or at the top of the directory) takes the name of the folder it lies in, so
    ``lmar bench corpus/text`` still reports a ``text`` modality. ``excludes`` are globs matched against
    the path relative to the directory given and against the file name.
    """
    files: list[BenchFile] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise LmarError(f"{given}: no such file or directory")
        if root.is_dir():
            candidates = []
            for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: skipped.append(
                    Skipped(str(e.filename), f"cannot list: {e.strerror}"))):
                dirnames.sort()
                candidates.extend(Path(dirpath) / f for f in sorted(filenames))
            base = root.resolve().name
        else:
            candidates = [root]
            base = root.resolve().parent.name
        for path in candidates:
            rel = path.relative_to(root) if root.is_dir() else Path(path.name)
            if _matches(rel, excludes):
                continue
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            if not path.is_file():
                skipped.append(Skipped(str(path), "not a regular file"))
                continue
            if not os.access(path, os.R_OK):
                skipped.append(Skipped(str(path), "not readable"))
                continue
            modality = rel.parts[0] if len(rel.parts) > 1 else (base or "/")
            files.append(BenchFile(str(path), rel.as_posix(), modality, path.stat().st_size))
    return files, skipped


# -- measuring --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One codec on one file, cut into ``pieces`` coded independently (sizes summed, times summed).

    ``raw_bytes`` is what was coded: the whole file, or the sampled chunks when chunks are sampled.
    """

    status: str  # ok | declined | error | mismatch | timeout
    reason: str = ""
    compressed_bytes: int | None = None
    #: Median over repeats of the total time for all pieces.
    compress_s: float | None = None
    decompress_s: float | None = None
    pieces: int = 0
    raw_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.status == OK


def split(data: bytes, size: int | None) -> list[bytes]:
    """Cut ``data`` into independent pieces of ``size`` bytes (the last may be shorter); at least one."""
    if not size or len(data) <= size:
        return [data]
    return [data[i:i + size] for i in range(0, len(data), size)]


def sample(pieces: list[bytes], limit: int | None) -> list[bytes]:
    """At most ``limit`` pieces, evenly spread from first to last, so every codec sees the same sample.

    Why: a codec that models one 2 kB chunk per call (no batching) may code only a few kB/s; sampling
    keeps the paper's chunked setting measurable on a whole corpus at the cost of an estimate.
    """
    if limit is None or len(pieces) <= limit:
        return pieces
    if limit == 1:
        return [pieces[len(pieces) // 2]]
    return [pieces[round(i * (len(pieces) - 1) / (limit - 1))] for i in range(limit)]


def _mismatch(expected: bytes, got: bytes) -> str:
    n = min(len(expected), len(got))
    first = next((i for i in range(n) if expected[i] != got[i]), n)
    return f"round trip differs: {len(got)} bytes back for {len(expected)}, first difference at byte {first}"


class _Timeout(Exception):
    pass


@contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`_Timeout` in this thread after ``seconds`` (SIGALRM; a no-op where that is unavailable).

    A Python-level codec (numpy loops, one model call per byte) is interrupted between calls; a single
    long C call finishes first. Subprocesses are killed by ``subprocess.run`` when the exception arrives.
    """
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def measure(coder: Coder, pieces: Sequence[bytes], repeat: int = 1, timeout: float | None = None) -> Measurement:
    """Compress and decompress every piece ``repeat`` times, checking each round trip byte for byte.

    A refusal, an exception, a mismatch or running past ``timeout`` seconds becomes the measurement's
    status with its reason: the benchmark reports failures, it never drops them. ``KeyboardInterrupt``
    passes through.
    """
    n, raw = len(pieces), sum(len(p) for p in pieces)
    try:
        with _deadline(timeout):
            return _measure(coder, pieces, repeat)
    except _Timeout:
        return Measurement(TIMEOUT, f"stopped after {timeout:g} s (--timeout)", pieces=n, raw_bytes=raw)
    except Exception as exc:  # any codec bug is a result to report, not a crash of the benchmark
        return Measurement(ERROR, f"{type(exc).__name__}: {exc}", pieces=n, raw_bytes=raw)


def _measure(coder: Coder, pieces: Sequence[bytes], repeat: int) -> Measurement:
    n, raw = len(pieces), sum(len(p) for p in pieces)
    for i, piece in enumerate(pieces):
        if not coder.accepts(piece):
            where = f" (piece {i + 1} of {n})" if n > 1 else ""
            return Measurement(DECLINED, f"accepts() returned False{where}", pieces=n, raw_bytes=raw)
    comp_times: list[float] = []
    decomp_times: list[float] = []
    size: int | None = None
    for _ in range(max(1, repeat)):
        total_size = 0
        t_comp = t_decomp = 0.0
        for piece in pieces:
            t0 = time.perf_counter()
            payload = coder.compress(piece)
            t1 = time.perf_counter()
            back = bytes(coder.decompress(payload, len(piece)))
            t2 = time.perf_counter()
            if back != piece:
                return Measurement(MISMATCH, _mismatch(piece, back), pieces=n, raw_bytes=raw)
            total_size += len(payload)
            t_comp += t1 - t0
            t_decomp += t2 - t1
        if size is not None and total_size != size:
            return Measurement(ERROR, f"compressed size changed between repeats ({size} then {total_size})",
                               pieces=n, raw_bytes=raw)
        size = total_size
        comp_times.append(t_comp)
        decomp_times.append(t_decomp)
    return Measurement(OK, "", size, statistics.median(comp_times), statistics.median(decomp_times), n, raw)


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
        return not globs or _matches(Path(f.name), globs)


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


def rate_pct(compressed: int | None, raw: int) -> float | None:
    """Compression rate as the paper writes it: compressed / raw, in percent (lower is better)."""
    return None if compressed is None or raw <= 0 else 100.0 * compressed / raw


def bits_per_byte(compressed: int | None, raw: int) -> float | None:
    return None if compressed is None or raw <= 0 else 8.0 * compressed / raw


def adjusted_rate_pct(compressed: int | None, model_bytes: int | None, raw: int) -> float | None:
    """(compressed + model) / raw: a model-based codec must ship its model to the decoder (Deletang et al.)."""
    return None if compressed is None or model_bytes is None or raw <= 0 else 100.0 * (compressed + model_bytes) / raw


def throughput(raw: int, seconds: float | None) -> float | None:
    """Raw bytes per second; ``None`` when nothing was timed."""
    return None if seconds is None or seconds <= 0 else raw / seconds


@dataclass(frozen=True)
class Totals:
    """One contender over a group of files. Rates cover only the bytes it coded (``files_ok`` files)."""

    files_ok: int = 0
    files_declined: int = 0
    files_failed: int = 0
    raw_bytes: int = 0
    compressed_bytes: int = 0
    compress_s: float = 0.0
    decompress_s: float = 0.0
    files_skipped: int = 0

    @property
    def files_total(self) -> int:
        return self.files_ok + self.files_declined + self.files_failed + self.files_skipped

    @property
    def complete(self) -> bool:
        """Coded every file of the group, so its rate compares with other complete contenders."""
        return self.files_ok == self.files_total and self.files_ok > 0

    def add(self, m: Measurement) -> Totals:
        if m.ok:
            return replace(self, files_ok=self.files_ok + 1, raw_bytes=self.raw_bytes + m.raw_bytes,
                           compressed_bytes=self.compressed_bytes + (m.compressed_bytes or 0),
                           compress_s=self.compress_s + (m.compress_s or 0.0),
                           decompress_s=self.decompress_s + (m.decompress_s or 0.0))
        if m.status == DECLINED:
            return replace(self, files_declined=self.files_declined + 1)
        if m.status == SKIPPED:
            return replace(self, files_skipped=self.files_skipped + 1)
        return replace(self, files_failed=self.files_failed + 1)


@dataclass(frozen=True)
class GroupSummary:
    """A contender's totals over one group of files (a modality, or every file)."""

    group: str
    codec: str
    whole: Totals
    chunked: Totals | None


def summarize(results: Sequence[FileResult], contenders: Sequence[Contender]) -> list[GroupSummary]:
    """Totals per (group, contender): first the ``all`` group, then each modality in order of appearance."""
    groups = [ALL_GROUP, *dict.fromkeys(r.modality for r in results)]
    chunked_on = any(r.chunked is not None for r in results)
    table: dict[tuple[str, str], tuple[Totals, Totals | None]] = {
        (g, c.name): (Totals(), Totals() if chunked_on else None) for g in groups for c in contenders}
    for r in results:
        for g in (ALL_GROUP, r.modality):
            whole, chunked = table[(g, r.codec)]
            whole = whole.add(r.whole)
            if chunked is not None and r.chunked is not None:
                chunked = chunked.add(r.chunked)
            table[(g, r.codec)] = (whole, chunked)
    return [GroupSummary(g, c.name, *table[(g, c.name)]) for g in groups for c in contenders]


def best_codec(candidates: Mapping[str, float]) -> str | None:
    """The contender with the lowest figure (bytes or rate; ties: the first listed)."""
    return min(candidates, key=candidates.__getitem__) if candidates else None


# -- the run as a whole -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """Where the figures were measured; speeds mean little without it."""

    cpu_model: str
    cpu_cores: int
    gpu: str | None
    platform: str
    python: str


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _gpu() -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
    return ", ".join(names) or None


def describe_machine() -> Machine:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return Machine(_cpu_model(), cores, _gpu(), platform.platform(), platform.python_version())


@dataclass(frozen=True)
class BenchRun:
    """Everything a report needs. ``complete`` is False when the run was interrupted."""

    settings: Settings
    machine: Machine
    contenders: tuple[Contender, ...]
    skipped: tuple[Skipped, ...]
    files: tuple[BenchFile, ...]
    results: tuple[FileResult, ...]
    complete: bool = True
    reuse: Reuse | None = None
    created_utc: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    lmar_version: str = __version__

    @cached_property
    def groups(self) -> dict[str, dict[str, GroupSummary]]:
        """Totals by group (``all`` first, then modalities), then by contender; computed once per run."""
        out: dict[str, dict[str, GroupSummary]] = {}
        for s in summarize(self.results, self.contenders):
            out.setdefault(s.group, {})[s.codec] = s
        return out


def command_line() -> str:
    """The command as typed (best effort), for the report's provenance."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("bench_cli.py", "__main__.py")):
        argv[0] = "python -m lmar.bench_cli"
    elif argv:
        argv[0] = os.path.basename(argv[0])
    return " ".join(argv)
