"""Reading format 1.0 archives (lmar 0.1): one member header, its blocks and an end record per member.

Frozen with :mod:`lmar.formats.legacy_v1`: it only reads. The facade :class:`lmar.archive.ArchiveReader`
hands format 1 archives here; everything a format 2 reader offers that a v1 archive has is offered the same
way (``getmembers``, ``iter_members``, ``read``).
"""
from __future__ import annotations

from typing import Callable, Iterator

import xxhash

from lmar.formats.legacy_v1 import BlockRecord, ContainerReader, MemberEnd

from .errors import ChecksumError, FormatError, LmarError
from .member_codec import codec_for, decode_checked, hint
from .members import MemberInfo
from .registry import Registry


class LegacyArchiveReader:
    """Reads format 1.0 members from a seekable file (through the index) or a stream (scanning headers in order)."""

    def __init__(self, container: ContainerReader, name: str, registry: Callable[[], Registry]) -> None:
        self.name = name
        self._registry = registry
        self._container = container
        self._index = self._container.read_index()
        self.indexed = self._index is not None
        self.index_problem: str | None = None
        self._consumed = False

    @property
    def registry(self) -> Registry:
        return self._registry()

    def getmembers(self) -> list[MemberInfo]:
        """All members; from the index when there is one, else by scanning (which consumes a stream)."""
        if self._index is not None:
            return [MemberInfo.from_header(h) for h in self._index]
        return [info for info, _ in self.iter_members()]

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

    def read_member(self, info: MemberInfo) -> Iterator[bytes]:
        """One member's bytes by random access (needs the index)."""
        if self._index is None:
            raise LmarError("random access needs a seekable archive with an index; use iter_members()")
        return self._read_at(info)

    def _decode(self, info: MemberInfo, records: Iterator[BlockRecord | MemberEnd]) -> Iterator[bytes]:
        """Decode a member's blocks, checking every block and the whole member against its checksums."""
        hasher = xxhash.xxh3_128()
        total = 0
        codec = None
        if info.isfile():
            codec = codec_for(self.registry, info)
        index = 0
        for rec in records:
            if isinstance(rec, MemberEnd):
                if total != rec.size or hasher.digest() != rec.xxh3_128:
                    raise ChecksumError(f"{info.path}: member checksum mismatch{hint(codec, info)}")
                return
            if codec is None:
                raise FormatError(f"member {info.path!r} of type {info.type} has data blocks: archive is corrupt")
            raw = decode_checked(codec, rec.stored, rec.raw_len, rec.raw_xxh64, rec.intact, info, index)
            hasher.update(raw)
            total += len(raw)
            index += 1
            yield raw
