"""Locating shipped models and proving a file is the exact model a payload was coded with.

Why a hash and not just a name: a payload decodes only with bit-identical network outputs, so a retrained
model under the same name must be refused with a clear message instead of producing garbage.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmar.filehash import file_sha256  # noqa: F401 - re-exported for callers
from lmar.errors import CodecUnavailable

#: Extra directory searched first (tests, users with models installed elsewhere).
MODEL_DIR_ENV = "LMAR_MODEL_DIR"
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class ModelCard:
    """The facts the codec needs about a model; read from ``<name>.json`` beside ``<name>.onnx``."""

    name: str
    path: Path
    layers: int
    hidden: int
    bos: int
    card_sha256: str
    file_bytes: int
    #: sha256 of each shipped mixer prior by scheme (:mod:`.prior`), as the card records them.
    prior_sha256: dict[str, str] = field(default_factory=dict)
    #: "float" (a float32 graph, bound to the CPU family) or "integer" (:mod:`.intnet`, portable).
    numerics: str = "float"
    #: File name of each mixer prior by scheme, when the card names one (a graph that computes another
    #: model's integers shares that model's prior file); :func:`.prior.prior_path` falls back to the stem.
    prior_file: dict[str, str] = field(default_factory=dict)


#: Key of the card's mixer priors: {"cm5": {"file": ..., "sha256": ...}}.
PRIORS_KEY = "mixer_priors"


def _prior_hashes(raw: dict[str, Any]) -> dict[str, str]:
    entries = raw.get(PRIORS_KEY)
    if not isinstance(entries, dict):
        return {}
    return {str(k): str(v.get("sha256", "")) for k, v in entries.items() if isinstance(v, dict)}


def _prior_files(raw: dict[str, Any]) -> dict[str, str]:
    """Plain file names only: a card cannot point outside its model's directory."""
    entries = raw.get(PRIORS_KEY)
    if not isinstance(entries, dict):
        return {}
    names = {str(k): str(v.get("file", "")) for k, v in entries.items() if isinstance(v, dict)}
    return {k: v for k, v in names.items() if v and Path(v).name == v and v not in (".", "..")}


def search_dirs() -> list[Path]:
    dirs = []
    extra = os.environ.get(MODEL_DIR_ENV)
    if extra:
        dirs.append(Path(extra))
    dirs.append(SHIPPED_DIR)
    return dirs


def find_model(name: str) -> Path | None:
    """The first ``<name>.onnx`` on the search path, or None."""
    for d in search_dirs():
        p = d / f"{name}.onnx"
        if p.is_file():
            return p
    return None




def load_card(name: str) -> ModelCard:
    """Read and check the model card; raise :class:`CodecUnavailable` naming the model when unusable."""
    path = find_model(name)
    if path is None:
        where = ", ".join(str(d) for d in search_dirs())
        raise CodecUnavailable(f"language model '{name}' is not installed (looked for {name}.onnx in {where})")
    card_path = path.with_suffix(".json")
    try:
        raw: dict[str, Any] = json.loads(card_path.read_text())
        card = ModelCard(
            name=str(raw.get("name", name)),
            path=path,
            layers=int(raw["layers"]),
            hidden=int(raw["hidden"]),
            bos=int(raw.get("bos", 256)),
            card_sha256=str(raw.get("onnx_sha256", "")),
            file_bytes=path.stat().st_size,
            prior_sha256=_prior_hashes(raw),
            numerics=str(raw.get("numerics", "float")),
            prior_file=_prior_files(raw),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CodecUnavailable(f"language model '{name}': unreadable model card {card_path} ({exc})") from None
    return card


def require_model(name: str, sha256: str | None) -> ModelCard:
    """The installed model ``name``, verified against ``sha256`` (the hash recorded in a payload's params).

    The file hash is compared with the card too: a corrupt or partially copied file is refused even when
    the caller has no recorded hash yet (a fresh encode).
    """
    card = load_card(name)
    actual = file_sha256(card.path)
    if card.card_sha256 and actual != card.card_sha256:
        raise CodecUnavailable(
            f"language model '{name}' at {card.path} is corrupt: sha256 {actual[:12]}... does not match its "
            f"card ({card.card_sha256[:12]}...); reinstall lmar or the model package"
        )
    if sha256 and actual != sha256:
        raise CodecUnavailable(
            f"language model '{name}' with sha256 {sha256[:12]}... is not installed (the installed "
            f"'{name}' is {actual[:12]}..., a different model); install the exact model this data was coded with"
        )
    return card
