"""Crafting format 2 archives member by member, straight through the format layer (no archiver checks).

Each member becomes a group of its own, so tests written for per-member records keep their shape:
``begin_member(header)``, ``write_block(raw_len, stored, raw_xxh64)``, ``end_member(size, digest, xxh64)``.
This is how hostile archives are made.
"""
from __future__ import annotations

from typing import Any, BinaryIO

import xxhash

from lmar.formats.container import ContainerWriter
from lmar.formats.member_table import Table, TableMember


class MemberWriter:
    def __init__(self, fileobj: BinaryIO) -> None:
        self.w = ContainerWriter(fileobj)
        self._header: dict[str, Any] | None = None
        self._blocks: list[tuple[int, bytes, int]] = []

    def begin_member(self, header: dict[str, Any]) -> None:
        self._header = dict(header)
        self._blocks = []

    def write_block(self, raw_len: int, stored: bytes, raw_xxh64: int) -> None:
        self._blocks.append((raw_len, stored, raw_xxh64))

    def end_member(self, size: int, xxh3_128: bytes | None = None, xxh64: int | None = None,
                   table_size: int | None = None) -> None:
        h = self._header
        assert h is not None
        codec_id = None
        if "codec" in h:
            c = h["codec"]
            codec_id = self.w.descriptor({"name": c["name"], "version": c.get("version", 1),
                                          "params": c.get("params", {}), "provider": c.get("provider", ""),
                                          "info": c.get("info", {})})
        kind = h.get("type", "file")
        member = TableMember(h["path"], kind, h.get("mode", 0o644), h.get("mtime_ns", 0),
                             h.get("size", size) if table_size is None else table_size, h.get("link", ""))
        self.w.begin_group(Table(self.w.next_group, codec_id, [member]))
        for raw_len, stored, raw_xxh64 in self._blocks:
            self.w.block(raw_len, stored, raw_xxh64)
        if xxh64 is None:
            if not self._blocks:
                xxh64 = xxhash.xxh3_64_intdigest(b"")
            elif len(self._blocks) == 1:
                xxh64 = self._blocks[0][2]
            else:
                raise ValueError("several blocks: pass the member's xxh64")
        self.w.end_group([xxh64] if kind == "file" else [], size)
        self._header = None

    def close(self) -> None:
        self.w.close()
