"""What one archive member is: its metadata and the codec that coded it, checked on the way in and out.

The format layer hands us untrusted dicts; :func:`MemberInfo.from_header` is the one place that turns them
into typed values, so every other module can trust a ``MemberInfo``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import FormatError

FILE, DIR, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"
TYPES = (FILE, DIR, SYMLINK, HARDLINK)


@dataclass
class CodecRef:
    """The codec that coded a member: enough to rebuild it exactly, and to name what is missing."""

    name: str
    version: int
    params: dict[str, Any]
    provider: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": self.params, "provider": self.provider,
                "info": self.info}


@dataclass
class MemberInfo:
    path: str
    type: str
    mode: int = 0o644
    mtime_ns: int = 0
    size: int = 0
    link: str = ""
    codec: CodecRef | None = None
    #: Trial results: codec name -> [size in bytes, how it was measured ("full", "sample", or a skip reason)].
    candidates: dict[str, list[Any]] = field(default_factory=dict)
    # Filled from the index / end record when known:
    xxh3_128: bytes | None = None
    stored_size: int | None = None
    offset: int | None = None
    # Format 2 facts:
    #: The group (solid block or single file) that holds this member, and the member's archive-wide number.
    group: int | None = None
    number: int | None = None
    #: The path of the earlier member whose content this file repeats (stored once).
    dedup_of: str | None = None
    #: Whether the member's group codes several files as one stream (reading it decodes its block).
    solid: bool = False
    #: Whether trial results were recorded (format 2 keeps them only with ``--record-trials``).
    trials_recorded: bool = True
    #: Set when the member could not be read from the archive at all (its table is damaged): the reason.
    damage: str | None = None
    #: The owner when recorded (format 2.1): user and group ids, and their names ("" when unknown).
    uid: int | None = None
    gid: int | None = None
    uname: str = ""
    gname: str = ""

    @property
    def owner(self) -> tuple[int, int, str, str] | None:
        """(uid, gid, user name, group name), or None when the archive does not record it."""
        return None if self.uid is None or self.gid is None else (self.uid, self.gid, self.uname, self.gname)

    def isfile(self) -> bool:
        return self.type == FILE

    def isdir(self) -> bool:
        return self.type == DIR

    def issym(self) -> bool:
        return self.type == SYMLINK

    def islnk(self) -> bool:
        return self.type == HARDLINK

    def to_header(self) -> dict[str, Any]:
        h: dict[str, Any] = {"path": self.path, "type": self.type, "mode": self.mode, "mtime_ns": self.mtime_ns,
                             "size": self.size}
        if self.link:
            h["link"] = self.link
        if self.codec is not None:
            h["codec"] = self.codec.to_dict()
        if self.candidates:
            h["candidates"] = self.candidates
        return h

    @classmethod
    def from_header(cls, h: dict[str, Any]) -> "MemberInfo":
        """Validate an untrusted header; unknown keys are ignored (forward compatibility)."""
        path = _get(h, "path", str)
        mtype = _get(h, "type", str)
        # A type this lmar does not know (a device, a FIFO, a future kind) is kept, so listing works and the
        # rest of the archive stays readable; extraction refuses such a member on its own.
        if not mtype:
            raise FormatError(f"member {path!r} has an empty type: archive is corrupt")
        info = cls(path=path, type=mtype, mode=_get(h, "mode", int, 0o644) & 0o7777,
                   mtime_ns=_get(h, "mtime_ns", int, 0), size=_get(h, "size", int, 0),
                   link=_get(h, "link", str, ""))
        if info.size < 0 or info.size >= 1 << 63:
            raise FormatError(f"member {path!r} has an impossible size")
        if "codec" in h:
            c = _get(h, "codec", dict)
            info.codec = CodecRef(name=_get(c, "name", str), version=_get(c, "version", int, 1),
                                  params=_get(c, "params", dict, {}), provider=_get(c, "provider", str, ""),
                                  info=_get(c, "info", dict, {}))
            if not all(isinstance(k, str) for k in info.codec.params):  # they become keyword arguments
                raise FormatError(f"member {path!r}: codec parameters are corrupt")
        elif mtype == FILE:
            raise FormatError(f"member {path!r} records no codec")
        cands = h.get("candidates", {})
        if isinstance(cands, dict):
            # [size or None, how]: anything else is dropped (listings sort and print these sizes).
            info.candidates = {str(k): v for k, v in cands.items() if isinstance(v, list) and v
                               and (v[0] is None or (isinstance(v[0], int) and not isinstance(v[0], bool)))}
        if isinstance(h.get("xxh3_128"), bytes):
            info.xxh3_128 = h["xxh3_128"]
        for key in ("stored_size", "offset"):
            value = h.get(key)
            # Out of range (a hostile index) counts as unknown: seek() would raise ValueError/OverflowError.
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 63:
                setattr(info, key, value)
        return info


def _get(h: dict[str, Any], key: str, typ: type, default: Any = ...) -> Any:
    if key not in h:
        if default is ...:
            raise FormatError(f"member header lacks {key!r}: archive is corrupt")
        return default
    value = h[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise FormatError(f"member header field {key!r} has the wrong type: archive is corrupt")
    return value
