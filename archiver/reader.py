"""Reading format 2 archives: groups decoded, members sliced out and checked, duplicates served.

A group with one data member (a large file) is streamed block by block; a solid group is read whole
(bounded by the format's limit) and its blocks decoded only as far as the members asked for need. A
member whose table is damaged is still named (from the index) and reported, never skipped silently.
"""
from __future__ import annotations

import bisect
import contextlib
import tempfile
from typing import Any, Callable, Iterator

import xxhash

from lmar.formats.container import ContainerReader, GroupDamaged
from lmar.formats.member_table import Table, TableMember
from lmar.formats.records import PREAMBLE_SIZE

from .errors import ChecksumError, FormatError, LmarError
from .member_codec import codec_for
from .members import FILE, CodecRef, MemberInfo
from .registry import Registry
from .group_readers import SolidGroup, StreamGroup

Reader = Callable[[], Iterator[bytes]]


class _Retained:
    """Contents kept for later duplicates, in memory up to a point and on disk beyond."""

    def __init__(self) -> None:
        self._files: dict[int, Any] = {}
        self._left: dict[int, int] = {}

    def keep(self, number: int, data: bytes, uses: int) -> None:
        f = tempfile.SpooledTemporaryFile(max_size=8 << 20)
        f.write(data)
        self._files[number] = f
        self._left[number] = uses

    def has(self, number: int) -> bool:
        return number in self._files

    def take(self, number: int) -> bytes:
        f = self._files[number]
        f.seek(0)
        data = f.read()
        self._left[number] -= 1
        if self._left[number] <= 0:
            f.close()
            del self._files[number], self._left[number]
        return data


class ArchiveReaderV2:
    """The format 2 back end of :class:`lmar.archive.ArchiveReader`."""

    def __init__(self, container: ContainerReader, name: str, registry: Callable[[], Registry]) -> None:
        self.name = name
        self._c = container
        self._registry = registry
        self._index = container.read_index()
        self.indexed = self._index is not None
        self.index_problem = container.index_problem
        self._first = self._index.first_members() if self._index else []
        self._paths: dict[int, str] = {}
        self._codecs: dict[int, Any] = {}
        self._retained = _Retained()
        self._consumed = False
        #: A read-ahead decoder (:mod:`lmar.prefetch`) while a parallel extract or test runs, else None.
        self.prefetch: Any = None
        if self._index is not None:
            try:
                self._c.load_descriptors(self._index)
            except FormatError as exc:  # a damaged descriptor: scanning finds the same damage per group
                self.index_problem = f"the index is unusable ({exc})"
                self._index, self.indexed, self._first = None, False, []
            self._c.seek(PREAMBLE_SIZE)

    # -- listing -----------------------------------------------------------------------------------------
    def getmembers(self) -> list[MemberInfo]:
        if self._index is None:
            return [info for info, _ in self.iter_members()]
        out: list[MemberInfo] = []
        for g, (offset, count) in enumerate(self._index.tables):
            self._c.seek_table(offset, g, self._first[g])
            try:
                table = self._c.next_group()
                if table is None or len(table.members) != count:
                    raise GroupDamaged(f"{self.name}: the index does not match group {g}", g, offset)
                infos = self._infos(table, self._first[g])
                _share_stored(table, infos, self._c.skim_group())
            except FormatError as exc:
                infos = self._damaged(g, str(exc))
            out.extend(infos)
        return out

    def _info(self, table: Table, m: TableMember, number: int, solid: bool) -> MemberInfo:
        info = MemberInfo(m.path, m.kind, m.mode, m.mtime_ns, m.size, m.link, group=table.group, number=number,
                          trials_recorded=bool(table.trials))
        if m.owner is not None:
            info.uid, info.gid, info.uname, info.gname = m.owner
        if m.kind == FILE and table.codec is not None:
            d = self._c.descriptors[table.codec]
            info.codec = CodecRef(d["name"], d["version"], d["params"], d["provider"], d["info"])
            info.candidates = {k: [v, "recorded"] for k, v in table.trials.items()}
        if m.ref is not None:
            info.dedup_of = self._paths.get(m.ref) or (self._index.paths[m.ref] if self._index else f"#{m.ref}")
            info.stored_size = 0
        info.solid = solid
        self._paths[number] = m.path
        return info

    def _infos(self, table: Table, first: int) -> list[MemberInfo]:
        solid = sum(1 for x in table.members if x.has_data and x.size) > 1
        return [self._info(table, m, first + i, solid) for i, m in enumerate(table.members)]

    def _damaged(self, group: int, why: str) -> list[MemberInfo]:
        if self._index is not None and group < len(self._index.tables):
            first, count = self._first[group], self._index.tables[group][1]
            names = self._index.paths[first:first + count]
        else:
            names = [f"<members of group {group}>"]
        return [MemberInfo(p, "unknown", group=group, damage=f"{p}: {why}") for p in names]

    # -- reading in order --------------------------------------------------------------------------------
    def iter_members(self) -> Iterator[tuple[MemberInfo, Reader]]:
        """Yield ``(member, read)`` in archive order; call ``read()`` before advancing to get its bytes."""
        if self._consumed or self._index is not None:
            try:
                self._c.seek_table(PREAMBLE_SIZE, 0, 0)
            except (OSError, ValueError, AttributeError):
                raise LmarError(f"{self.name}: a stream can only be read once") from None
        self._consumed = True
        while True:
            group = self._c.groups_read
            try:
                table = self._c.next_group()
            except FormatError as exc:
                known = self._index is not None and group < len(self._index.tables)
                if not known and (self._index is not None or not isinstance(exc, GroupDamaged)):
                    raise  # past the last group (the archive end), or framing lost without an index
                for info in self._damaged(group, str(exc)):
                    yield info, _raiser(info.damage or "")
                self._resync(group)
                continue
            if table is None:
                return
            yield from self._group(table, self._c.members_read - len(table.members), retain=True)

    def _resync(self, group: int) -> None:
        """Continue after a damaged group: at the next table by the index, or past the damage when scanning."""
        if self._index is not None:
            nxt = group + 1
            if nxt < len(self._index.tables):
                self._c.seek_table(self._index.tables[nxt][0], nxt, self._first[nxt])
            else:
                self._c.seek_table(self._index.end, nxt, sum(c for _, c in self._index.tables))
            return
        self._c.forget_counts()
        self._c.groups_read = group + 1
        self._c.skip_group()

    def _codec(self, table: Table, info: MemberInfo) -> Any:
        """One codec instance per descriptor: LM codecs load a model when built."""
        if table.codec not in self._codecs:
            self._codecs[table.codec] = codec_for(self._registry(), info)
        return self._codecs[table.codec]

    def _group(self, table: Table, first: int, retain: bool, only: int | None = None
               ) -> Iterator[tuple[MemberInfo, Reader]]:
        infos = self._infos(table, first)
        data = [i for i, m in enumerate(table.members) if m.has_data and m.size]
        what = f"{self.name}: group {table.group}"
        if len(data) > 1 or (data and data[0] != 0):
            if len(data) == 1:
                raise GroupDamaged(f"{what}: its data member is not listed first: archive is corrupt",
                                   table.group, self._c.offset)
            yield from SolidGroup(self, table, infos, what).members(retain, only)
        else:
            yield from StreamGroup(self, table, infos, what).members(retain, only)

    def serve_ref(self, info: MemberInfo, target: int, expected: int) -> bytes:
        if self._retained.has(target):
            data = self._retained.take(target)
        elif self._index is not None:
            try:
                with self._aside():
                    data = b"".join(self._read_number(target, original=True))
            except LmarError as exc:
                raise LmarError(f"{info.path}: deduplicated from {info.dedup_of}, which cannot be read: {exc}") from None
        else:
            raise FormatError(f"{info.path}: deduplicated from {info.dedup_of}, whose content was not read "
                              f"(damaged or missing): archive is corrupt")
        if len(data) != info.size or xxhash.xxh3_64_intdigest(data) != expected:
            raise ChecksumError(f"{info.path}: member checksum mismatch (deduplicated from {info.dedup_of})")
        return data

    def read_aside(self, path: str) -> bytes | None:
        """The verified content of the file member named ``path``, read without disturbing
        :meth:`iter_members` (as :meth:`serve_ref` does); None when the archive has no index to seek by,
        no such file, or one over :data:`READ_ASIDE_LIMIT` (memory stays bounded)."""
        if self._index is None or path not in self._index.paths:
            return None
        number = self._index.paths.index(path)
        try:
            with self._aside():
                return b"".join(self._read_number(number, kind=FILE, max_size=READ_ASIDE_LIMIT))
        except _NotThatKind:
            return None  # a link or directory of that name, or a file too large to hold: refused

    @contextlib.contextmanager
    def _aside(self) -> Iterator[None]:
        """Read elsewhere in the archive, then come back to where :meth:`iter_members` was reading."""
        here, groups, members = self._c.offset, self._c.groups_read, self._c.members_read
        try:
            yield
        finally:
            self._c.seek_table(here, groups, members)

    def retain(self, number: int, data: bytes, uses: int) -> None:
        self._retained.keep(number, data, uses)

    # -- random access -----------------------------------------------------------------------------------
    def read_member(self, info: MemberInfo) -> Iterator[bytes]:
        if self._index is None:
            raise LmarError("random access needs a seekable archive with an index; use iter_members()")
        if info.damage:
            raise FormatError(info.damage)
        if info.number is None:
            raise LmarError(f"{info.path}: not a member of this archive")
        return self._read_number(info.number)

    def _read_number(self, number: int, original: bool = False, kind: str | None = None,
                     max_size: int | None = None) -> Iterator[bytes]:
        assert self._index is not None
        g = bisect.bisect_right(self._first, number) - 1
        if g < 0:
            raise FormatError(f"member {number} does not exist: archive is corrupt")
        self._c.seek_table(self._index.tables[g][0], g, self._first[g])
        table = self._c.next_group()
        if table is None:
            raise FormatError(f"{self.name}: the index points at no table: archive is corrupt")
        local = number - self._first[g]
        if original and not (0 <= local < len(table.members) and table.members[local].has_data):
            raise FormatError(f"member {number} is not a stored file: archive is corrupt")
        if kind is not None and not (0 <= local < len(table.members) and table.members[local].kind == kind
                                     and (max_size is None or table.members[local].size <= max_size)):
            raise _NotThatKind()
        for info, read in self._group(table, self._first[g], retain=False, only=local):
            if info.number == number:
                return iter([b"".join(read())])
        raise FormatError(f"member {number} does not exist: archive is corrupt")


#: The largest content :meth:`ArchiveReaderV2.read_aside` holds in memory (a hard link's target).
READ_ASIDE_LIMIT = 256 << 20


class _NotThatKind(Exception):
    """The member asked for by number is not of the kind asked for."""


def _raiser(message: str) -> Reader:
    def read() -> Iterator[bytes]:
        raise FormatError(message)
    return read


def _share_stored(table: Table, infos: list[MemberInfo], stored: int) -> None:
    """Split a group's stored bytes over its data members by size (the last takes the rounding)."""
    data = [i for i, m in enumerate(table.members) if m.has_data]
    total = sum(table.members[i].size for i in data) or 1
    left = stored
    for k, i in enumerate(data):
        share = left if k == len(data) - 1 else stored * table.members[i].size // total
        infos[i].stored_size = share
        left -= share
    for i, m in enumerate(table.members):
        if not m.has_data:
            infos[i].stored_size = 0
