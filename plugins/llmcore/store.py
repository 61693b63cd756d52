"""The model store: ``$LMAR_HOME/models/<id>/`` holding ``model.onnx``, ``tokenizer.json`` and ``card.json``.

Why the id is the sha256 of the ONNX file: archives record it, and a decoder must refuse to run a model
whose float graph is not byte-for-byte the one that encoded (a re-conversion with other library versions
can change the weights' rounding). The card says where the model came from and how it was converted.

This module knows the layout only: paths, cards, removal records, and how a finished import enters the
store (staged in a hidden folder beside the models, then renamed into place, so a model directory is
either complete or absent). Fetching a source is :mod:`.sources`, the import pipeline :mod:`.importer`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from lmar.filehash import file_sha256 as sha256_file  # noqa: F401 - the id of a model file (importer, tests)
from lmar.errors import LmarError

CARD = "card.json"
ONNX = "model.onnx"
TOKENIZER = "tokenizer.json"
REMOVED = "removed.json"
#: sliding window (tokens) recorded in new cards: attention reads the whole window each step, and on 2
#: CPU cores 512 codes ~1.5x faster than 1024 for 1.2 % more bits (tools/llm/README.md)
DEFAULT_CONTEXT = 512


def home() -> Path:
    return Path(os.environ.get("LMAR_HOME") or Path.home() / ".local" / "share" / "lmar")


def models_dir() -> Path:
    return home() / "models"


def list_cards() -> list[dict[str, Any]]:
    """Cards of every complete installed model, sorted by codec name."""
    root = models_dir()
    cards = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            try:
                card = json.loads((d / CARD).read_text())
            except (OSError, ValueError):
                continue
            if (d / ONNX).is_file() and (d / TOKENIZER).is_file() and card.get("id") == d.name:
                card["path"] = str(d)
                cards.append(card)
    return sorted(cards, key=lambda c: c.get("codec_name", ""))


def find(key: str) -> dict[str, Any]:
    """A model by id, unique id prefix (>= 8 hex digits) or codec name."""
    cards = list_cards()
    hits = [c for c in cards if key in (c["id"], c.get("codec_name"))]
    if not hits and len(key) >= 8:
        hits = [c for c in cards if c["id"].startswith(key)]
    if len(hits) != 1:
        raise LmarError(f"no installed model '{key}'" if not hits else f"'{key}' matches several models; give the full id")
    return hits[0]


def remove(key: str) -> dict[str, Any]:
    """Delete a model, remembering its codec name so archives that need it can say how to get it back."""
    card = find(key)
    gone = removed_names()
    gone[card["codec_name"]] = {"id": card["id"], "source": card.get("import_source", "")}
    (models_dir() / REMOVED).write_text(json.dumps(gone, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(card["path"])
    return card


def removed_names() -> dict[str, dict[str, str]]:
    """codec name -> {"id", "source"} of models removed from this store."""
    try:
        data = json.loads((models_dir() / REMOVED).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): {"id": str(v.get("id", "")), "source": str(v.get("source", ""))}
            for k, v in data.items() if isinstance(v, dict)}


@contextmanager
def staging() -> Iterator[Path]:
    """A scratch folder inside the store (same file system, so :func:`install` is one rename), removed after."""
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".import-") as tmp:
        yield Path(tmp)


def install(folder: Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write ``card`` into ``folder`` (holding model.onnx and tokenizer.json) and move it to ``<id>/``."""
    (folder / CARD).write_text(json.dumps(card, indent=2) + "\n")
    dest = models_dir() / card["id"]
    os.replace(folder, dest)
    return {**card, "path": str(dest)}
