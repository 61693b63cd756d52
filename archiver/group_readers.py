"""How one group's members are read: a streamed group (one large file, block by block) or a solid group
(read whole, bounded by the format's limit, blocks decoded only as far as the members asked for need).

Split from :mod:`lmar.reader`, which finds groups and serves members and duplicates; this module slices
members out of one group's blocks and checks every one of them.
"""
from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any, Iterator

import xxhash

from lmar.formats.container import MAX_SOLID_GROUP, Block, GroupEnd
from lmar.formats.member_table import Table, TableMember

from .errors import ChecksumError, FormatError, LmarError
from .member_codec import decode_checked, hint
from .members import FILE, MemberInfo

if TYPE_CHECKING:
    from .reader import ArchiveReaderV2, Reader



def file_hashes(table: Table, end: GroupEnd, what: str) -> dict[int, int]:
    files = table.file_members()
    if len(end.hashes) != len(files):
        raise FormatError(f"{what}: the group end has {len(end.hashes)} checksums for {len(files)} files: "
                          f"archive is corrupt")
    return dict(zip(files, end.hashes))


def _decode_block(owner: "ArchiveReaderV2", group: int, codec: Any, block: Block, info: MemberInfo, k: int) -> bytes:
    if owner.prefetch is not None:  # decoded ahead by a worker: the checks below stay here
        codec = owner.prefetch.codec_for_block(group, k, block, codec)
    return decode_checked(codec, block.stored, block.raw_len, block.raw_xxh64, block.intact, info, k)


class StreamGroup:
    """A group with at most one data member, listed first: its blocks are decoded as they are read."""

    def __init__(self, owner: "ArchiveReaderV2", table: Table, infos: list[MemberInfo], what: str) -> None:
        self.o, self.t, self.infos, self.what = owner, table, infos, what
        self.blocks = owner._c.iter_blocks(what)
        self.end: GroupEnd | None = None
        self.hashes: dict[int, int] = {}

    def _finish(self) -> None:
        if self.end is None:
            for rec in self.blocks:
                if isinstance(rec, GroupEnd):
                    self._set_end(rec)
            if self.end is None:
                raise FormatError(f"{self.what}: group end record is missing: archive is corrupt")

    def _set_end(self, end: GroupEnd) -> None:
        self.end = end
        self.hashes = file_hashes(self.t, end, self.what)

    def _stream(self, k: int) -> Iterator[bytes]:
        info = self.infos[k]
        codec = self.o._codec(self.t, info)
        h = xxhash.xxh3_64()
        total = n = 0
        for rec in self.blocks:
            if isinstance(rec, GroupEnd):
                self._set_end(rec)
                break
            raw = _decode_block(self.o, self.t.group, codec, rec, info, n)
            n += 1
            total += len(raw)
            h.update(raw)
            yield raw
        if self.end is None:
            raise FormatError(f"{self.what}: group end record is missing: archive is corrupt")
        if total != self.end.size:
            raise FormatError(f"{info.path}: the group end says {self.end.size} bytes, the blocks hold {total}: "
                              f"archive is corrupt")
        info.size = total
        if h.intdigest() != self.hashes[k]:
            raise ChecksumError(f"{info.path}: member checksum mismatch{hint(codec, info)}")

    def members(self, retain: bool, only: int | None) -> Iterator[tuple[MemberInfo, Reader]]:
        data = bool(self.t.members) and self.t.members[0].has_data and self.t.members[0].size > 0
        for k, info in enumerate(self.infos):
            m = self.t.members[k]
            if only is not None and k != only:
                continue
            if k == 0 and data:
                served: list[bytes] = []
                keep = bool(m.refd and retain)

                def read() -> Iterator[bytes]:
                    for chunk in self._stream(0):
                        if keep:
                            served.append(chunk)
                        yield chunk
                yield info, read
                if only is not None:
                    return
                if self.end is None:  # not read, or not to the end: decode to keep it for duplicates, or skip
                    if keep:
                        served = []
                        try:
                            served = list(self._stream(0))
                        except LmarError:
                            keep = False  # its duplicates report the failure when they are read
                    else:
                        self._finish()
                if keep:
                    self.o.retain(info.number or 0, b"".join(served), m.refd)
                continue
            self._finish()
            yield info, self._reader(k, info, m)
        if only is None:
            self._finish()

    def _reader(self, k: int, info: MemberInfo, m: TableMember) -> Reader:
        def read() -> Iterator[bytes]:
            if m.kind != FILE:
                return
            if m.ref is not None:
                yield self.o.serve_ref(info, m.ref, self.hashes[k])
                return
            if m.size or self.hashes[k] != xxhash.xxh3_64_intdigest(b""):
                raise FormatError(f"{info.path}: has a size but no data in its group: archive is corrupt")
            yield b""
        return read


class SolidGroup:
    """A group with several data members: its blocks are read whole, decoded as far as needed."""

    def __init__(self, owner: "ArchiveReaderV2", table: Table, infos: list[MemberInfo], what: str) -> None:
        self.o, self.t, self.infos, self.what = owner, table, infos, what
        self.blocks: list[Block] = []
        stored = 0
        end = None
        for rec in owner._c.iter_blocks(what):
            if isinstance(rec, GroupEnd):
                end = rec
                break
            stored += len(rec.stored)
            if stored > MAX_SOLID_GROUP * 2:
                raise FormatError(f"{what}: solid group is larger than the format allows: archive is corrupt")
            self.blocks.append(rec)
        assert end is not None
        self.hashes = file_hashes(table, end, what)
        self.starts = [0]
        for b in self.blocks:
            self.starts.append(self.starts[-1] + b.raw_len)
        self.problem = None
        if self.starts[-1] != table.data_size or end.size != self.starts[-1]:
            self.problem = (f"the group's blocks hold {self.starts[-1]} bytes, its members {table.data_size}: "
                            f"archive is corrupt")
        self.offsets: dict[int, int] = {}
        pos = 0
        for i, m in enumerate(table.members):
            if m.has_data:
                self.offsets[i] = pos
                pos += m.size
        self.cache: dict[int, bytes] = {}

    def _range(self, info: MemberInfo, start: int, size: int) -> bytes:
        if self.problem:
            raise FormatError(f"{info.path}: {self.problem}")
        codec = self.o._codec(self.t, info)
        first = bisect.bisect_right(self.starts, start) - 1
        parts = []
        k = max(first, 0)
        while k < len(self.blocks) and self.starts[k] < start + size:
            if k not in self.cache:
                self.cache[k] = _decode_block(self.o, self.t.group, codec, self.blocks[k], info, k)
            lo = max(start - self.starts[k], 0)
            hi = min(start + size - self.starts[k], self.blocks[k].raw_len)
            parts.append(self.cache[k][lo:hi])
            k += 1
        for old in [j for j in self.cache if self.starts[j + 1] <= start]:
            del self.cache[old]  # members come in order: blocks wholly before this one are done
        return b"".join(parts)

    def _content(self, k: int) -> bytes:
        info, m = self.infos[k], self.t.members[k]
        data = self._range(info, self.offsets[k], m.size)
        if xxhash.xxh3_64_intdigest(data) != self.hashes[k]:
            raise ChecksumError(f"{info.path}: member checksum mismatch")
        return data

    def members(self, retain: bool, only: int | None) -> Iterator[tuple[MemberInfo, Reader]]:
        kept: set[int] = set()
        for k, info in enumerate(self.infos):
            m = self.t.members[k]
            if only is not None and k != only:
                continue
            if m.kind != FILE:
                yield info, (lambda: iter(()))
            elif m.ref is not None:
                yield info, (lambda info=info, m=m, k=k: iter([self.o.serve_ref(info, m.ref, self.hashes[k])]))
            elif not m.has_data or not m.size:
                yield info, (lambda info=info, k=k: iter([self._empty(info, k)]))
            else:
                def read(k: int = k, m: TableMember = m, info: MemberInfo = info) -> Iterator[bytes]:
                    data = self._content(k)
                    if m.refd and retain and k not in kept:
                        kept.add(k)
                        self.o.retain(info.number or 0, data, m.refd)
                    yield data
                yield info, read
            if m.refd and retain and k not in kept:
                kept.add(k)
                try:
                    self.o.retain(info.number or 0, self._content(k), m.refd)
                except LmarError:
                    pass  # its duplicates report the failure when they are read

    def _empty(self, info: MemberInfo, k: int) -> bytes:
        if self.hashes[k] != xxhash.xxh3_64_intdigest(b""):
            raise ChecksumError(f"{info.path}: member checksum mismatch")
        return b""
