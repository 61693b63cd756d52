"""``lmar compare``: what differs between an archive and the files on disk (tar's ``--diff``).

Why: ``test`` proves an archive is intact; a backup's owner also wants to know whether the tree still
matches it, or what changed since. Each member is decoded (so its checksums are verified on the way) and
checked against the path it would extract to: kind, content, size, mode, modification time, link target.
A difference is the member's failure, worded as tar words it; nothing on disk is touched. Modes are
compared as extraction sets them (group/other write and setuid bits dropped) and owners not at all, so a
tree extracted by ``lmar extract`` as any user matches its archive.
"""
from __future__ import annotations

import os
import stat
from typing import Iterator

from .errors import LmarError
from .extract import SAFE_MODE_MASK, safe_relpath
from .members import DIR, FILE, HARDLINK, SYMLINK, MemberInfo

_CHUNK = 1 << 20


def differences(info: MemberInfo, root: str, content: Iterator[bytes] | None) -> list[str]:
    """What differs between ``info`` and its path under ``root`` ("" list: nothing). ``content`` yields a
    file member's bytes (checked against the archive's checksums as they come)."""
    path = _on_disk(root, info.path)
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # (a parent that is now a file: missing too)
        return ["missing on disk"]
    kinds = {FILE: (stat.S_ISREG, "regular file"), DIR: (stat.S_ISDIR, "directory"),
             SYMLINK: (stat.S_ISLNK, "symbolic link"), HARDLINK: (stat.S_ISREG, "regular file")}
    is_kind, word = kinds.get(info.type, (None, info.type))
    if is_kind is None or not is_kind(st.st_mode):
        return [f"is not a {word} on disk"]
    if info.type == SYMLINK:
        disk = os.readlink(path)
        return [] if disk == info.link else [f"symlink differs (archive: {info.link}, disk: {disk})"]
    if info.type == HARDLINK:
        try:
            same = os.path.samefile(path, _on_disk(root, info.link))
        except OSError:
            same = False
        return [] if same else [f"not linked to {info.link}"]
    found: list[str] = []
    if (st.st_mode & SAFE_MODE_MASK) != (info.mode & SAFE_MODE_MASK):
        found.append(f"mode differs (archive: {info.mode & 0o777:o}, disk: {st.st_mode & 0o777:o})")
    if info.type == FILE:
        if st.st_mtime_ns != info.mtime_ns:
            found.append("mod time differs")
        if st.st_size != info.size:
            found.append(f"size differs (archive: {info.size}, disk: {st.st_size})")
        elif content is not None and not _same_bytes(path, content):
            found.append("contents differ")
    return found


def _on_disk(root: str, name: str) -> str:
    """Where member ``name`` extracts to under ``root`` (unsafe names refused, as extraction refuses them)."""
    return os.path.join(root, *safe_relpath(name).split("/"))


def _same_bytes(path: str, content: Iterator[bytes]) -> bool:
    """Whether the file holds exactly ``content`` (read in step; the archive side is read to its end, so
    its checksums are always checked)."""
    same = True
    with open(path, "rb") as f:
        for chunk in content:
            view = memoryview(chunk)
            while same and len(view):
                disk = f.read(min(len(view), _CHUNK))
                if not disk or disk != view[:len(disk)]:
                    same = False
                view = view[len(disk):] if disk else view[:0]
        if same and f.read(1):
            same = False
    return same


def check_member(info: MemberInfo, root: str, read: "Iterator[bytes] | None") -> None:
    """Raise the member's differences as one :class:`LmarError` (tar's wording: ``path: Contents differ``)."""
    found = differences(info, root, read)
    if found:
        raise LmarError(f"{info.path}: {'; '.join(found)}")
