"""A format 1.0 writer, for tests only: lmar writes format 2; the tests still craft v1 inputs for the legacy reader."""
from __future__ import annotations

from typing import Any, BinaryIO

import msgpack
import xxhash

from lmar.errors import FormatError
from lmar.formats.legacy_v1 import (_BLOCK, _FOOTER, _LEN32, _LEN64, _PREAMBLE, FOOTER_MAGIC, FORMAT_MAJOR,
                                    FORMAT_MINOR, MAGIC, TAG_ARCHIVE_END, TAG_BLOCK, TAG_END, TAG_HEADER,
                                    TAG_INDEX)
from lmar.formats.limits import MAX_BLOCK, MAX_HEADER, MAX_STORED_BLOCK


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


class _CountingWriter:
    """Tracks the offset ourselves so writing to a pipe (no tell()) still yields a correct index."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._f = fileobj
        self.offset = 0

    def write(self, data: bytes) -> None:
        self._f.write(data)
        self.offset += len(data)


class ContainerWriter:
    """Emits records in order. The caller (the archive layer) decides what a member contains."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._out = _CountingWriter(fileobj)
        self._index: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None
        self._out.write(_PREAMBLE.pack(MAGIC, FORMAT_MAJOR, FORMAT_MINOR))

    def begin_member(self, header: dict[str, Any]) -> None:
        if self._current is not None:
            raise RuntimeError("begin_member() while a member is open")
        body = pack(header)
        if len(body) > MAX_HEADER:
            raise FormatError(f"member header too large ({len(body)} bytes): {header.get('path')!r}")
        self._current = {"header": header, "offset": self._out.offset, "blocks": 0, "stored": 0,
                         "header_xxh3_64": xxhash.xxh3_64_intdigest(body)}
        self._out.write(TAG_HEADER + _LEN32.pack(len(body)) + body)

    def write_block(self, raw_len: int, stored: bytes, raw_xxh64: int) -> None:
        if self._current is None:
            raise RuntimeError("write_block() outside a member")
        if not 0 < raw_len <= MAX_BLOCK or len(stored) > MAX_STORED_BLOCK:
            raise FormatError(f"block of {raw_len} raw / {len(stored)} stored bytes exceeds the format limits")
        self._out.write(TAG_BLOCK + _BLOCK.pack(raw_len, len(stored), xxhash.xxh3_64_intdigest(stored), raw_xxh64))
        self._out.write(stored)
        self._current["blocks"] += 1
        self._current["stored"] += len(stored)

    def end_member(self, size: int, xxh3_128: bytes) -> None:
        if self._current is None:
            raise RuntimeError("end_member() outside a member")
        cur = self._current
        body = pack({"size": size, "xxh3_128": xxh3_128, "header_xxh3_64": cur["header_xxh3_64"]})
        self._out.write(TAG_END + _LEN32.pack(len(body)) + body)
        self._index.append({**cur["header"], "size": size, "xxh3_128": xxh3_128, "offset": cur["offset"],
                            "blocks": cur["blocks"], "stored_size": cur["stored"]})
        self._current = None

    def close(self) -> None:
        """Write the end marker, the index and the footer. The caller closes the file."""
        if self._current is not None:
            raise RuntimeError("close() while a member is open")
        self._out.write(TAG_ARCHIVE_END)
        body = pack(self._index)
        index_offset = self._out.offset
        self._out.write(TAG_INDEX + _LEN64.pack(len(body)) + body)
        self._out.write(_FOOTER.pack(FOOTER_MAGIC, index_offset, len(body), xxhash.xxh3_64_intdigest(body)))


