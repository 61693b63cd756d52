"""How ``lmar list`` shows members: the long line (``-l``) and the JSON object (``--json``).

Pure functions of a :class:`~lmar.members.MemberInfo`, so a program using the API can print members the
way the command does; the JSON keys are the documented ``list --json`` shape (keys are added, never renamed).
"""
from __future__ import annotations

import stat
import time
from typing import Any

from .archive import machine_bound
from .members import MemberInfo
from .printable import printable


def json_value(value: Any) -> Any:
    """JSON for what msgpack allows and JSON does not (e.g. bytes in codec params, from an archive or a plugin)."""
    return value.hex() if isinstance(value, (bytes, bytearray)) else repr(value)


def member_json(m: MemberInfo) -> dict[str, Any]:
    return {"path": m.path, "type": m.type, "size": m.size, "codec": m.codec.name if m.codec else None,
            "stored_size": m.stored_size, "mode": m.mode, "mtime_ns": m.mtime_ns, "link": m.link or None,
            "codec_version": m.codec.version if m.codec else None,
            "codec_params": m.codec.params if m.codec else None,
            "candidates": {k: {"size": v[0], "how": v[1] if len(v) > 1 else None} for k, v in m.candidates.items()},
            "group": m.group, "solid": m.solid, "dedup_of": m.dedup_of, "damage": m.damage,
            "machine_bound": machine_bound(m) or None,
            "uid": m.uid, "gid": m.gid, "uname": m.uname or None, "gname": m.gname or None}


def owner_text(m: MemberInfo) -> str:
    """``user/group`` as tar lists it (ids where a name was not recorded); "-" when no owner was recorded."""
    if m.owner is None:
        return "-"
    return f"{m.uname or m.uid}/{m.gname or m.gid}"


def long_line(m: MemberInfo) -> str:
    kind = {"file": "-", "dir": "d", "symlink": "l", "hardlink": "h"}.get(m.type, "?")
    mode = kind + stat.filemode(m.mode)[1:]
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.mtime_ns / 1e9))
    stored = "-" if m.stored_size is None else str(m.stored_size)
    codec = m.codec.name if m.codec else "-"
    name = printable(m.path + (f" -> {m.link}" if m.issym() else f" link to {m.link}" if m.islnk() else ""))
    cands = " ".join(f"{k}={v[0]}" for k, v in sorted(m.candidates.items(), key=lambda kv: (kv[1][0] is None, kv[1][0] or 0))
                     if v and v[0] is not None)
    line = f"{mode} {printable(owner_text(m)):<16} {m.size:>12} {stored:>12} {codec:<8} {when} {name}"
    if m.damage:
        return f"?????????? {printable(m.path)}  [damaged: {printable(m.damage)}]"
    notes = []
    if m.dedup_of is not None:
        notes.append(f"= {printable(m.dedup_of)}")
    if m.group is not None and m.isfile() and m.dedup_of is None:
        notes.append(f"solid block {m.group}" if m.solid else f"block {m.group}")
    if cands:
        notes.append(cands)
    elif m.isfile() and not m.trials_recorded and m.dedup_of is None:
        notes.append("trials not recorded")
    bound = machine_bound(m) if m.isfile() else ""
    if bound:
        notes.append(f"decodes only on {bound}")
    return line + (f"  [{'; '.join(notes)}]" if notes else "")
