"""Format 2 containers: writing and reading groups (descriptors, member tables, blocks, group ends), the
archive end, the index and the footer (``SPEC.md``).

The writer only orders records and fills the index; what goes into a group is the archive layer's
choice. The reader checks every record's checksum and every structural rule before handing anything up,
so the layers above see typed, consistent values or a :class:`FormatError` that says where.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator


from lmar.errors import FormatError

from . import records as rec
from .limits import MAX_BLOCK, MAX_INDEX, MAX_ITEMS
from .member_table import Table, decode_table, encode_table, front_code, front_decode

MAX_DESCRIPTORS = 4096
#: A group with more than one data member is read into memory whole; this bounds it.
MAX_SOLID_GROUP = 256 << 20
_BLOCK_HEAD = struct.Struct("<IQ")  # raw_len, xxh3_64(raw)

__all__ = ["ContainerWriter", "ContainerReader", "Block", "GroupEnd", "Index", "open_container",
           "MAX_BLOCK", "MAX_SOLID_GROUP"]


@dataclass(frozen=True)
class Block:
    raw_len: int
    stored: bytes
    raw_xxh64: int
    #: False when the record fails its checksum: the stored bytes must not reach a codec.
    intact: bool = True


@dataclass(frozen=True)
class GroupEnd:
    size: int
    hashes: list[int]


@dataclass
class Index:
    tables: list[tuple[int, int]]
    descriptors: list[int]
    end: int
    paths: list[str]

    def first_members(self) -> list[int]:
        """The member number of each table's first member."""
        out, n = [], 0
        for _, count in self.tables:
            out.append(n)
            n += count
        return out


def _descriptor_body(desc: dict[str, Any], ident: int) -> bytes:
    return rec.pack({"id": ident, "name": desc["name"], "version": desc["version"], "params": desc["params"],
                     "provider": desc.get("provider", ""), "info": desc.get("info", {})})


class ContainerWriter:
    """Emits records in order; never seeks, so it can write to a pipe."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._f = fileobj
        self.offset = 0
        self._descriptors: dict[bytes, int] = {}
        self._descriptor_offsets: list[int] = []
        self._tables: list[tuple[int, int]] = []
        self._paths: list[str] = []
        self._open_group = False
        self._group_raw = 0
        self._write(rec.preamble())

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self.offset += len(data)

    def descriptor(self, desc: dict[str, Any]) -> int:
        """The number of this codec descriptor, writing its record the first time it is used."""
        key = rec.pack([desc["name"], desc["version"], desc["params"], desc.get("provider", ""),
                        desc.get("info", {})])
        ident = self._descriptors.get(key)
        if ident is None:
            if self._open_group:
                raise RuntimeError("descriptor() inside a group")
            ident = len(self._descriptors)
            body = _descriptor_body(desc, ident)
            if len(body) > rec.BODY_LIMITS[rec.TAG_DESCRIPTOR]:
                raise FormatError(f"codec descriptor of {desc['name']} is too large ({len(body)} bytes)")
            self._descriptors[key] = ident
            self._descriptor_offsets.append(self.offset)
            self._write(rec.frame(rec.TAG_DESCRIPTOR, body))
        return ident

    @property
    def next_group(self) -> int:
        return len(self._tables)

    @property
    def members_written(self) -> int:
        return len(self._paths)

    def begin_group(self, table: Table) -> None:
        if self._open_group:
            raise RuntimeError("begin_group() while a group is open")
        body = encode_table(table)
        if len(body) > rec.BODY_LIMITS[rec.TAG_TABLE]:
            raise FormatError(f"member table of group {table.group} is too large ({len(body)} bytes)")
        self._tables.append((self.offset, len(table.members)))
        self._paths.extend(m.path for m in table.members)
        self._write(rec.frame(rec.TAG_TABLE, body))
        self._open_group = True
        self._group_raw = 0

    def block(self, raw_len: int, stored: bytes, raw_xxh64: int) -> None:
        if not self._open_group:
            raise RuntimeError("block() outside a group")
        if not 0 < raw_len <= MAX_BLOCK or len(stored) + _BLOCK_HEAD.size > rec.BODY_LIMITS[rec.TAG_BLOCK]:
            raise FormatError(f"block of {raw_len} raw / {len(stored)} stored bytes exceeds the format limits")
        self._write(rec.frame(rec.TAG_BLOCK, _BLOCK_HEAD.pack(raw_len, raw_xxh64) + stored))
        self._group_raw += raw_len

    def end_group(self, hashes: list[int], size: int | None = None) -> None:
        if not self._open_group:
            raise RuntimeError("end_group() outside a group")
        total = self._group_raw if size is None else size
        body = rec.pack({"size": total, "hash": b"".join(struct.pack("<Q", h) for h in hashes)})
        self._write(rec.frame(rec.TAG_GROUP_END, body))
        self._open_group = False

    def close(self) -> None:
        """Write the archive end, the index and the footer. The caller closes the file."""
        if self._open_group:
            raise RuntimeError("close() while a group is open")
        end = self.offset
        self._write(rec.frame(rec.TAG_ARCHIVE_END, rec.pack({"members": len(self._paths),
                                                             "groups": len(self._tables)})))
        pfx, sfx = front_code(self._paths)
        body = rec.compress(rec.pack({"tables": [list(t) for t in self._tables],
                                      "descriptors": self._descriptor_offsets, "end": end,
                                      "pfx": pfx, "sfx": sfx}))
        index_offset = self.offset
        self._write(rec.frame(rec.TAG_INDEX, body))
        self._write(rec.footer(index_offset, len(body)))


class GroupDamaged(FormatError):
    """A group's table could not be read; ``group`` and ``offset`` say which, so members can be named."""

    def __init__(self, message: str, group: int, offset: int) -> None:
        super().__init__(message)
        self.group = group
        self.offset = offset


class ContainerReader:
    """Reads a format 2 archive: groups in order from any stream, or tables by offset through the index."""

    def __init__(self, fileobj: BinaryIO, name: str, version: tuple[int, int]) -> None:
        self.name = name
        self.version = version
        self._r = rec.RecordReader(fileobj, name, rec.PREAMBLE_SIZE)
        self._f = fileobj
        self.descriptors: dict[int, dict[str, Any]] = {}
        #: Offsets of descriptor records already taken in (through the index, or earlier in the scan).
        self._descriptor_offsets_seen: set[int] = set()
        self.groups_read = 0
        self.members_read = 0
        #: False once a group was lost without an index: the archive end's totals cannot be compared then.
        self._counts_known = True
        #: Why the index was not used (damaged footer or index), for a warning; None when fine or not seekable.
        self.index_problem: str | None = None

    # -- index -------------------------------------------------------------------------------------------
    def read_index(self) -> Index | None:
        """The index, or None when the file is not seekable or its footer or index is damaged (then scan)."""
        try:
            size = self._f.seek(0, 2)
        except (OSError, ValueError, AttributeError):
            return None
        try:
            index = self._index_of(size)
        except FormatError as exc:
            self.index_problem = str(exc)
            index = None
        self._r.seek(rec.PREAMBLE_SIZE)
        return index

    def _index_of(self, size: int) -> Index:
        if size < rec.PREAMBLE_SIZE + rec.FOOTER_SIZE:
            raise FormatError("the footer is missing")
        self._f.seek(size - rec.FOOTER_SIZE)
        found = rec.parse_footer(self._f.read(rec.FOOTER_SIZE), size)
        if found is None:
            raise FormatError("the footer is damaged or missing")
        offset, _ = found
        self._r.seek(offset)
        record = self._r.next("index")
        if record.tag != rec.TAG_INDEX or not record.intact:
            raise FormatError("the index is damaged (checksum mismatch)")
        doc = rec.unpack(rec.decompress(record.body, MAX_INDEX, "the index"), "the index",
                         max_array=max(MAX_ITEMS, len(record.body) * 64))
        if not isinstance(doc, dict):
            raise FormatError("the index is corrupt")
        tables, descs, end = doc.get("tables"), doc.get("descriptors"), doc.get("end")
        if (not isinstance(tables, list) or not isinstance(descs, list) or not isinstance(end, int)
                or not all(isinstance(t, list) and len(t) == 2 and all(isinstance(v, int) and v >= 0 for v in t)
                           for t in tables)
                or not all(isinstance(d, int) and d >= 0 for d in descs)):
            raise FormatError("the index is corrupt")
        inside = range(rec.PREAMBLE_SIZE, offset)
        if not all(t[0] in inside for t in tables) or not all(d in inside for d in descs) or end not in inside:
            raise FormatError("the index points outside the archive")
        total = sum(t[1] for t in tables)
        paths = front_decode(doc.get("pfx"), doc.get("sfx"), total, "the index")
        return Index([(t[0], t[1]) for t in tables], list(descs), end, paths)

    def load_descriptors(self, index: Index) -> None:
        for ident, offset in enumerate(index.descriptors):
            self._r.seek(offset)
            record = self._r.next("codec descriptor")
            if record.tag != rec.TAG_DESCRIPTOR:
                raise FormatError(f"{self.name}: the index points at no codec descriptor: archive is corrupt")
            self._descriptor(record, expected=ident)
            self._descriptor_offsets_seen.add(offset)

    def seek_table(self, offset: int, group: int, first_member: int) -> None:
        """Position at a table found through the index, so :meth:`next_group` reads it."""
        self._r.seek(offset)
        self.groups_read = group
        self.members_read = first_member

    # -- streaming ---------------------------------------------------------------------------------------
    def _descriptor(self, record: rec.Record, expected: int) -> None:
        if not record.intact:
            raise FormatError(f"{self.name}: codec descriptor {expected} is damaged (checksum mismatch)")
        if expected >= MAX_DESCRIPTORS:
            raise FormatError(f"{self.name}: more than {MAX_DESCRIPTORS} codec descriptors: archive is corrupt")
        d = rec.unpack(record.body, "codec descriptor")
        if (not isinstance(d, dict) or d.get("id") != expected or not isinstance(d.get("name"), str)
                or not isinstance(d.get("version"), int) or isinstance(d.get("version"), bool)
                or not isinstance(d.get("params"), dict) or not all(isinstance(k, str) for k in d["params"])
                or not isinstance(d.get("provider", ""), str)
                or not isinstance(d.get("info", {}), dict)):
            raise FormatError(f"{self.name}: codec descriptor {expected} is corrupt or out of order")
        d.setdefault("provider", "")
        d.setdefault("info", {})
        self.descriptors[expected] = d

    def next_group(self) -> Table | None:
        """The next group's table (descriptors before it are taken in), or None at the archive end."""
        while True:
            record = self._r.next("member table")
            if record.tag == rec.TAG_DESCRIPTOR:
                if record.offset in self._descriptor_offsets_seen:
                    continue
                self._descriptor_offsets_seen.add(record.offset)
                self._descriptor(record, expected=len(self.descriptors))
                continue
            if record.tag == rec.TAG_ARCHIVE_END:
                self._archive_end(record)
                return None
            if record.tag != rec.TAG_TABLE:
                raise GroupDamaged(f"{self.name}: expected a member table at offset {record.offset}, found "
                                   f"{rec.record_name(record.tag)}: archive is corrupt",
                                   self.groups_read, record.offset)
            what = f"{self.name}: member table of group {self.groups_read}"
            if not record.intact:
                raise GroupDamaged(f"{what} is damaged (checksum mismatch)", self.groups_read, record.offset)
            try:
                table = decode_table(record.body, what, self.members_read)
            except FormatError as exc:
                raise GroupDamaged(str(exc), self.groups_read, record.offset) from None
            if table.group != self.groups_read:
                raise GroupDamaged(f"{what} says it is group {table.group}: archive is corrupt",
                                   self.groups_read, record.offset)
            if table.codec is not None and table.codec not in self.descriptors:
                raise GroupDamaged(f"{what} uses codec descriptor {table.codec}, which does not exist: "
                                   f"archive is corrupt", self.groups_read, record.offset)
            if len([m for m in table.members if m.has_data]) > 1 and table.data_size > MAX_SOLID_GROUP:
                raise GroupDamaged(f"{what} claims a solid group of {table.data_size} bytes "
                                   f"(limit {MAX_SOLID_GROUP}): archive is corrupt", self.groups_read, record.offset)
            self.groups_read += 1
            self.members_read += len(table.members)
            return table

    def _archive_end(self, record: rec.Record) -> None:
        if not record.intact:
            raise FormatError(f"{self.name}: the archive end record is damaged (checksum mismatch)")
        doc = rec.unpack(record.body, "archive end record")
        if not isinstance(doc, dict) or (self._counts_known and (
                doc.get("members") != self.members_read or doc.get("groups") != self.groups_read)):
            raise FormatError(f"{self.name}: the archive end record does not match the members read "
                              f"(members or groups are missing): archive is corrupt")

    def iter_blocks(self, what: str) -> Iterator[Block | GroupEnd]:
        """The open group's blocks, then its end record."""
        while True:
            record = self._r.next(f"{what}")
            if record.tag == rec.TAG_GROUP_END:
                yield self._group_end(record, what)
                return
            if record.tag != rec.TAG_BLOCK:
                raise FormatError(f"{what}: expected a data block, found {rec.record_name(record.tag)}: "
                                  f"archive is corrupt")
            if len(record.body) < _BLOCK_HEAD.size:
                raise FormatError(f"{what}: data block is too short: archive is corrupt")
            raw_len, raw_xxh = _BLOCK_HEAD.unpack_from(record.body)
            if not 0 < raw_len <= MAX_BLOCK:
                raise FormatError(f"{what}: data block has an impossible size: archive is corrupt")
            yield Block(raw_len, record.body[_BLOCK_HEAD.size:], raw_xxh, record.intact)

    def _group_end(self, record: rec.Record, what: str) -> GroupEnd:
        if not record.intact:
            raise FormatError(f"{what}: group end record is damaged (checksum mismatch)")
        doc = rec.unpack(record.body, "group end record")
        if (not isinstance(doc, dict) or not isinstance(doc.get("size"), int) or doc["size"] < 0
                or not isinstance(doc.get("hash"), bytes) or len(doc["hash"]) % 8):
            raise FormatError(f"{what}: group end record is corrupt")
        raw = doc["hash"]
        return GroupEnd(doc["size"], list(struct.unpack(f"<{len(raw) // 8}Q", raw)))

    def skim_group(self) -> int:
        """Stored bytes of the open group's blocks, seeking past their bodies (seekable files only); the
        reader is left after the group end."""
        stored = 0
        while True:
            at = self._r.offset
            head = self._r.read_exact(5, "data block")
            tag, length = struct.unpack("<cI", head)
            if tag == rec.TAG_GROUP_END:
                self._r.seek(at)
                self._r.next("group end record")
                return stored
            if tag != rec.TAG_BLOCK or length > rec.BODY_LIMITS[rec.TAG_BLOCK] or length < _BLOCK_HEAD.size:
                raise FormatError(f"{self.name}: expected a data block at offset {at}: archive is corrupt")
            stored += length - _BLOCK_HEAD.size
            self._r.seek(at + rec.RECORD_OVERHEAD + length)

    @property
    def offset(self) -> int:
        return self._r.offset

    def seek(self, offset: int) -> None:
        self._r.seek(offset)

    def forget_counts(self) -> None:
        """A group was lost without an index: the archive end's totals can no longer be compared."""
        self._counts_known = False

    def skip_group(self) -> None:
        """Read past the rest of a damaged group's records to the next table (scanning, no index)."""
        while True:
            at = self._r.offset
            record = self._r.next("damaged group")
            if record.tag in (rec.TAG_TABLE, rec.TAG_DESCRIPTOR, rec.TAG_ARCHIVE_END):
                self._r.seek(at)
                return
            if record.tag == rec.TAG_GROUP_END:
                return


def open_container(fileobj: BinaryIO, name: str) -> Any:
    """Read the preamble and return the reader for its format: :class:`ContainerReader` or the legacy v1 one."""
    r = rec.RecordReader(fileobj, name, 0)
    head = r.read_exact(rec.PREAMBLE_V1.size, "archive preamble")
    magic, major, minor = rec.PREAMBLE_V1.unpack(head)
    if magic != rec.MAGIC:
        raise FormatError(f"{name} is not an lmar archive (bad magic)")
    if major == 1:
        from .legacy_v1 import ContainerReader as LegacyReader

        return LegacyReader(fileobj, name, (major, minor))
    check = fileobj.read(4)
    version = rec.check_preamble_v2(head, check, name)
    return ContainerReader(fileobj, name, version)
