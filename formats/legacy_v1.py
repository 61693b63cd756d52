"""Reading format 1.0 archives (lmar 0.1): decode only; new archives are written in format 2 (``container``).

The v1 container: a magic, then records, then an index and a fixed footer. Frozen: this module must keep
reading every archive lmar 0.1 wrote; nothing here writes. (The tests keep a v1 writer to craft inputs.)

Records are framed by a one-byte tag and explicit little-endian lengths, so a reader can stream an archive
from a pipe (no seeking) and a seekable reader can jump straight to a member through the index. Every
length read from the archive is checked against :mod:`lmar.formats.limits` before anything is allocated.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator

import msgpack
import xxhash

from lmar.errors import FormatError

from .limits import MAX_BLOCK, MAX_END_RECORD, MAX_HEADER, MAX_INDEX, MAX_ITEMS, MAX_STORED_BLOCK, MAX_STR

MAGIC = b"LMAR\x89\r\n\x1a"
FORMAT_MAJOR = 1
FORMAT_MINOR = 0
FOOTER_MAGIC = b"LMARIDX1"

TAG_HEADER = b"H"
TAG_BLOCK = b"B"
TAG_END = b"E"
TAG_ARCHIVE_END = b"Z"
TAG_INDEX = b"I"

_PREAMBLE = struct.Struct("<8sHH")  # magic, major, minor
_LEN32 = struct.Struct("<I")
_LEN64 = struct.Struct("<Q")
_BLOCK = struct.Struct("<IIQQ")  # raw_len, stored_len, xxh3_64(stored), xxh3_64(raw)
_FOOTER = struct.Struct("<8sQQQ")  # magic, index offset, index length, xxh3_64(index)
FOOTER_SIZE = _FOOTER.size

__all__ = ["ContainerReader", "BlockRecord", "MemberEnd", "unpack"]


def unpack(data: bytes, what: str) -> Any:
    """Unpack untrusted msgpack with bounded containers and string map keys only."""
    try:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=True, use_list=True,
            max_str_len=MAX_STR, max_bin_len=MAX_STR, max_array_len=max(MAX_ITEMS, len(data)),
            max_map_len=MAX_ITEMS, max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise FormatError(f"{what} is not valid: {type(exc).__name__}") from None


@dataclass(frozen=True)
class BlockRecord:
    raw_len: int
    stored: bytes
    raw_xxh64: int
    #: False when the stored bytes fail their checksum; the framing is intact, so reading can go on.
    intact: bool = True


@dataclass(frozen=True)
class MemberEnd:
    size: int
    xxh3_128: bytes


class ContainerReader:  # noqa: D101 - the v1 reader
    """Reads records in order from any binary stream; ``read_index`` additionally needs a seekable file."""

    def __init__(self, fileobj: BinaryIO, name: str = "archive", version: tuple[int, int] = (1, 0)) -> None:
        """``fileobj`` is positioned just after the 12-byte preamble, which :func:`lmar.formats.open_container` read."""
        self._f = fileobj
        self.name = name
        self.version = version
        self.data_start = _PREAMBLE.size
        self._header_xxh3_64: int | None = None

    # -- low level -------------------------------------------------------------------------------------
    def _read_exact(self, n: int, what: str) -> bytes:
        chunks = []
        left = n
        while left:
            chunk = self._f.read(left)
            if not chunk:
                raise FormatError(f"{self.name} is truncated (in {what})")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _read_len_prefixed(self, limit: int, what: str) -> bytes:
        (length,) = _LEN32.unpack(self._read_exact(_LEN32.size, what))
        if length > limit:
            raise FormatError(f"{what} claims {length} bytes (limit {limit}): archive is corrupt")
        return self._read_exact(length, what)

    def read_tag(self, what: str) -> bytes:
        return self._read_exact(1, what)

    # -- streaming -------------------------------------------------------------------------------------
    def next_header(self) -> dict[str, Any] | None:
        """The next member header, or None at the end-of-archive marker."""
        tag = self.read_tag("record tag")
        if tag == TAG_ARCHIVE_END:
            return None
        if tag != TAG_HEADER:
            raise FormatError(f"{self.name}: expected a member header, found tag {tag!r}: archive is corrupt")
        body = self._read_len_prefixed(MAX_HEADER, "member header")
        self._header_xxh3_64 = xxhash.xxh3_64_intdigest(body)
        header = unpack(body, "member header")
        if not isinstance(header, dict):
            raise FormatError("member header is not a map: archive is corrupt")
        return header

    def iter_blocks(self, member: str, check: bool = True) -> Iterator[BlockRecord | MemberEnd]:
        """Yield the member's blocks, then its end record; each block says whether its stored bytes are intact."""
        index = 0
        while True:
            tag = self.read_tag(f"member {member!r}")
            if tag == TAG_END:
                end = unpack(self._read_len_prefixed(MAX_END_RECORD, "end record"), "end record")
                if (not isinstance(end, dict) or not isinstance(end.get("size"), int)
                        or not isinstance(end.get("xxh3_128"), bytes) or len(end["xxh3_128"]) != 16):
                    raise FormatError(f"member {member!r}: end record is corrupt")
                # Headers carry no checksum of their own: the end record vouches for the header just read, so
                # a damaged name, mode or link target is caught even when scanning without the index.
                if "header_xxh3_64" in end and end["header_xxh3_64"] != self._header_xxh3_64:
                    raise FormatError(f"member {member!r}: header is corrupt (checksum mismatch)")
                yield MemberEnd(end["size"], end["xxh3_128"])
                return
            if tag != TAG_BLOCK:
                raise FormatError(f"member {member!r}: unexpected tag {tag!r} at block {index}: archive is corrupt")
            raw_len, stored_len, stored_xxh, raw_xxh = _BLOCK.unpack(self._read_exact(_BLOCK.size, "block header"))
            if not 0 < raw_len <= MAX_BLOCK or stored_len > MAX_STORED_BLOCK:
                raise FormatError(f"member {member!r}: block {index} has impossible sizes: archive is corrupt")
            stored = self._read_exact(stored_len, f"member {member!r} block {index}")
            intact = not check or xxhash.xxh3_64_intdigest(stored) == stored_xxh
            yield BlockRecord(raw_len, stored, raw_xxh, intact)
            index += 1

    # -- random access ---------------------------------------------------------------------------------
    def read_index(self) -> list[dict[str, Any]] | None:
        """The trailing index, or None when the file is not seekable or has no valid index (then scan)."""
        try:
            end = self._f.seek(0, 2)
        except (OSError, ValueError, AttributeError):
            return None
        entries = self._index_before(end)
        if entries is None:
            self._f.seek(self.data_start)  # looking for the index moved us; scanning starts after the preamble
        return entries

    def _index_before(self, end: int) -> list[dict[str, Any]] | None:
        if end < self.data_start + FOOTER_SIZE:
            return None
        self._f.seek(end - FOOTER_SIZE)
        magic, offset, length, digest = _FOOTER.unpack(self._read_exact(FOOTER_SIZE, "footer"))
        if (magic != FOOTER_MAGIC or length > MAX_INDEX
                or offset + 1 + _LEN64.size + length + FOOTER_SIZE != end or offset < self.data_start):
            return None
        self._f.seek(offset)
        if self._read_exact(1, "index") != TAG_INDEX:
            return None
        (inner_len,) = _LEN64.unpack(self._read_exact(_LEN64.size, "index"))
        if inner_len != length:
            return None
        body = self._read_exact(length, "index")
        if xxhash.xxh3_64_intdigest(body) != digest:
            return None
        entries = unpack(body, "archive index")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            return None
        return entries

    def seek(self, offset: int) -> None:
        self._f.seek(offset)
