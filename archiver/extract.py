"""Writing members to the file system safely: the file-system side of extraction.

The rules follow Python's tarfile ``data`` filter: no absolute paths or '..', no links leading outside
the destination, only files/dirs/symlinks/hardlinks, no setuid/setgid/sticky or group/other write bits,
and never writing through a symlink already on disk. Nothing existing is replaced unless ``overwrite`` is
set: a new file is created exclusively (``O_EXCL``, which also refuses a symlink in its place) and removed
again if its content fails; with ``overwrite`` it is written to a temporary name and renamed over the old
one. Directories this run created or checked are remembered, so a tree of 20,000 small files does not
re-check every parent of every file (one exclusive create per file, as tar does).
"""
from __future__ import annotations

import os
import posixpath
import stat
import tempfile
from typing import IO, Callable, Iterator

from .errors import UnsafeMemberError, LmarError
from .members import DIR, FILE, HARDLINK, SYMLINK, MemberInfo

SAFE_MODE_MASK = 0o777 & ~(stat.S_IWGRP | stat.S_IWOTH)
#: A new file: created here or not at all (never through a symlink, never over anything).
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


#: Runs of zero bytes this long, aligned to it, are skipped instead of written, so the file gets holes.
HOLE = 64 << 10


def _write_sparse(f: IO[bytes], chunk: bytes) -> bool:
    """Write ``chunk`` at ``f``'s position, seeking over each aligned all-zero piece of :data:`HOLE` bytes.

    Why: a sparse file (a disk image, a database preallocated with zeros) codes to almost nothing, and
    written back block by block it would take its full size on disk; GNU tar needs ``--sparse`` for this,
    bsdtar and ``cp`` do it by default. Only whole aligned pieces become holes, so small runs of zeros in
    ordinary files cost nothing extra but the scan (C speed). True when the chunk ends in a hole."""
    if len(chunk) < HOLE:  # holds no whole piece: most files
        f.write(chunk)
        return False
    if not isinstance(chunk, (bytes, bytearray)):
        chunk = bytes(chunk)
    view = memoryview(chunk)
    written = 0  # bytes of the chunk written or skipped so far
    pos = -f.tell() % HOLE  # the first piece boundary, aligned in the file
    while pos + HOLE <= len(view):
        if not view[pos] and not view[pos + HOLE - 1] and chunk.count(0, pos, pos + HOLE) == HOLE:
            if written < pos:
                f.write(view[written:pos])
            f.seek(HOLE, os.SEEK_CUR)  # the file is at the piece's start: skip over it
            written = pos + HOLE
        pos += HOLE
    if written < len(view):
        f.write(view[written:])
        return False
    return written > 0  # the chunk ended in a hole: the file is shorter than the position until truncated


def _write_content(f: IO[bytes], path: str, chunks: Iterator[bytes], info: MemberInfo,
                   ids: tuple[int, int] | None = None) -> None:
    """Write a file's bytes to ``f`` (open at ``path``), leaving holes for long runs of zeros, then its
    owner (``ids``, when restored), mode and time, through the open file where the platform allows it."""
    ends_in_hole = False
    for chunk in chunks:
        if chunk:
            ends_in_hole = _write_sparse(f, chunk)
    if ends_in_hole:
        f.truncate()  # its size is the position reached (only then: ~15 us a file on 20,000 small files)
    f.flush()
    if ids is not None:  # before the mode: changing the owner may clear mode bits
        os.chown(f.fileno() if os.chown in os.supports_fd else path, *ids)
    mode = info.mode & SAFE_MODE_MASK
    times = (info.mtime_ns, info.mtime_ns)
    os.chmod(f.fileno() if os.chmod in os.supports_fd else path, mode)
    os.utime(f.fileno() if os.utime in os.supports_fd else path, ns=times)


def safe_relpath(path: str) -> str:
    """The member's path as a safe relative path, or :class:`UnsafeMemberError`."""
    if not path or "\x00" in path:
        raise UnsafeMemberError(f"{path!r}: empty or invalid member name")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":") or path.startswith("\\"):
        raise UnsafeMemberError(f"{path}: absolute path refused")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeMemberError(f"{path}: path with '..' refused")
    if not parts:
        raise UnsafeMemberError(f"{path!r}: empty member name")
    return "/".join(parts)


def _local_id(module: str, name: str, recorded: int) -> int:
    """The id of user (``module`` "pwd") or group ("grp") ``name`` on this machine, else the recorded id."""
    if name:
        try:
            if module == "pwd":
                import pwd

                return pwd.getpwnam(name).pw_uid
            import grp

            return grp.getgrnam(name).gr_gid
        except (ImportError, KeyError):
            pass
    return recorded


class _Exists(Exception):
    """A member left alone because its name exists (``skip_existing``): not a failure."""


class Extractor:
    """Materialises members under ``dest``; directory modes and times are applied at ``finish()``."""

    def __init__(self, dest: str, overwrite: bool = False, same_owner: bool = False, strip: int = 0,
                 skip_existing: bool = False) -> None:
        if same_owner and (not hasattr(os, "geteuid") or os.geteuid() != 0):
            raise LmarError("--same-owner needs root: only root can give files to other users")
        self.dest = os.path.abspath(dest)
        self.overwrite = overwrite
        #: Restore recorded owners (tar's --same-owner); off by default, as Python's tarfile data filter does.
        self.same_owner = same_owner
        #: Leading path components dropped from every member name (and hard link target), as tar's
        #: --strip-components; a member with no more components than that is skipped (:meth:`skips`).
        self.strip = strip
        #: Leave a member whose name already exists on disk as it is, silently (tar's --skip-old-files):
        #: how an interrupted extraction is resumed. :meth:`extract` then returns False.
        self.skip_existing = skip_existing and not overwrite
        self._dirs: list[tuple[str, MemberInfo]] = []
        try:
            os.makedirs(self.dest, exist_ok=True)
        except OSError as exc:
            raise LmarError(f"{dest}: cannot create the destination directory: {exc.strerror or exc}") from None
        self._real_dest = os.path.realpath(self.dest)
        #: Directories under ``dest`` known to be real directories (created or checked in this run): no
        #: member of this run can turn one into a link (a link or file over a directory is refused).
        self._known_dirs: set[str] = {self.dest}

    # -- checks ----------------------------------------------------------------------------------------
    def skips(self, info: MemberInfo) -> bool:
        """Whether ``info`` has nothing left of its name after stripping (``a/`` with ``strip=1``)."""
        return self.strip > 0 and len(safe_relpath(info.path).split("/")) <= self.strip

    def target_of(self, info: MemberInfo) -> str:
        parts = safe_relpath(info.path).split("/")[self.strip:]
        if not parts:
            raise UnsafeMemberError(f"{info.path}: nothing is left of the name after --strip-components "
                                    f"{self.strip}")
        return os.path.join(self.dest, *parts)

    def _check_parents(self, info: MemberInfo, target: str) -> None:
        """Refuse any existing symlink among the parents: writing through it could land anywhere."""
        if os.path.dirname(target) in self._known_dirs:
            return
        current = self.dest
        rel = os.path.relpath(os.path.dirname(target), self.dest)
        if rel == ".":
            return
        for part in rel.split(os.sep):
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                return
            if stat.S_ISLNK(st.st_mode):
                raise UnsafeMemberError(f"{info.path}: refusing to write through the symlink {current}")
            if not stat.S_ISDIR(st.st_mode):
                raise LmarError(f"{info.path}: {current} exists and is not a directory")

    def _check_link(self, info: MemberInfo) -> None:
        link = info.link
        if not link or "\x00" in link:
            raise UnsafeMemberError(f"{info.path}: empty link target")
        if info.type == SYMLINK:
            if link.startswith("/"):
                raise UnsafeMemberError(f"{info.path}: symlink to absolute path {link} refused")
            # Lexical normalisation treats 'name/..' as nothing, but the OS resolves 'name' first: if 'name'
            # is (or later becomes) a symlink such as 'l -> .', then 'l/..' is the destination's parent.
            parts = [p for p in link.split("/") if p not in ("", ".")]
            leading = 0
            while leading < len(parts) and parts[leading] == "..":
                leading += 1
            if ".." in parts[leading:]:
                raise UnsafeMemberError(f"{info.path}: symlink to {link} refused ('..' after a name could lead "
                                        "outside through another link)")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(safe_relpath(info.path)), link))
            real = os.path.realpath(os.path.join(os.path.dirname(self.target_of(info)), link))
            if real != self._real_dest and not real.startswith(self._real_dest + os.sep):
                raise UnsafeMemberError(f"{info.path}: link to {link} points outside the destination")
        else:
            resolved = posixpath.normpath(link)
        if resolved == ".." or resolved.startswith("../") or resolved.startswith("/"):
            raise UnsafeMemberError(f"{info.path}: link to {link} points outside the destination")

    def _check_existing(self, info: MemberInfo, target: str) -> None:
        if not os.path.lexists(target):
            return
        if info.type == DIR and os.path.isdir(target) and not os.path.islink(target):
            return
        if not self.overwrite:
            raise self._exists(info)
        if os.path.isdir(target) and not os.path.islink(target):
            raise LmarError(f"{info.path}: a directory is in the way; not replaced")

    # -- writing ---------------------------------------------------------------------------------------
    def extract(self, info: MemberInfo, chunks: Iterator[bytes] | None,
                link_content: Callable[[], bytes | None] | None = None) -> bool:
        """Create ``info`` on disk; ``chunks`` supplies a regular file's bytes (already verified). A hard
        link whose target is not on disk is written as a copy of ``link_content()`` when that gives its
        bytes (extracting one linked name alone), else refused. False when the member was left alone
        because its name exists (``skip_existing``)."""
        try:
            self._extract(info, chunks, link_content)
        except _Exists:
            return False
        return True

    def _extract(self, info: MemberInfo, chunks: Iterator[bytes] | None,
                 link_content: Callable[[], bytes | None] | None = None) -> None:
        if info.type not in (DIR, FILE, SYMLINK, HARDLINK):  # devices, FIFOs, unknown kinds: before any mkdir
            raise UnsafeMemberError(f"{info.path}: unsupported member type {info.type}; not extracted")
        target = self.target_of(info)
        self._check_parents(info, target)
        if info.type in (SYMLINK, HARDLINK):
            self._check_link(info)
        if info.type != FILE or self.overwrite:  # a new file is created exclusively instead
            self._check_existing(info, target)
        self._make_parents(target)
        if info.type == DIR:
            if os.path.islink(target):  # --overwrite: replace the link; never chmod/utime through it
                os.unlink(target)
            os.makedirs(target, exist_ok=True)
            self._known_dirs.add(target)
            self._dirs.append((target, info))
        elif info.type == FILE:
            self._write_file(info, target, chunks or iter(()))
        elif info.type == SYMLINK:
            self._place(target, lambda tmp: os.symlink(info.link, tmp))
            ids = self._ids(info)
            if ids is not None:
                os.lchown(target, *ids)
            self._set_times(target, info, follow=False)
        elif info.type == HARDLINK:
            source = self.target_of(MemberInfo(info.link, FILE))
            if not os.path.isfile(source) or os.path.islink(source):
                data = link_content() if link_content is not None else None
                if data is None:
                    raise UnsafeMemberError(f"{info.path}: hard link target {info.link} was not extracted")
                copy = MemberInfo(info.path, FILE, info.mode, info.mtime_ns, len(data), uid=info.uid,
                                  gid=info.gid, uname=info.uname, gname=info.gname)
                self._write_file(copy, target, iter([data]))
                return
            self._check_parents(info, source)
            self._place(target, lambda tmp: os.link(source, tmp))
        else:
            raise UnsafeMemberError(f"{info.path}: unsupported member type {info.type}")

    def _make_parents(self, target: str) -> None:
        """Create the parents of ``target`` (checked by :meth:`_check_parents`) and remember them."""
        parent = os.path.dirname(target)
        if parent in self._known_dirs:
            return
        os.makedirs(parent, exist_ok=True)
        while parent not in self._known_dirs and parent.startswith(self.dest + os.sep):
            self._known_dirs.add(parent)
            parent = os.path.dirname(parent)

    def _write_file(self, info: MemberInfo, target: str, chunks: Iterator[bytes]) -> None:
        if self.overwrite:
            self._replace_file(info, target, chunks)
            return
        try:
            fd = os.open(target, _NEW_FILE, 0o600)
        except FileExistsError:
            raise self._exists(info) from None
        try:
            with os.fdopen(fd, "wb") as f:
                _write_content(f, target, chunks, info, self._ids(info))
        except BaseException:
            os.unlink(target)  # created by us a moment ago: no partial or unverified file is left
            raise

    def _replace_file(self, info: MemberInfo, target: str, chunks: Iterator[bytes]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".lmar-", dir=os.path.dirname(target))
        try:
            with os.fdopen(fd, "wb") as f:
                _write_content(f, tmp, chunks, info, self._ids(info))
            os.replace(tmp, target)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise

    def _place(self, target: str, make: "callable") -> None:  # type: ignore[valid-type]
        tmp = os.path.join(os.path.dirname(target), f".lmar-{os.getpid()}-{os.urandom(4).hex()}")
        make(tmp)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise

    def _exists(self, info: MemberInfo) -> Exception:
        if self.skip_existing:
            return _Exists()
        return LmarError(f"{info.path}: already exists (use --overwrite to replace it, or --skip-existing)")

    def _ids(self, info: MemberInfo) -> tuple[int, int] | None:
        """The (uid, gid) to give ``info`` here: None unless restoring owners and the archive recorded one.
        Names win over numbers where this machine knows them (a user's id differs between machines), as
        tar does."""
        if not self.same_owner or info.owner is None:
            return None
        return _local_id("pwd", info.uname, info.uid or 0), _local_id("grp", info.gname, info.gid or 0)

    def _set_times(self, path: str, info: MemberInfo, follow: bool) -> None:
        try:
            os.utime(path, ns=(info.mtime_ns, info.mtime_ns), follow_symlinks=follow)
        except (NotImplementedError, OSError):
            pass

    def finish(self) -> None:
        """Directory modes and times last (children change a directory's mtime), deepest first."""
        for target, info in sorted(self._dirs, key=lambda d: d[0].count(os.sep), reverse=True):
            if os.path.islink(target) or not os.path.isdir(target):  # replaced since: do not follow it
                continue
            try:
                ids = self._ids(info)
                if ids is not None:
                    os.chown(target, *ids, follow_symlinks=False)
                os.chmod(target, (info.mode & SAFE_MODE_MASK) | stat.S_IRWXU)
            except OSError:
                pass
            self._set_times(target, info, follow=True)
        self._dirs.clear()
