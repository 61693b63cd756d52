"""Turns the paths given to ``create`` into an ordered list of members (the file-system side of create).

Order is deterministic (sorted directory listings) so the same tree always gives the same archive.
"""
from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import Iterable, Iterator

from .members import DIR, FILE, HARDLINK, SYMLINK, MemberInfo


@dataclass
class Source:
    """A member to write and where its bytes come from (``fs_path`` is None for non-files)."""

    info: MemberInfo
    fs_path: str


@dataclass
class Skipped:
    """A path that could not be archived, with a one-line reason for the user."""

    path: str
    reason: str
    is_error: bool = True


def arcname_for(path: str) -> str:
    """Store paths as given, like tar, minus what would make them unsafe: leading '/', '.' and '..'."""
    name = posixpath.normpath(path.replace(os.sep, "/"))
    parts = [p for p in name.split("/") if p not in ("", ".", "..")]
    return "/".join(parts)


def _excluded(arcname: str, patterns: Iterable[str]) -> bool:
    base = posixpath.basename(arcname)
    return any(fnmatch.fnmatchcase(arcname, p) or fnmatch.fnmatchcase(base, p) for p in patterns)


def _is_utf8(name: str) -> bool:
    """False for names holding undecodable bytes (os.fsdecode turns them into lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def collect(paths: Iterable[str], excludes: Iterable[str] = (), skip_real: Iterable[str] = ()) -> Iterator[Source | Skipped]:
    """Yield members for ``paths`` (relative to the current directory) in archive order."""
    excludes = list(excludes)
    skip: set[tuple[int, int]] = set()
    for p in skip_real:  # the archive being written: recognised by inode, not by resolving every path
        try:
            st = os.stat(p)
            skip.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    seen_inodes: dict[tuple[int, int], str] = {}
    seen_names: set[str] = set()

    def visit(fs_path: str, arcname: str) -> Iterator[Source | Skipped]:
        if excludes and arcname and _excluded(arcname, excludes):
            return
        if not _is_utf8(arcname):  # headers store UTF-8 text; such a name would abort the whole archive
            yield Skipped(fs_path, "name is not valid UTF-8; not archived")
            return
        try:
            st = os.lstat(fs_path)
        except OSError as exc:
            yield Skipped(fs_path, f"cannot stat: {exc.strerror or exc}")
            return
        if (st.st_dev, st.st_ino) in skip and stat.S_ISREG(st.st_mode):
            yield Skipped(fs_path, "is the archive being written; skipped", is_error=False)
            return
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            if arcname and arcname not in seen_names:
                seen_names.add(arcname)
                yield Source(MemberInfo(arcname, DIR, mode, st.st_mtime_ns), fs_path)
            try:
                names = sorted(os.listdir(fs_path))
            except OSError as exc:
                yield Skipped(fs_path, f"cannot list directory: {exc.strerror or exc}")
                return
            for name in names:
                yield from visit(os.path.join(fs_path, name), posixpath.join(arcname, name) if arcname else name)
            return
        if not arcname or arcname in seen_names:
            return
        seen_names.add(arcname)
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(fs_path)
            except OSError as exc:
                yield Skipped(fs_path, f"cannot read link: {exc.strerror or exc}")
                return
            if not _is_utf8(target):
                yield Skipped(fs_path, "link target is not valid UTF-8; not archived")
                return
            yield Source(MemberInfo(arcname, SYMLINK, mode, st.st_mtime_ns, link=target), fs_path)
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in seen_inodes:
                yield Source(MemberInfo(arcname, HARDLINK, mode, st.st_mtime_ns, link=seen_inodes[key]), fs_path)
                return
            if not os.access(fs_path, os.R_OK):
                yield Skipped(fs_path, "cannot read: permission denied")
                return
            if st.st_nlink > 1:  # only once it will be archived: later names become links to it
                seen_inodes[key] = arcname
            yield Source(MemberInfo(arcname, FILE, mode, st.st_mtime_ns, size=st.st_size), fs_path)
        else:
            yield Skipped(fs_path, "is a device, FIFO or socket; skipped", is_error=False)

    for path in paths:
        yield from visit(path, arcname_for(path))
