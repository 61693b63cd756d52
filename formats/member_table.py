"""Format 2 member tables (``T`` records): the members of one group in compact columns (``SPEC.md``).

Why columns: paths share prefixes and directories, modes and times repeat; stored column by column,
front coded and compressed as a whole, a member's metadata costs tens of bytes instead of hundreds.
:func:`decode_table` is the one place that turns an untrusted table into typed values; it checks every
column's length and type and every rule a reader can check without the data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from lmar.errors import FormatError

from .limits import MAX_STR
from .records import compress, decompress, pack, unpack

#: Member kinds by their code in the ``type`` column.
KIND_CODES = {"file": 0, "dir": 1, "symlink": 2, "hardlink": 3}
KIND_NAMES = {v: k for k, v in KIND_CODES.items()}
MAX_TABLE_MEMBERS = 1_000_000
MAX_TABLE_BYTES = 64 << 20
_NS = 1_000_000_000
#: An owner as a table records it: (user id, group id, user name, group name); a name is "" when unknown.
Owner = tuple[int, int, str, str]
MAX_OWNER_ID = (1 << 32) - 1
MAX_OWNER_NAME = 255


@dataclass
class TableMember:
    """One member as a table stores it; ``ref`` is the member number whose content this file repeats."""

    path: str
    kind: str
    mode: int = 0o644
    mtime_ns: int = 0
    size: int = 0
    link: str = ""
    ref: int | None = None
    refd: int = 0
    owner: Owner | None = None

    @property
    def has_data(self) -> bool:
        """Whether this member's content is part of its group's data."""
        return self.kind == "file" and self.ref is None


@dataclass
class Table:
    group: int
    codec: int | None
    members: list[TableMember]
    trials: dict[str, int] = field(default_factory=dict)

    @property
    def data_size(self) -> int:
        return sum(m.size for m in self.members if m.has_data)

    def file_members(self) -> list[int]:
        return [i for i, m in enumerate(self.members) if m.kind == "file"]


def front_code(paths: Iterable[str]) -> tuple[list[int], list[bytes]]:
    """Each path as (bytes shared with the previous one, the rest)."""
    pfx: list[int] = []
    sfx: list[bytes] = []
    prev = b""
    for path in paths:
        cur = path.encode("utf-8", "surrogateescape")
        n = _shared(prev, cur, min(len(prev), len(cur), 65535))
        pfx.append(n)
        sfx.append(cur[n:])
        prev = cur
    return pfx, sfx


def _shared(a: bytes, b: bytes, limit: int) -> int:
    """Length of the common prefix of ``a`` and ``b``, at most ``limit``: a binary search over slice
    comparisons (each in C), since a byte-by-byte loop cost ~17 us per path of a deep tree (0.35 s for
    20,000 files)."""
    if a[:limit] == b[:limit]:
        return limit
    lo, hi = 0, limit  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def front_decode(pfx: Any, sfx: Any, count: int, what: str) -> list[str]:
    if not (isinstance(pfx, list) and isinstance(sfx, list) and len(pfx) == len(sfx) == count):
        raise FormatError(f"{what}: path columns are corrupt")
    out: list[str] = []
    prev = b""
    for n, rest in zip(pfx, sfx):
        if not isinstance(n, int) or isinstance(n, bool) or not isinstance(rest, bytes) or not 0 <= n <= len(prev):
            raise FormatError(f"{what}: path columns are corrupt")
        cur = prev[:n] + rest
        if len(cur) > MAX_STR:
            raise FormatError(f"{what}: a path is longer than {MAX_STR} bytes: archive is corrupt")
        try:
            out.append(cur.decode("utf-8"))
        except UnicodeDecodeError:
            raise FormatError(f"{what}: a path is not valid UTF-8: archive is corrupt") from None
        prev = cur
    return out


def encode_table(table: Table) -> bytes:
    """The ``T`` record body for ``table`` (writers only; nothing is validated, so tests can craft hostile tables)."""
    ms = table.members
    pfx, sfx = front_code(m.path for m in ms)
    mts: list[int] = []
    prev = 0
    for m in ms:
        sec = m.mtime_ns // _NS
        mts.append(sec - prev)
        prev = sec
    doc: dict[str, Any] = {
        "group": table.group, "codec": table.codec, "count": len(ms),
        "type": bytes(KIND_CODES.get(m.kind, 255) for m in ms), "pfx": pfx, "sfx": sfx,
        "mode": [m.mode for m in ms], "mts": mts, "mtn": [m.mtime_ns % _NS for m in ms],
        "size": [m.size for m in ms if m.kind == "file"],
        "link": [m.link for m in ms if m.kind in ("symlink", "hardlink")],
    }
    if any(m.owner is not None for m in ms):
        doc["own"], doc["owner"] = _owner_columns(ms)
    refs = [[i, m.ref] for i, m in enumerate(ms) if m.ref is not None]
    if refs:
        doc["ref"] = refs
    refd = [[i, m.refd] for i, m in enumerate(ms) if m.refd]
    if refd:
        doc["refd"] = refd
    if table.trials:
        doc["trials"] = dict(sorted(table.trials.items()))
    return compress(pack(doc))


def _owner_columns(ms: Sequence[TableMember]) -> tuple[list[list[Any]], list[int | None]]:
    """The distinct owners in order of first use, and each member's index into them (None: not recorded)."""
    own: list[list[Any]] = []
    index: dict[Owner, int] = {}
    column: list[int | None] = []
    for m in ms:
        owner = _recordable(m.owner)
        if owner is None:
            column.append(None)
            continue
        if owner not in index:
            index[owner] = len(own)
            own.append(list(owner))
        column.append(index[owner])
    return own, column


def _owner_id_ok(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_OWNER_ID


def _owner_name_ok(v: Any) -> bool:
    return isinstance(v, str) and len(v) <= MAX_OWNER_NAME


def _recordable(owner: Owner | None) -> Owner | None:
    """``owner`` within what readers accept (the same checks): a name over the limit is dropped (""), ids
    outside 0..2^32-1 leave the owner unrecorded; so whatever a system reports, the archive stays readable."""
    if owner is None or not (_owner_id_ok(owner[0]) and _owner_id_ok(owner[1])):
        return None
    uid, gid, user, group = owner
    return (uid, gid, user if _owner_name_ok(user) else "", group if _owner_name_ok(group) else "")


def _owners(own: Any, column: Any, count: int, what: str) -> list[Owner | None]:
    """The ``own``/``owner`` columns checked (both absent: nothing recorded)."""
    if own is None and column is None:
        return [None] * count
    bad = FormatError(f"{what}: owner columns are corrupt")
    if not isinstance(own, list) or not isinstance(column, list) or len(column) != count or len(own) > count:
        raise bad
    owners: list[Owner] = []
    for o in own:
        if not (isinstance(o, list) and len(o) == 4 and all(map(_owner_id_ok, o[:2]))
                and all(map(_owner_name_ok, o[2:]))):
            raise bad
        owners.append((o[0], o[1], o[2], o[3]))
    out: list[Owner | None] = []
    for k in column:
        if k is None:
            out.append(None)
        elif isinstance(k, int) and not isinstance(k, bool) and 0 <= k < len(owners):
            out.append(owners[k])
        else:
            raise bad
    return out


def _ints(value: Any, count: int, what: str, lo: int | None = None, hi: int | None = None) -> list[int]:
    if not isinstance(value, list) or len(value) != count or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise FormatError(f"{what} is corrupt")
    if (lo is not None and any(v < lo for v in value)) or (hi is not None and any(v > hi for v in value)):
        raise FormatError(f"{what} is out of range: archive is corrupt")
    return value


def _pairs(value: Any, what: str) -> list[tuple[int, int]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in p)
            for p in value):
        raise FormatError(f"{what} is corrupt")
    return [(p[0], p[1]) for p in value]


def decode_table(body: bytes, what: str, first_member: int) -> Table:
    """Parse an untrusted ``T`` body; ``first_member`` is the member number of its first member."""
    doc = unpack(decompress(body, MAX_TABLE_BYTES, what), what, max_array=MAX_TABLE_MEMBERS)
    if not isinstance(doc, dict):
        raise FormatError(f"{what} is not a map: archive is corrupt")
    count = doc.get("count")
    group = doc.get("group")
    codec = doc.get("codec")
    kinds = doc.get("type")
    if (not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_TABLE_MEMBERS
            or not isinstance(group, int) or isinstance(group, bool)
            or not (codec is None or (isinstance(codec, int) and not isinstance(codec, bool) and codec >= 0))
            or not isinstance(kinds, bytes) or len(kinds) != count):
        raise FormatError(f"{what}: table header is corrupt")
    paths = front_decode(doc.get("pfx"), doc.get("sfx"), count, what)
    modes = _ints(doc.get("mode"), count, f"{what}: mode column", 0)
    mts = _ints(doc.get("mts"), count, f"{what}: time column")
    mtn = _ints(doc.get("mtn"), count, f"{what}: time column", 0, _NS - 1)
    n_files = sum(1 for k in kinds if k == 0)
    n_links = sum(1 for k in kinds if k in (2, 3))
    sizes = _ints(doc.get("size"), n_files, f"{what}: size column", 0, (1 << 63) - 1)
    links = doc.get("link")
    if not isinstance(links, list) or len(links) != n_links or not all(isinstance(x, str) for x in links):
        raise FormatError(f"{what}: link column is corrupt")
    owners = _owners(doc.get("own"), doc.get("owner"), count, what)
    members: list[TableMember] = []
    sec = 0
    it_size, it_link = iter(sizes), iter(links)
    for i in range(count):
        sec += mts[i]
        kind = KIND_NAMES.get(kinds[i], f"unknown-{kinds[i]}")
        m = TableMember(paths[i], kind, modes[i] & 0o7777, sec * _NS + mtn[i], owner=owners[i])
        if kind == "file":
            m.size = next(it_size)
        elif kind in ("symlink", "hardlink"):
            m.link = next(it_link)
        members.append(m)
    for i, target in _pairs(doc.get("ref"), f"{what}: ref column"):
        if not 0 <= i < count or members[i].kind != "file" or members[i].ref is not None:
            raise FormatError(f"{what}: a deduplication reference names no file of the table: archive is corrupt")
        if not 0 <= target < first_member + i:
            raise FormatError(f"{members[i].path}: deduplicated from member {target}, which is not an earlier "
                              f"member: archive is corrupt")
        members[i].ref = target
    for i, k in _pairs(doc.get("refd"), f"{what}: refd column"):
        if not 0 <= i < count or not members[i].has_data or not 0 < k <= MAX_TABLE_MEMBERS * 64:
            raise FormatError(f"{what}: refd column is corrupt")
        members[i].refd = k
    trials = doc.get("trials", {})
    if not isinstance(trials, dict):
        trials = {}
    clean = {str(k): v for k, v in trials.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0}
    if codec is None and any(m.has_data and m.size for m in members):
        raise FormatError(f"{what}: files with data but no codec: archive is corrupt")
    return Table(group, codec, members, clean)


def paths_of(tables: Sequence[Table]) -> list[str]:
    return [m.path for t in tables for m in t.members]
