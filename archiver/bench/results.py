"""What a run produced, summed up: rates, totals per group of files, the machine, the run as a whole.

Everything here is plain data computed from :class:`~lmar.bench.run.FileResult` values; rendering lives in
:mod:`.tables` and :mod:`.outputs`.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cached_property
from typing import Mapping, Sequence

from .. import __version__
from ..walk import Skipped
from .contenders import Contender
from .inputs import BenchFile
from .measure import DECLINED, SKIPPED, Measurement
from .run import FileResult, Reuse, Settings

#: Bump when a field of the JSON report changes meaning or disappears (adding fields keeps the version).
SCHEMA_VERSION = 1
#: Name of the summary group that covers every file.
ALL_GROUP = "all"


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
    if argv and argv[0].endswith(("bench/cli.py", "__main__.py")):
        argv[0] = "python -m lmar.bench"
    elif argv:
        argv[0] = os.path.basename(argv[0])
    return " ".join(argv)
