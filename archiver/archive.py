"""The Python API, in the spirit of :mod:`tarfile`: open an archive, add paths, iterate and extract members.

This layer joins the format (``lmar.formats``), the codecs (through ``lmar.registry`` only) and the file
system (``walk`` for reading trees, ``extract`` for writing them). The CLI is a thin layer over it.
Writing is in :mod:`lmar.writer` (format 2); reading picks the back end the archive's preamble names:
:mod:`lmar.reader` for format 2, :mod:`lmar.legacy_reader` for format 1.0.
"""
from __future__ import annotations

import io
import os
import sys
import tempfile
from typing import IO, Any, BinaryIO, Callable, Iterable, Iterator, Sequence

from lmar.formats.container import open_container

from .bulk import MemberFilter, OnMember, RunReport, check_all, compare_all, extract_all
from .errors import LmarError
from .grouping import GroupingOptions  # noqa: F401 - part of the API (CreateOptions.grouping)
from .members import MemberInfo
from .progress import Progress
from .registry import Registry, get_registry, machine_binding
from .writer import ArchiveWriter, CreateOptions, MemberResult

__all__ = ["ArchiveReader", "ArchiveWriter", "CreateOptions", "GroupingOptions", "MemberFilter", "MemberResult",
           "machine_bound",
           "RunReport", "open_archive"]


class ArchiveReader:
    """Reads members from a seekable file (through the index) or a stream (scanning in order)."""

    def __init__(self, fileobj: BinaryIO, name: str = "archive", registry: Registry | None = None) -> None:
        self._f = fileobj
        self.name = name
        self._registry = registry
        container = open_container(fileobj, name)
        self.version: tuple[int, int] = container.version
        if self.version[0] == 1:
            from .legacy_reader import LegacyArchiveReader

            self._impl: Any = LegacyArchiveReader(container, name, self._get_registry)
        else:
            from .reader import ArchiveReaderV2

            self._impl = ArchiveReaderV2(container, name, self._get_registry)

    def _get_registry(self) -> Registry:
        if self._registry is None:
            self._registry = get_registry()
        return self._registry

    @property
    def registry(self) -> Registry:
        return self._get_registry()

    @property
    def indexed(self) -> bool:
        return bool(self._impl.indexed)

    @property
    def index_problem(self) -> str | None:
        """Why the index could not be used (a damaged footer or index), or None; reading then scans."""
        return self._impl.index_problem

    def __enter__(self) -> "ArchiveReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def getmembers(self) -> list[MemberInfo]:
        """All members; from the index when there is one, else by scanning (which consumes a stream)."""
        return self._impl.getmembers()

    def __iter__(self) -> Iterator[MemberInfo]:
        return iter(self.getmembers())

    def iter_members(self) -> Iterator[tuple[MemberInfo, Callable[[], Iterator[bytes]]]]:
        """Yield ``(member, read)`` in archive order; call ``read()`` before advancing to get its bytes.

        A member whose metadata is damaged comes with ``damage`` set; its ``read()`` raises."""
        return self._impl.iter_members()

    def read(self, member: MemberInfo | str) -> bytes:
        """The whole content of one member (verified). In a solid group this decodes the blocks it lies in."""
        info = self.getmember(member) if isinstance(member, str) else member
        return b"".join(self._impl.read_member(info))

    def read_aside(self, name: str) -> bytes | None:
        """The content of the file member ``name`` while :meth:`iter_members` is under way (extraction
        uses it for a hard link whose target was not extracted); None when the archive cannot seek
        (a stream, a damaged index, format 1.0) or has no such file."""
        aside = getattr(self._impl, "read_aside", None)
        return aside(name) if aside is not None else None

    def extractfile(self, member: MemberInfo | str) -> IO[bytes]:
        return io.BytesIO(self.read(member))

    def getmember(self, name: str) -> MemberInfo:
        for info in self.getmembers():
            if info.path == name:
                return info
        raise LmarError(f"{name}: not found in archive")

    def extractall(self, path: str = ".", members: Sequence[str] | None = None, overwrite: bool = False,
                   on_member: OnMember | None = None, progress: Progress | None = None,
                   same_owner: bool = False, strip: int = 0, skip_existing: bool = False,
                   **parallel: Any) -> RunReport:
        """Extract members (all, or those matching the paths/globs in ``members``) under ``path``.

        Unsafe paths and links are refused, existing files kept unless ``overwrite``; a member that fails
        (damage, checksum, unsafe, disk error) is named in the report and the others still extract. Raises
        only when the archive cannot be read on at all. ``same_owner`` (root only) gives members their
        recorded owners; ``strip`` drops that many leading path components (tar's --strip-components);
        ``skip_existing`` leaves members whose names exist alone, silently (tar's --skip-old-files).
        ``parallel``: ``jobs``, ``executor`` ("local" or "ray"), ``ray_address``: where blocks are decoded
        ahead (default: here, one by one)."""
        return extract_all(self, path, members, overwrite, on_member=on_member, progress=progress,
                           same_owner=same_owner, strip=strip, skip_existing=skip_existing, **parallel)

    def extract_to_stream(self, stream: IO[bytes], members: Sequence[str] | None = None,
                          on_member: OnMember | None = None, progress: Progress | None = None,
                          **parallel: Any) -> RunReport:
        """Write matching regular files' verified bytes to ``stream`` one after another (``extract -O``)."""
        return extract_all(self, members=members, to_stream=stream, on_member=on_member, progress=progress,
                           **parallel)

    def compare(self, path: str = ".", members: Sequence[str] | None = None, on_member: OnMember | None = None,
                progress: Progress | None = None, **parallel: Any) -> RunReport:
        """What differs between members and the files under ``path`` (kind, content, size, mode, time, link
        target; tar's ``--diff``): each member that differs is a failure saying what; nothing is written."""
        return compare_all(self, path, members, on_member=on_member, progress=progress, **parallel)

    def test(self, members: Sequence[str] | None = None, on_member: OnMember | None = None,
             progress: Progress | None = None, **parallel: Any) -> RunReport:
        """Decode members and verify every checksum without writing anything; failures are named in the report
        (``parallel`` as for :meth:`extractall`)."""
        return check_all(self, members, on_member=on_member, progress=progress, **parallel)


def open_archive(path: str | os.PathLike | BinaryIO, mode: str = "r", **kwargs: Any) -> Any:
    """``mode`` "r": an :class:`ArchiveReader`; "w": an :class:`ArchiveWriter` over an open stream."""
    if mode == "r":
        if hasattr(path, "read"):
            return ArchiveReader(path, getattr(path, "name", "archive"), **kwargs)  # type: ignore[arg-type]
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the reader
        except OSError as exc:
            raise LmarError(f"{path}: cannot open: {exc.strerror or exc}") from None
        try:
            return ArchiveReader(f, os.fspath(path), **kwargs)
        except BaseException:
            f.close()
            raise
    if mode == "w":
        if hasattr(path, "write"):
            return ArchiveWriter(path, **kwargs)  # type: ignore[arg-type]
        return _AtomicArchiveWriter(os.fspath(path), **kwargs)
    raise ValueError(f"mode must be 'r' or 'w', not {mode!r}")


class _AtomicArchiveWriter(ArchiveWriter):
    """Writes to a temp file beside the target and renames it on success: no half archive is ever left."""

    def __init__(self, path: str, overwrite: bool = False, **kwargs: Any) -> None:
        if os.path.isdir(path) and not os.path.islink(path):  # even with overwrite: never replace a directory
            raise LmarError(f"{path}: is a directory; name the archive file to write")
        if os.path.lexists(path) and not overwrite:
            raise LmarError(f"{path}: already exists (use --overwrite to replace it)")
        directory = os.path.dirname(os.path.abspath(path))
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=".lmar-", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise LmarError(f"{path}: cannot write: {exc.strerror or exc}") from None
        self._path = path
        self._overwrite = overwrite
        self._file = os.fdopen(fd, "wb")
        super().__init__(self._file, **kwargs)

    @property
    def temp_path(self) -> str:
        return self._tmp

    def add(self, paths: Iterable[str], skip_real: Iterable[str] = ()) -> list[MemberResult]:
        return super().add(paths, [*skip_real, self._tmp, self._path])

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.abort()

    def close(self) -> None:
        if self._closed:
            return
        try:
            super().close()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.chmod(self._tmp, 0o644 & ~_umask())
            if os.path.lexists(self._path) and not self._overwrite:
                raise LmarError(f"{self._path}: appeared while writing; not replaced (use --overwrite)")
            os.replace(self._tmp, self._path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self._closed = True
        try:
            self._file.close()
        finally:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def stdout_writer(**kwargs: Any) -> ArchiveWriter:
    return ArchiveWriter(sys.stdout.buffer, **kwargs)


def machine_bound(info: MemberInfo, registry: Registry | None = None) -> str:
    """The machines a member decodes on when its codec's float numerics bind it ("x86_64 CPUs with avx2,
    fma (float numerics)"); "" when it decodes anywhere. Asked of the member's codec, from what it recorded."""
    if info.codec is None:
        return ""
    return machine_binding(registry or get_registry(), info.codec.name, info.codec.info)
