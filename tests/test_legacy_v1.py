"""The format 1.0 layer (legacy, read only) on its own: framing, index, and refusing hostile bytes before allocating.

A reader meets untrusted input first here, so each limit in ``lmar.formats.limits`` gets a test that a
length beyond it is refused with a :class:`FormatError`, not a huge allocation or a crash.
"""
from __future__ import annotations

import io
import struct
import tracemalloc

import msgpack
import pytest
import xxhash

import lmar
from lmar.errors import FormatError, LmarError
from lmar.formats.container import open_container
from lmar.formats.legacy_v1 import FOOTER_SIZE, MAGIC, TAG_BLOCK, TAG_HEADER, BlockRecord, MemberEnd
from v1_writer import ContainerWriter, pack


def ContainerReader(f):  # noqa: N802 - the legacy reader behind the preamble dispatch, as lmar.open uses it
    return open_container(f, "archive")
from lmar.formats.limits import MAX_BLOCK, MAX_HEADER

from conftest import archive_bytes, read_all


def _two_members() -> bytes:
    buf = io.BytesIO()
    w = ContainerWriter(buf)
    for name, data in (("a", b"hello"), ("b", b"")):
        w.begin_member({"path": name, "type": "file"})
        if data:
            w.write_block(len(data), data, xxhash.xxh3_64_intdigest(data))
        w.end_member(len(data), xxhash.xxh3_128_digest(data))
    w.close()
    return buf.getvalue()


def test_writer_reader_round_trip_with_index():
    """Records written in order come back in order, and the index points at each header."""
    data = _two_members()
    assert data.startswith(MAGIC)
    r = ContainerReader(io.BytesIO(data))
    index = r.read_index()
    assert [e["path"] for e in index] == ["a", "b"]
    assert index[0]["size"] == 5 and index[0]["stored_size"] == 5 and index[0]["blocks"] == 1
    r.seek(index[1]["offset"])
    assert r.next_header()["path"] == "b"


def test_streaming_reader_needs_no_seek():
    """A pipe cannot seek: the reader must scan headers and blocks in order and find the end marker."""

    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._b = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # short reads on purpose
            chunk = self._b.read(min(len(b), 3))
            b[:len(chunk)] = chunk
            return len(chunk)

        def seekable(self) -> bool:
            return False

        def seek(self, *a):
            raise OSError("not seekable")

    r = ContainerReader(Pipe(_two_members()))
    assert r.read_index() is None
    h = r.next_header()
    recs = list(r.iter_blocks(h["path"]))
    assert isinstance(recs[0], BlockRecord) and recs[0].stored == b"hello" and recs[0].intact
    assert isinstance(recs[-1], MemberEnd) and recs[-1].size == 5
    h = r.next_header()
    assert h["path"] == "b"
    assert [type(x) for x in r.iter_blocks("b")] == [MemberEnd]
    assert r.next_header() is None


def test_writer_is_deterministic():
    """Same records in, same bytes out (archives must be reproducible)."""
    assert _two_members() == _two_members()


def test_bad_magic_is_refused():
    with pytest.raises(FormatError, match="not an lmar archive"):
        ContainerReader(io.BytesIO(b"PK\x03\x04" + b"\0" * 100))


def test_empty_and_short_input_is_truncated_error():
    for data in (b"", MAGIC[:5], MAGIC):
        with pytest.raises(FormatError, match="truncated"):
            ContainerReader(io.BytesIO(data))


def test_higher_major_version_says_upgrade_or_damage():
    """A v1 preamble whose major version reads 3: without a format 2 preamble check it is damage."""
    data = bytearray(_two_members())
    struct.pack_into("<H", data, len(MAGIC), 3)
    with pytest.raises(LmarError, match="preamble is damaged"):
        lmar.open(io.BytesIO(bytes(data)))


def test_higher_minor_version_is_read():
    """Minor versions are forward compatible: a 1.7 archive still opens."""
    buf = io.BytesIO()
    w = ContainerWriter(buf)
    w.begin_member({"path": "x", "type": "file", "size": 5,
                    "codec": {"name": "store", "version": 1, "params": {}, "provider": "lmar"}})
    w.write_block(5, b"minor", xxhash.xxh3_64_intdigest(b"minor"))
    w.end_member(5, xxhash.xxh3_128_digest(b"minor"))
    w.close()
    data = bytearray(buf.getvalue())
    struct.pack_into("<H", data, len(MAGIC) + 2, 7)
    assert read_all(bytes(data)) == {"x": b"minor"}


def _preamble() -> bytes:
    buf = io.BytesIO()
    ContainerWriter(buf)
    return buf.getvalue()


def test_huge_header_length_is_refused_without_allocating():
    """A header claiming 4 GiB must be refused from its length alone."""
    data = _preamble() + TAG_HEADER + struct.pack("<I", 0xFFFFFFFF) + b"\x80"
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="claims"):
            ContainerReader(io.BytesIO(data)).next_header()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    # The same through the archive API (no index: scanning).
    with pytest.raises(LmarError):
        lmar.open(io.BytesIO(data)).getmembers()


def test_header_just_over_limit_is_refused():
    data = _preamble() + TAG_HEADER + struct.pack("<I", MAX_HEADER + 1)
    with pytest.raises(FormatError, match="limit"):
        ContainerReader(io.BytesIO(data)).next_header()


@pytest.mark.parametrize("raw_len, stored_len", [(0, 1), (MAX_BLOCK + 1, 1), (1, 0xFFFFFFFF)])
def test_impossible_block_sizes_are_refused(raw_len, stored_len):
    body = pack({"path": "f", "type": "file"})
    data = (_preamble() + TAG_HEADER + struct.pack("<I", len(body)) + body
            + TAG_BLOCK + struct.pack("<IIQQ", raw_len, stored_len, 0, 0))
    r = ContainerReader(io.BytesIO(data))
    r.next_header()
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="impossible sizes"):
            list(r.iter_blocks("f"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_index_claiming_huge_length_is_ignored_and_archive_scanned():
    """A footer whose index length does not fit the file is not trusted; the records are scanned instead."""
    data = bytearray(archive_bytes({"a": b"x" * 100, "b": b"y"}))
    magic, off, length, digest = struct.unpack_from("<8sQQQ", data, len(data) - FOOTER_SIZE)
    struct.pack_into("<8sQQQ", data, len(data) - FOOTER_SIZE, magic, off, 1 << 40, digest)
    r = ContainerReader(io.BytesIO(bytes(data)))
    assert r.read_index() is None
    with lmar.open(io.BytesIO(bytes(data))) as reader:
        assert not reader.indexed
    assert read_all(bytes(data)) == {"a": b"x" * 100, "b": b"y"}


def test_non_string_map_keys_are_refused():
    """Member headers are maps with string keys; an integer key is a corrupt (or hostile) archive."""
    body = msgpack.packb({1: "x", "path": "f"})
    data = _preamble() + TAG_HEADER + struct.pack("<I", len(body)) + body
    with pytest.raises(FormatError, match="not valid"):
        ContainerReader(io.BytesIO(data)).next_header()


def test_non_string_keys_in_index_give_a_clean_error(tmp_path):
    """The writer does not police header keys, so a crafted archive can carry them into the index too."""
    path = tmp_path / "keys.lmar"
    with open(path, "wb") as f:
        w = ContainerWriter(f)
        w.begin_member({"path": "f", "type": "dir", 7: "seven"})
        w.end_member(0, xxhash.xxh3_128_digest(b""))
        w.close()
    with pytest.raises(LmarError):
        with lmar.open(path) as reader:
            reader.getmembers()


@pytest.mark.parametrize("header", [
    ["not", "a", "map"],
    {"type": "file"},  # no path
    {"path": 5, "type": "file"},
    {"path": "f", "type": "file"},  # file without codec
    {"path": "f", "type": "file", "codec": "zlib"},
    {"path": "f", "type": "dir", "size": -1},
    {"path": "f", "type": "dir", "mode": True},
    {"path": "f", "type": "dir", "mode": "0644"},
])
def test_malformed_headers_are_format_errors(header):
    body = pack(header)
    data = _preamble() + TAG_HEADER + struct.pack("<I", len(body)) + body + b"E"
    with pytest.raises(LmarError):
        with lmar.open(io.BytesIO(data)) as reader:
            for _info, read in reader.iter_members():
                b"".join(read())


def test_writer_refuses_blocks_outside_limits():
    w = ContainerWriter(io.BytesIO())
    w.begin_member({"path": "f", "type": "file"})
    with pytest.raises(FormatError):
        w.write_block(0, b"", 0)
    with pytest.raises(FormatError):
        w.write_block(MAX_BLOCK + 1, b"x", 0)


def test_writer_refuses_oversized_header():
    w = ContainerWriter(io.BytesIO())
    with pytest.raises(FormatError, match="too large"):
        w.begin_member({"path": "f", "type": "file", "junk": "x" * (MAX_HEADER + 1)})
