"""Whole-archive operations: extract every (or every matching) member, or test them all.

These loops carry the rules the CLI promises, so a Python caller gets the same behaviour as ``lmar extract``
and ``lmar test``: members are visited once in archive order (a stream works as well as a file); a member
whose metadata is damaged, whose content fails its checksum or whose path is unsafe is reported by name and
the rest still go through; nothing on disk is replaced unless ``overwrite`` is set (:mod:`lmar.extract`).
Reporting is the caller's: each member's outcome goes to ``on_member``, so the CLI prints and the API
collects, and this module knows no screen.
"""
from __future__ import annotations

import contextlib
import fnmatch
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, Sequence

from .errors import LmarError
from .extract import Extractor
from .members import MemberInfo
from .prefetch import parallel_decoding

if TYPE_CHECKING:
    from .archive import ArchiveReader
    from .progress import Progress

#: Called after each visited member with ``(member, error)``; ``error`` is None when it went through.
OnMember = Callable[[MemberInfo, "str | None"], None]


@dataclass
class RunReport:
    """What a whole-archive operation did: members visited, failures by member, patterns that matched nothing."""

    visited: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.unmatched


class MemberFilter:
    """Selects members by exact path, directory prefix or glob, as tar does; remembers patterns never hit."""

    def __init__(self, patterns: Iterable[str] | None = None) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns or ())
        self._unmatched = set(self.patterns)

    def __call__(self, path: str) -> bool:
        if not self.patterns:
            return True
        hit = False
        for p in self.patterns:
            q = p.rstrip("/")
            if path == q or fnmatch.fnmatchcase(path, p) or path.startswith(q + "/"):
                self._unmatched.discard(p)
                hit = True
        return hit

    @property
    def unmatched(self) -> list[str]:
        return sorted(self._unmatched)


def _noop(info: MemberInfo, error: str | None) -> None:
    pass


def _total(reader: "ArchiveReader") -> int:
    return sum(m.size for m in reader.getmembers()) if reader.indexed else 0


def _visit(reader: "ArchiveReader", members: Sequence[str] | None, act: Callable[[MemberInfo, Any], None],
           on_member: OnMember | None, progress: "Progress | None", label: str, jobs: int | None,
           executor: str, ray_address: str | None) -> RunReport:
    """The one loop of extract and test: each matching member in archive order through ``act``; a member
    that fails (damage, checksum, unsafe path, disk error) is named in the report and the others go on."""
    wanted = MemberFilter(members)
    report = RunReport()
    on_member = on_member or _noop
    if progress is not None:
        progress.start(_total(reader) if getattr(progress, "shows_total", True) else 0, label)
    decoding = contextlib.ExitStack()
    try:
        decoding.enter_context(parallel_decoding(reader, members, jobs, executor, ray_address))
        for info, read in reader.iter_members():
            if not wanted(info.path):
                continue
            report.visited += 1
            problem = None
            try:
                if info.damage:
                    raise LmarError(info.damage)
                act(info, read)
            except LmarError as exc:
                problem = str(exc)
            except OSError as exc:
                problem = f"{info.path}: {exc.strerror or exc}"
            if problem is not None:
                if not problem.startswith(info.path + ":"):  # an archive-level error met inside this member
                    problem = f"{info.path}: {problem}"
                report.failures.append((info.path, problem))
            on_member(info, problem)
            if progress is not None:
                progress.advance(info.size, info.path)
    finally:
        decoding.close()
        if progress is not None:
            progress.stop()
    report.unmatched = wanted.unmatched
    return report


def extract_all(reader: "ArchiveReader", dest: str = ".", members: Sequence[str] | None = None,
                overwrite: bool = False, to_stream: IO[bytes] | None = None, same_owner: bool = False,
                strip: int = 0, skip_existing: bool = False,
                on_member: OnMember | None = None, progress: "Progress | None" = None, jobs: int | None = None,
                executor: str = "local", ray_address: str | None = None) -> RunReport:
    """Extract matching members under ``dest`` (or write regular files' bytes to ``to_stream``).

    ``jobs``/``executor``/``ray_address``: where blocks are decoded ahead (:mod:`lmar.prefetch`); members
    are still visited, checked and written here, in archive order."""
    extractor = None if to_stream is not None else Extractor(dest, overwrite, same_owner, strip, skip_existing)

    def act(info: MemberInfo, read: Any) -> None:
        if extractor is not None and extractor.skips(info):
            return  # its whole name was stripped (``--strip-components``): as tar, nothing to write
        if extractor is not None:
            extractor.extract(info, read() if info.isfile() else None,
                              (lambda: reader.read_aside(info.link)) if info.islnk() else None)
        elif info.isfile():
            for chunk in read():
                to_stream.write(chunk)  # type: ignore[union-attr]

    try:
        return _visit(reader, members, act, on_member, progress, "extracting", jobs, executor, ray_address)
    finally:
        if extractor is not None:
            extractor.finish()
        if to_stream is not None:
            to_stream.flush()


def check_all(reader: "ArchiveReader", members: Sequence[str] | None = None,
              on_member: OnMember | None = None, progress: "Progress | None" = None, jobs: int | None = None,
              executor: str = "local", ray_address: str | None = None) -> RunReport:
    """Decode matching members and verify every checksum, writing nothing (blocks decoded ahead as in
    :func:`extract_all`)."""

    def act(info: MemberInfo, read: Any) -> None:
        for _ in read():
            pass

    return _visit(reader, members, act, on_member, progress, "testing", jobs, executor, ray_address)


def compare_all(reader: "ArchiveReader", root: str = ".", members: Sequence[str] | None = None,
                on_member: OnMember | None = None, progress: "Progress | None" = None, jobs: int | None = None,
                executor: str = "local", ray_address: str | None = None) -> RunReport:
    """Compare matching members with the files under ``root`` (:mod:`lmar.compare`); each member that
    differs is a failure naming what differs. Nothing is written."""
    from .compare import check_member

    def act(info: MemberInfo, read: Any) -> None:
        check_member(info, root, read() if info.isfile() else None)

    return _visit(reader, members, act, on_member, progress, "comparing", jobs, executor, ray_address)
