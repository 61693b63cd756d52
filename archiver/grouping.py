"""How ``create`` arranges a tree into groups (format 2): duplicates found, small files packed solid.

Why: a codec's statistics carry from file to file only inside one stream, and a repeated file costs
nothing when it is stored once. Everything here is a pure function of the tree's names, sizes and bytes
(never of timing or worker count), so the same tree always gives the same groups and the same archive.

Order written: directories and empty files; solid groups of small files sorted by extension, then name,
then path (similar files side by side, as 7-Zip does); large files one group each in tree order; symlinks
and hardlinks last. A duplicate joins its original's group as a reference.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Callable, Iterator

import xxhash

from .members import DIR, FILE, HARDLINK, SYMLINK
from .walk import Source

#: Files at least this large are a group of their own (coded block by block, streamed); smaller ones go
#: into solid groups. 1 MiB since lm codes a block as segments of 1 MiB: a large file in the same stream as
#: the small ones lets the model carry what it learnt across them (lodash: its 540 KB lodash.js repeats the
#: code of its 1,000 module files; default level, tar|xz -9e = 180,084 bytes: 153,294 with a 64 KiB limit,
#: 110,028 with 1 MiB; uriparser-doc 114,263 -> 110,844).
DEFAULT_SOLID_LIMIT = 1 << 20
#: A level may use another limit (none does now). ``fast`` had 64 KiB while its sample estimate, blind to
#: long repeats, picked PPMd order 6 over lzma for groups with a large file in them (Markdown tree: 234,985
#: bytes at 1 MiB, 217,533 at 64 KiB); with PPMd at order 10 one 1 MiB-limit group is smaller than
#: ``tar | xz -9e`` on every benchmark tree (0.90-0.98 x) and faster to make (docs/BENCHMARKS.md).
LEVEL_SOLID_LIMIT: dict[str, int] = {}
#: Files that are not text ("binary", "raw") join a solid group only under this size, whatever the solid limit:
#: unrelated binary formats share little, and each keeps the codec its own trial picks (../shared/corpus: its
#: seven binary files of 38 KB-1 MB in one lm group took 346,766 bytes against 331,830 coded one by one).
BINARY_SOLID_LIMIT = 64 << 10
#: Largest solid group (raw bytes): an lm block, so at the default level a group is one model stream.
DEFAULT_SOLID_SIZE = 16 << 20
#: ...per level. Fast codes with classical codecs, and a group is one task: with 16 MiB groups, 20,000 small
#: files (16.5 MB) were coded by one worker while the other idled. Groups of 4 MiB code in parallel (each
#: still much larger than the files in it; PPMd, fast's usual choice, learns less across 4 MiB than 16).
LEVEL_SOLID_SIZE = {"fast": 4 << 20}
MAX_SOLID_SIZE = 256 << 20
_READ = 1 << 20


@dataclass
class GroupingOptions:
    solid: bool = True
    #: Files of at least this many bytes get a group of their own (None: the level's, :func:`solid_limit_for`).
    solid_limit: int | None = None
    #: Largest solid group in raw bytes (None: the level's, :func:`solid_size_for`).
    solid_size: int | None = None
    dedup: bool = True

    def limit_at(self, level: str) -> int:
        """The solid limit in force at ``level``: the one given, else the level's; 0 without solid groups."""
        if not self.solid:
            return 0
        return solid_limit_for(level) if self.solid_limit is None else self.solid_limit

    def size_at(self, level: str) -> int:
        """The largest solid group at ``level``: the one given, else the level's."""
        return solid_size_for(level) if self.solid_size is None else self.solid_size


@dataclass
class Group:
    """Members written together. ``data`` is the solid group's content (None: a large file, streamed).

    ``refs`` maps a member's position in ``members`` to the position of the original it repeats.
    """

    kind: str  # "meta", "solid", "large", "links"
    members: list[Source]
    data: bytes | None = None
    refs: dict[int, int] = field(default_factory=dict)
    #: xxh3_64 of each data member read here (small files), by position.
    hashes: dict[int, int] = field(default_factory=dict)
    errors: list[tuple[Source, str]] = field(default_factory=list)
    #: Warnings for single members, by position (a file that changed while it was read).
    notes: dict[int, list[str]] = field(default_factory=dict)
    #: A large file's XXH3-128 when its duplicates were found: they are references to what its plan reads
    #: (or streams), so the writer compares the two and says so when the file changed in between.
    dup_digest: bytes | None = None


def solid_limit_for(level: str) -> int:
    """The solid limit a level uses when none is given."""
    return LEVEL_SOLID_LIMIT.get(level, DEFAULT_SOLID_LIMIT)


def solid_size_for(level: str) -> int:
    """The largest solid group a level makes when none is given."""
    return LEVEL_SOLID_SIZE.get(level, DEFAULT_SOLID_SIZE)


def _ext_key(src: Source) -> tuple[str, str, str]:
    base = posixpath.basename(src.info.path)
    stem, dot, ext = base.rpartition(".")
    return (ext.lower() if dot and stem else "", base, src.info.path)


def _same_content(a: str, b: str) -> bool:
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x, y = fa.read(_READ), fb.read(_READ)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return False


def _digest(path: str) -> tuple[bytes | None, bytes | None]:
    """(XXH3-128 of the file's bytes, or None when it cannot be read; the bytes too when they came in one read)."""
    h = xxhash.xxh3_128()
    chunks: list[bytes] = []
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_READ), b""):
                h.update(chunk)
                if len(chunks) < 2:
                    chunks.append(chunk)
    except OSError:
        return None, None
    return h.digest(), (chunks[0] if len(chunks) == 1 else None)


#: Bytes of small files that :func:`find_duplicates` keeps from its reads for :func:`plan_groups`, which would
#: otherwise open and read each of them again (20,000 files of ~1 KB: ~1 s on this machine's disk).
KEEP_LIMIT = 64 << 20


def find_duplicates(files: list[Source], keep: dict[int, bytes] | None = None, keep_below: int = 0,
                    digests: dict[int, bytes] | None = None) -> dict[int, int]:
    """Positions of files whose content equals an earlier file's (same size and XXH3-128, then byte for
    byte): duplicate position -> original position. Only files sharing a size with another are read.

    ``keep``, when given, receives the bytes read of files at positions below ``keep_below`` (up to
    :data:`KEEP_LIMIT` bytes in all), by position; ``digests`` the XXH3-128 of every original that has a
    duplicate, by position (what the duplicates were matched on: a file may change before it is archived)."""
    kept = 0
    by_size: dict[int, list[int]] = {}
    for i, src in enumerate(files):
        if src.info.size > 0:
            by_size.setdefault(src.info.size, []).append(i)
    dups: dict[int, int] = {}
    for positions in by_size.values():
        if len(positions) < 2:
            continue
        originals: dict[bytes, list[int]] = {}
        for i in positions:
            digest, data = _digest(files[i].fs_path)
            if digest is None:
                continue
            if keep is not None and data is not None and i < keep_below and kept + len(data) <= KEEP_LIMIT:
                keep[i] = data
                kept += len(data)
            for o in originals.get(digest, []):
                if _same_content(files[o].fs_path, files[i].fs_path):
                    dups[i] = o
                    if digests is not None:
                        digests[o] = digest
                    break
            else:
                originals.setdefault(digest, []).append(i)
    return dups


def plan_groups(sources: list[Source], opts: GroupingOptions,
                classify: Callable[[bytes], str], level: str = "default") -> Iterator[Group]:
    """Yield the groups of ``sources`` in archive order, reading small files as their group fills.

    ``classify(data)`` says which pool a small file joins: "solid" (compressible, for the shared stream),
    "raw" (does not compress: packed apart so it neither slows nor dilutes the text stream), "binary" or "alone"
    (a domain codec such as image or audio wants the whole file).
    """
    meta = [s for s in sources if s.info.type == DIR or (s.info.type == FILE and s.info.size == 0)]
    links = [s for s in sources if s.info.type in (SYMLINK, HARDLINK)]
    files = [s for s in sources if s.info.type == FILE and s.info.size > 0]
    limit = opts.limit_at(level)
    solid_size = opts.size_at(level)
    small = sorted((s for s in files if s.info.size < limit), key=_ext_key)
    large = [s for s in files if s.info.size >= limit]
    ordered = small + large
    read: dict[int, bytes] = {}  # small files' bytes as the duplicate search read them
    digests: dict[int, bytes] = {}
    dups = find_duplicates(ordered, read, len(small), digests) if opts.dedup else {}
    for d in dups:
        read.pop(d, None)
    followers: dict[int, list[int]] = {}
    for d, o in sorted(dups.items()):
        followers.setdefault(o, []).append(d)

    if meta:
        yield Group("meta", meta)
    pools: dict[str, Group] = {}
    pool_bytes: dict[str, list[bytes]] = {}
    pool_size: dict[str, int] = {}

    def place(src: Source, data: bytes, copies: list[Source], notes: list[str]) -> Iterator[Group]:
        """Put one small file (and the duplicates that refer to it) into its pool, yielding a full group."""
        if not data:  # emptied since the walk: a group without data, like the empty files' (a reader
            empty = Group("meta", [src])  # takes a group with one data member to list it first)
            if notes:
                empty.notes[0] = notes
            yield empty
            return
        kind = classify(data)
        if kind != "solid" and len(data) >= BINARY_SOLID_LIMIT:
            kind = "alone"
        if kind == "alone":
            alone = Group("solid", [src], data, hashes={0: xxhash.xxh3_64_intdigest(data)})
            if notes:
                alone.notes[0] = notes
            yield _with_refs(alone, 0, copies)
            return
        g = pools.get(kind)
        if g is not None and len(g.members) and pool_size[kind] + len(data) > solid_size:
            yield _close(g, pool_bytes.pop(kind))
            g = None
        if g is None:
            g = pools[kind] = Group("solid", [])
            pool_bytes[kind] = []
            pool_size[kind] = 0
        pool_size[kind] += len(data)
        at = len(g.members)
        g.hashes[at] = xxhash.xxh3_64_intdigest(data)
        if notes:
            g.notes[at] = notes
        g.members.append(src)
        pool_bytes[kind].append(data)
        _with_refs(g, at, copies)

    def read_and_place(src: Source, kept: bytes | None, copies: list[Source],
                       digest: bytes | None) -> Iterator[Group]:
        """Read one small file and place it with the duplicates matched on ``digest``; when it cannot be
        read, or no longer has that digest, the duplicates are read and placed on their own."""
        try:
            data, changed = _read_small(src, kept)
        except OSError as exc:
            yield _unreadable(src, exc)
            data, changed = None, False
        if data is None or (copies and xxhash.xxh3_128_digest(data) != digest):
            alone, copies = copies, []
        else:
            alone = []
        if data is not None:
            yield from place(src, data, copies, [CHANGED] if changed else [])
        for copy in alone:
            yield from read_and_place(copy, None, [], None)

    for pos, src in enumerate(ordered):
        if pos in dups:
            continue
        copies = [ordered[d] for d in followers.get(pos, [])]
        if pos >= len(small):
            yield _with_refs(Group("large", [src], dup_digest=digests.get(pos)), 0, copies)
            continue
        yield from read_and_place(src, read.pop(pos, None), copies, digests.get(pos))
    for kind in sorted(pools):
        if pools[kind].members:
            yield _close(pools[kind], pool_bytes[kind])
    if links:
        yield Group("links", links)


#: The warning for a file whose size or bytes changed between the walk (or the duplicate search) and its read.
CHANGED = "file changed while it was being archived"


def _read_small(src: Source, kept: bytes | None) -> tuple[bytes, bool]:
    """A small file's bytes (``kept``: as the duplicate search read them) and whether its size differs from
    the walk's. At most the walked size is kept, as tar does: a file that grows (a log being written) is
    archived as it was when walked, and cannot swell a solid group without bound; one that shrank is archived
    as it is. ``src.info.size`` becomes the size archived."""
    want = src.info.size
    data = kept
    if data is None:
        with open(src.fs_path, "rb") as f:
            data = f.read(want + 1)
    changed = len(data) != want
    data = data[:want]
    src.info.size = len(data)
    return data, changed


def _unreadable(src: Source, exc: OSError) -> Group:
    """An empty group that carries the error of a file that could not be read."""
    failed = Group("solid", [])
    failed.errors.append((src, f"cannot read: {exc.strerror or exc}"))
    return failed


def _with_refs(g: Group, at: int, copies: list[Source]) -> Group:
    """``g`` with ``copies`` appended as references to its member at position ``at``."""
    for copy in copies:
        g.refs[len(g.members)] = at
        g.members.append(copy)
    return g


def _close(g: Group, parts: list[bytes]) -> Group:
    g.data = b"".join(parts)
    return g
