"""The Python API, in the spirit of :mod:`tarfile`: open an archive, add paths, iterate and extract members.

This layer joins the format (``lmar.formats``), the codecs (through ``lmar.registry`` only) and the file
system (``walk`` for reading trees, ``extract`` for writing them). The CLI is a thin layer over it.
"""
from __future__ import annotations

import io
import os
import sys
import tempfile
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, Callable, Iterable, Iterator

import xxhash

from lmar.formats.container import BlockRecord, ContainerReader, ContainerWriter, MemberEnd

from .errors import ChecksumError, CodecError, CodecUnavailable, FormatError, LmarError
from .members import DIR, FILE, CodecRef, MemberInfo
from .pipeline import Plan, default_jobs, iter_blocks_of_large_file, make_executor, plan_file
from .progress import NoProgress, Progress
from .registry import Registry, get_registry
from .selection import EncodedBlock, SelectOptions
from .walk import Skipped, Source, collect


@dataclass
class CreateOptions:
    select: SelectOptions = field(default_factory=SelectOptions)
    #: Worker processes (0: all cores).
    jobs: int = 0
    excludes: list[str] = field(default_factory=list)
    #: Total seconds of compression the user allows; shared among files by size.
    time_budget: float | None = None


@dataclass
class MemberResult:
    """What happened to one path during create: shown by ``-v`` and ``--json``."""

    path: str
    type: str
    size: int = 0
    stored_size: int = 0
    codec: str | None = None
    candidates: dict[str, list[Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.type, "size": self.size, "stored_size": self.stored_size,
                "codec": self.codec, "candidates": {k: {"size": v[0], "how": v[1]} for k, v in self.candidates.items()},
                "warnings": self.warnings, "error": self.error}


class ArchiveWriter:
    """Writes an archive to a binary stream. Use :func:`create_archive` for the safe temp-file-and-rename."""

    def __init__(self, fileobj: BinaryIO, options: CreateOptions | None = None,
                 progress: Progress | None = None) -> None:
        self.options = options or CreateOptions()
        self.progress = progress or NoProgress()
        self._container = ContainerWriter(fileobj)
        self._closed = False

    def __enter__(self) -> "ArchiveWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.close()

    def add(self, paths: Iterable[str], skip_real: Iterable[str] = ()) -> list[MemberResult]:
        """Add files and trees (stored under the names given, like tar); returns one result per path."""
        entries = list(collect(paths, self.options.excludes, skip_real))
        sources = [e for e in entries if isinstance(e, Source)]
        results = [MemberResult(e.path, "skipped", error=e.reason if e.is_error else None,
                                warnings=[] if e.is_error else [e.reason]) for e in entries if isinstance(e, Skipped)]
        total = sum(s.info.size for s in sources if s.info.isfile())
        jobs = self.options.jobs or default_jobs()
        self.progress.start(total, "compressing")
        executor = make_executor(jobs)
        try:
            results.extend(self._add_sources(sources, executor, jobs, total))
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            self.progress.stop()
        return results

    def _select_options(self, size: int, total: int) -> SelectOptions:
        sel = self.options.select
        if self.options.time_budget is None:
            return sel
        share = self.options.time_budget * (size / total if total else 1.0)
        return SelectOptions(sel.codec, sel.candidates, sel.level, share, sel.verify)

    def _add_sources(self, sources: list[Source], executor: Any, jobs: int, total: int) -> Iterator[MemberResult]:
        window = max(2, 2 * jobs)
        pending: deque[tuple[Source, Any]] = deque()
        it = iter(sources)
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                src = next(it, None)
                if src is None:
                    exhausted = True
                    break
                fut = None
                if src.info.isfile():
                    fut = executor.submit(plan_file, src.fs_path, src.info.size,
                                          self._select_options(src.info.size, total))
                pending.append((src, fut))
            if not pending:
                return
            src, fut = pending.popleft()
            if fut is None:
                yield self._write_nonfile(src.info)
                continue
            try:
                plan: Plan = fut.result()
            except Exception as exc:  # a worker died: report it against this member
                plan = Plan("", {}, 0, "", {}, {}, None, 0, None, error=f"{type(exc).__name__}: {exc}")
            yield self._write_file(src, plan, executor, jobs)

    def _write_nonfile(self, info: MemberInfo) -> MemberResult:
        self._container.begin_member(info.to_header())
        self._container.end_member(0, xxhash.xxh3_128_digest(b""))
        return MemberResult(info.path, info.type)

    def _write_file(self, src: Source, plan: Plan, executor: Any, jobs: int) -> MemberResult:
        info = src.info
        result = MemberResult(info.path, info.type, size=plan.size, warnings=list(plan.warnings))
        if plan.error:
            result.error = plan.error
            self.progress.advance(info.size, info.path)
            return result
        info.size = plan.size
        info.codec = CodecRef(plan.codec_name, plan.version, plan.params, plan.provider, plan.info)
        info.candidates = _measured(plan.candidates)
        self._container.begin_member(info.to_header())
        stored = 0
        if plan.blocks is not None:
            stored = self._write_blocks(plan.blocks)
            size, digest = plan.size, plan.xxh3_128
            self.progress.advance(info.size, info.path)
        else:
            hasher = xxhash.xxh3_128()
            size = 0
            try:
                for block in iter_blocks_of_large_file(executor, src.fs_path, plan, 2 * jobs,
                                                       self.options.select.verify, hasher):
                    self._container.write_block(block.raw_len, block.stored, block.raw_xxh64)
                    stored += len(block.stored)
                    size += block.raw_len
                    self.progress.advance(block.raw_len, info.path)
            except OSError as exc:
                raise LmarError(f"{info.path}: read failed while archiving: {exc.strerror or exc}") from None
            except CodecError as exc:
                raise LmarError(f"{info.path}: {exc}") from None
            digest = hasher.digest()
            if size != plan.size:
                result.warnings.append("file changed size while it was being archived")
        assert digest is not None
        self._container.end_member(size, digest)
        result.size, result.stored_size, result.codec, result.candidates = size, stored, plan.codec_name, plan.candidates
        return result

    def _write_blocks(self, blocks: Iterable[EncodedBlock]) -> int:
        """Write already coded blocks of the open member; returns their stored bytes."""
        stored = 0
        for block in blocks:
            self._container.write_block(block.raw_len, block.stored, block.raw_xxh64)
            stored += len(block.stored)
        return stored

    def addbytes(self, name: str, data: bytes, mode: int = 0o644, mtime_ns: int = 0) -> MemberResult:
        """Add an in-memory file (API convenience; selection runs in this process)."""
        from .selection import choose

        registry = get_registry()
        choice = choose(registry, data, len(data), self._select_options(len(data), len(data)))
        codec = choice.codec
        info = MemberInfo(name, FILE, mode, mtime_ns, len(data),
                          codec=CodecRef(codec.name, codec.version, dict(codec.params),
                                         registry.providers.get(codec.name, ""), codec.header_info()),
                          candidates=_measured(choice.candidates))
        self._container.begin_member(info.to_header())
        stored = self._write_blocks(choice.blocks or [])
        self._container.end_member(len(data), xxhash.xxh3_128_digest(data))
        return MemberResult(name, FILE, len(data), stored, codec.name, choice.candidates, choice.warnings)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()


class ArchiveReader:
    """Reads members from a seekable file (through the index) or a stream (scanning headers in order)."""

    def __init__(self, fileobj: BinaryIO, name: str = "archive", registry: Registry | None = None) -> None:
        self._f = fileobj
        self.name = name
        self._registry = registry
        self._container = ContainerReader(fileobj, name)
        self._index = self._container.read_index()
        self.indexed = self._index is not None
        self._consumed = False

    def __enter__(self) -> "ArchiveReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = get_registry()
        return self._registry

    def getmembers(self) -> list[MemberInfo]:
        """All members; from the index when there is one, else by scanning (which consumes a stream)."""
        if self._index is not None:
            return [MemberInfo.from_header(h) for h in self._index]
        return [info for info, _ in self.iter_members()]

    def __iter__(self) -> Iterator[MemberInfo]:
        return iter(self.getmembers())

    def iter_members(self) -> Iterator[tuple[MemberInfo, Callable[[], Iterator[bytes]]]]:
        """Yield ``(member, read)`` in archive order; call ``read()`` before advancing to get its bytes."""
        if self._index is not None:
            for entry in self._index:
                info = MemberInfo.from_header(entry)
                yield info, (lambda info=info: self._read_at(info))
            return
        if self._consumed:
            try:  # a seekable file without an index (e.g. its footer was cut off) can simply be scanned again
                self._container.seek(self._container.data_start)
            except (OSError, ValueError, AttributeError):
                raise LmarError(f"{self.name}: a stream can only be read once") from None
        self._consumed = True
        while True:
            header = self._container.next_header()
            if header is None:
                return
            info = MemberInfo.from_header(header)
            records = self._container.iter_blocks(info.path)
            yield info, (lambda info=info, records=records: self._decode(info, records))
            for _ in records:  # skip what the caller did not read, so the next header is in place
                pass

    def _read_at(self, info: MemberInfo) -> Iterator[bytes]:
        if info.offset is None:
            raise FormatError(f"member {info.path!r}: index has no offset")
        self._container.seek(info.offset)
        header = self._container.next_header()
        if header is None or header.get("path") != info.path:
            raise FormatError(f"member {info.path!r}: index points at the wrong place: archive is corrupt")
        return self._decode(info, self._container.iter_blocks(info.path))

    def read(self, member: MemberInfo | str) -> bytes:
        """The whole content of one member (verified)."""
        info = self.getmember(member) if isinstance(member, str) else member
        return b"".join(self._find_reader(info)())

    def extractfile(self, member: MemberInfo | str) -> IO[bytes]:
        return io.BytesIO(self.read(member))

    def getmember(self, name: str) -> MemberInfo:
        for info in self.getmembers():
            if info.path == name:
                return info
        raise LmarError(f"{name}: not found in archive")

    def _find_reader(self, info: MemberInfo) -> Callable[[], Iterator[bytes]]:
        if self._index is not None:
            return lambda: self._read_at(info)
        raise LmarError("random access needs a seekable archive with an index; use iter_members()")

    def _decode(self, info: MemberInfo, records: Iterator[BlockRecord | MemberEnd]) -> Iterator[bytes]:
        """Decode a member's blocks, checking every block and the whole member against its checksums."""
        hasher = xxhash.xxh3_128()
        total = 0
        codec = None
        if info.isfile():
            assert info.codec is not None
            ref = info.codec
            try:
                cls = self.registry.get(ref.name, ref.provider)
            except CodecUnavailable as exc:  # name the member, like every other per-member failure
                raise CodecUnavailable(f"{info.path}: {exc}{_model_note(ref)}") from None
            if ref.version > cls.version:
                raise CodecUnavailable(f"{info.path}: coded with {ref.name} version {ref.version}; the installed "
                                       f"codec is version {cls.version} — upgrade {ref.provider or 'the plugin'}")
            try:
                codec = self.registry.create(ref.name, ref.params, ref.provider)
            except CodecUnavailable as exc:
                raise CodecUnavailable(f"{info.path}: {exc}") from None
            except CodecError as exc:
                raise CodecError(f"{info.path}: {exc}") from None
        index = 0
        for rec in records:
            if isinstance(rec, MemberEnd):
                if total != rec.size or hasher.digest() != rec.xxh3_128:
                    raise ChecksumError(self._mismatch(info, "member checksum mismatch", codec))
                return
            if codec is None:
                raise FormatError(f"member {info.path!r} of type {info.type} has data blocks: archive is corrupt")
            if not rec.intact:
                raise FormatError(f"{info.path}: block {index} is corrupt (stored checksum mismatch)")
            try:
                raw = codec.decompress(rec.stored, rec.raw_len)
            except CodecError as exc:
                raise CodecError(f"{info.path}: block {index}: {exc}") from None
            except Exception as exc:
                raise CodecError(f"{info.path}: block {index}: codec {codec.name} failed: "
                                 f"{type(exc).__name__}: {exc}") from None
            if len(raw) != rec.raw_len or xxhash.xxh3_64_intdigest(raw) != rec.raw_xxh64:
                raise ChecksumError(self._mismatch(info, f"block {index} decoded to different bytes", codec))
            hasher.update(raw)
            total += len(raw)
            index += 1
            yield raw

    def _mismatch(self, info: MemberInfo, what: str, codec: Any) -> str:
        hint = ""
        if codec is not None and info.codec is not None:
            try:
                hint = codec.mismatch_hint(info.codec.info)
            except Exception:
                hint = ""
        return f"{info.path}: {what}" + (f" ({hint})" if hint else "")


def _measured(candidates: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Only measured sizes go into the archive: skip reasons (not installed, over budget) repeat for every
    file and would cost hundreds of bytes per member; ``create --json`` still reports them."""
    return {k: v for k, v in candidates.items() if v and v[0] is not None}


def _model_note(ref: CodecRef) -> str:
    """Name the model a missing LM codec needs, when the member recorded one."""
    for key in ("model_id", "model_sha256"):
        value = ref.params.get(key)
        if isinstance(value, str) and value:
            return f" (it needs model {value})"
    return ""


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
