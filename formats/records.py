"""Format 2 framing: the preamble, checksummed records and the footer (``SPEC.md``, "Layout").

Every record is ``tag | u32 length | body | u32 check`` so damage is found where it is, whatever the
record holds; this module knows nothing of what bodies mean. Lengths are checked against per-tag limits
before anything is allocated.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgpack
import xxhash
import zstandard

from lmar.errors import FormatError

from .limits import MAX_INDEX, MAX_ITEMS, MAX_STORED_BLOCK, MAX_STR

MAGIC = b"LMAR\x89\r\n\x1a"
FORMAT_MAJOR = 2
FORMAT_MINOR = 1  # 2.1: member tables may record owners (readers of 2.0 ignore them)
FOOTER_MAGIC = b"LMARIDX2"

TAG_DESCRIPTOR = b"C"
TAG_TABLE = b"T"
TAG_BLOCK = b"B"
TAG_GROUP_END = b"E"
TAG_ARCHIVE_END = b"Z"
TAG_INDEX = b"I"

#: Largest body a reader accepts, per tag (SPEC.md, "Records").
BODY_LIMITS = {
    TAG_DESCRIPTOR: 64 << 10,
    TAG_TABLE: 64 << 20,
    TAG_BLOCK: 12 + MAX_STORED_BLOCK,
    TAG_GROUP_END: 64 << 20,
    TAG_ARCHIVE_END: 4 << 10,
    TAG_INDEX: MAX_INDEX,
}

PREAMBLE_V1 = struct.Struct("<8sHH")  # magic, major, minor: what every version starts with
_CHECK = struct.Struct("<I")
_RECORD_HEAD = struct.Struct("<cI")  # tag, body length
_FOOTER = struct.Struct("<8sQII")  # magic, index offset, index body length, check32 of the first 20 bytes
FOOTER_SIZE = _FOOTER.size
PREAMBLE_SIZE = PREAMBLE_V1.size + _CHECK.size
RECORD_OVERHEAD = _RECORD_HEAD.size + _CHECK.size


def check32(*parts: bytes) -> int:
    h = xxhash.xxh3_64()
    for p in parts:
        h.update(p)
    return h.intdigest() & 0xFFFFFFFF


def preamble() -> bytes:
    head = PREAMBLE_V1.pack(MAGIC, FORMAT_MAJOR, FORMAT_MINOR)
    return head + _CHECK.pack(check32(head))


def check_preamble_v2(head: bytes, check: bytes, name: str) -> tuple[int, int]:
    """(major, minor) of a format 2+ preamble whose 12 first bytes were ``head``; damage is said as damage."""
    if len(check) != _CHECK.size or _CHECK.unpack(check)[0] != check32(head):
        raise FormatError(f"{name}: the archive's preamble is damaged (checksum mismatch): its format version "
                          f"cannot be trusted")
    _, major, minor = PREAMBLE_V1.unpack(head)
    if major > FORMAT_MAJOR:
        raise FormatError(f"{name} uses format version {major}.{minor}; this lmar reads up to "
                          f"{FORMAT_MAJOR}.x — upgrade lmar")
    return major, minor


def frame(tag: bytes, body: bytes) -> bytes:
    head = _RECORD_HEAD.pack(tag, len(body))
    return head + body + _CHECK.pack(check32(head, body))


def footer(index_offset: int, index_len: int) -> bytes:
    first = _FOOTER.pack(FOOTER_MAGIC, index_offset, index_len, 0)[:20]
    return first + _CHECK.pack(check32(first))


def parse_footer(raw: bytes, file_size: int) -> tuple[int, int] | None:
    """(index offset, index body length) from a footer that is intact and consistent with the file size."""
    if len(raw) != FOOTER_SIZE:
        return None
    magic, offset, length, check = _FOOTER.unpack(raw)
    if magic != FOOTER_MAGIC or check != check32(raw[:20]):
        return None
    if offset + RECORD_OVERHEAD + length + FOOTER_SIZE != file_size or offset < PREAMBLE_SIZE:
        return None
    return offset, length


@dataclass(frozen=True)
class Record:
    tag: bytes
    body: bytes
    #: File offset of the tag (counted from the start of the archive, also when streaming).
    offset: int
    #: False when the body fails its check: the framing may still be right, the content is not to be trusted.
    intact: bool = True

    @property
    def end(self) -> int:
        return self.offset + RECORD_OVERHEAD + len(self.body)


class RecordReader:
    """Reads records in order from any binary stream, tracking the offset (pipes have no ``tell``)."""

    def __init__(self, fileobj: BinaryIO, name: str, offset: int) -> None:
        self._f = fileobj
        self.name = name
        self.offset = offset

    def read_exact(self, n: int, what: str) -> bytes:
        chunks = []
        left = n
        while left:
            chunk = self._f.read(min(left, 1 << 24))
            if not chunk:
                raise FormatError(f"{self.name} is truncated (in {what})")
            chunks.append(chunk)
            left -= len(chunk)
        self.offset += n
        return b"".join(chunks)

    def next(self, what: str = "record") -> Record:
        """The next record; FormatError when its framing is unreadable (unknown tag, impossible length)."""
        at = self.offset
        head = self.read_exact(_RECORD_HEAD.size, what)
        tag, length = _RECORD_HEAD.unpack(head)
        limit = BODY_LIMITS.get(tag)
        if limit is None:
            raise FormatError(f"{self.name}: unknown record tag {tag!r} at offset {at}: archive is corrupt")
        if length > limit:
            raise FormatError(f"{self.name}: {_NAMES[tag]} at offset {at} claims {length} bytes "
                              f"(limit {limit}): archive is corrupt")
        body = self.read_exact(length, _NAMES[tag])
        (check,) = _CHECK.unpack(self.read_exact(_CHECK.size, _NAMES[tag]))
        return Record(tag, body, at, check == check32(head, body))

    def seek(self, offset: int) -> None:
        self._f.seek(offset)
        self.offset = offset


_NAMES = {TAG_DESCRIPTOR: "codec descriptor", TAG_TABLE: "member table", TAG_BLOCK: "data block",
          TAG_GROUP_END: "group end record", TAG_ARCHIVE_END: "archive end record", TAG_INDEX: "index"}


def record_name(tag: bytes) -> str:
    return _NAMES.get(tag, f"record {tag!r}")


# -- bodies -------------------------------------------------------------------------------------------------
def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data: bytes, what: str, max_array: int = MAX_ITEMS) -> Any:
    """Unpack untrusted msgpack with bounded containers and string map keys only."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True, max_str_len=MAX_STR,
                               max_bin_len=max(MAX_STR, len(data)), max_array_len=max(max_array, 16),
                               max_map_len=MAX_ITEMS, max_ext_len=0)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise FormatError(f"{what} is not valid: {type(exc).__name__}") from None


_ZC = zstandard.ZstdCompressor(level=19, write_content_size=True, write_checksum=False)
_ZC_LARGE = zstandard.ZstdCompressor(level=9, write_content_size=True, write_checksum=False)


def compress(data: bytes) -> bytes:
    """Tables and the index are zstd frames: level 19 while small (most are), 9 beyond 256 KiB so a table
    of 100,000 members does not cost seconds; the level depends only on the size, so output is stable."""
    return (_ZC if len(data) <= 256 << 10 else _ZC_LARGE).compress(data)


def decompress(data: bytes, limit: int, what: str) -> bytes:
    """Decompress one frame that must declare a content size within ``limit`` (no bomb gets allocated)."""
    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError:
        raise FormatError(f"{what} is not a valid zstd frame: archive is corrupt") from None
    size = params.content_size
    if size == zstandard.CONTENTSIZE_UNKNOWN or size > limit:
        raise FormatError(f"{what} declares an impossible size: archive is corrupt")
    try:
        out = zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
    except zstandard.ZstdError:
        raise FormatError(f"{what} does not decompress: archive is corrupt") from None
    if len(out) != size:
        raise FormatError(f"{what} does not decompress: archive is corrupt")
    return out
