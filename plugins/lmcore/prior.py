"""Mixer priors: the adaptive tables of a scheme as they stand after coding held-out training text.

Why: every block starts its mixer cold (uniform weights, identity calibration curves, an untrained
hidden-state regression) and pays for learning, on the user's data, what does not depend on that data:
how far to trust the network, which counter speeds to believe, how the final mixer weighs its sets. A
scheme that has a prior (``cm5``) starts every block from tables learnt once, by
``tools/lm/build_prior.py``, on text the network was not trained on. The prior is part of the
bitstream: a member records its sha256, and it belongs to one network (the calibration curves and the
hidden-state regression describe that network's outputs), so it ships beside the model as
``<model>.<scheme>.prior.npz`` and the model card names its sha256.

The file holds, per table, the entries that moved from the cold start (flat indices, as gaps, and the
change in units of a quantum: a weight to 1/64 of its unit, a probability to 1/1024 of its range, far
below what coding notices), so it is small and loads in a fraction of a second.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmar.errors import CodecError, CodecUnavailable
from lmar.filehash import file_sha256

from .model_files import ModelCard

if TYPE_CHECKING:  # numpy is imported where arrays are made: every lmar command loads the plugins
    import numpy as np

#: Schemes whose blocks start from a prior (the rest start cold).
PRIOR_SCHEMES = ("cm5", "cm6")
#: The tables a prior sets; everything else (hash slots, match table, per-segment histories) depends on
#: the data being coded and always starts empty.
TABLES = ("mw", "fw", "apm", "nn_apm", "cmap", "hw", "msm", "msn")


#: Quantum of each table's stored change (1: exact). Weights are 16.16 fixed point, probabilities 16-bit.
QUANTA = {"mw": 1024, "apm": 64, "nn_apm": 64, "cmap": 64}


@dataclass(frozen=True)
class Prior:
    """Changes from a cold :class:`~.mixer_tables.MixerTables` for one (model, scheme): per table, its
    shape, the flat indices that moved and by how much."""

    sha256: str
    shapes: dict[str, tuple[int, ...]]
    changes: dict[str, tuple[np.ndarray, np.ndarray]]

    def apply(self, state: Any) -> None:
        """Add the learnt changes to a freshly built state's tables (in place)."""
        for name in TABLES:
            table = getattr(state, name)
            if table.shape != self.shapes[name]:
                raise CodecError(f"lm: mixer prior table {name} has shape {self.shapes[name]}, the scheme "
                                 f"needs {table.shape} (a prior built for another scheme or network)")
            idx, delta = self.changes[name]
            table.reshape(-1)[idx] += delta.astype(table.dtype)


def prior_path(card: ModelCard, scheme: str) -> Path:
    """The file the card names for ``scheme``, else ``<model>.<scheme>.prior.npz``, beside the model."""
    return card.path.with_name(card.prior_file.get(scheme) or f"{card.path.stem}.{scheme}.prior.npz")


_CACHE: dict[tuple[str, str], Prior] = {}


def require_prior(card: ModelCard, scheme: str, sha256: str | None) -> Prior:
    """The installed prior of ``card`` for ``scheme``, checked against its card and ``sha256`` (a member's).

    Loaded once per process: a prior is a few MB to inflate and archives hold many small members.
    """
    path = prior_path(card, scheme)
    if not path.is_file():
        raise CodecUnavailable(f"language model '{card.name}' has no mixer prior for scheme {scheme} "
                               f"(looked for {path}); reinstall lmar or code with an older scheme")
    actual = file_sha256(path)
    expected = card.prior_sha256.get(scheme, "")
    if expected and actual != expected:
        raise CodecUnavailable(f"mixer prior {path} is corrupt: sha256 {actual[:12]}... does not match the "
                               f"model card ({expected[:12]}...); reinstall lmar")
    if sha256 and actual != sha256:
        raise CodecUnavailable(f"mixer prior for '{card.name}' scheme {scheme} with sha256 {sha256[:12]}... is "
                               f"not installed (the installed one is {actual[:12]}...)")
    key = (str(path), actual)
    if key not in _CACHE:
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as z:
                shapes = {name: tuple(int(n) for n in z[f"{name}.shape"]) for name in TABLES}
                changes = {name: (np.cumsum(z[f"{name}.gaps"].astype(np.int64)),
                                  z[f"{name}.change"].astype(np.int64) * int(z[f"{name}.quantum"]))
                           for name in TABLES}
        except (OSError, ValueError, KeyError) as exc:
            raise CodecUnavailable(f"mixer prior {path} is unreadable ({exc})") from None
        for name in TABLES:
            idx = changes[name][0]
            if idx.size and (idx.min() < 0 or idx.max() >= int(np.prod(shapes[name]))):
                raise CodecUnavailable(f"mixer prior {path} is unreadable (table {name} index out of range)")
        _CACHE[key] = Prior(actual, shapes, changes)
    return _CACHE[key]


def save_prior(path: Path, learnt: Any, cold: Any) -> str:
    """Write what moved between two states' tables, quantised; return the file's sha256 (for the card)."""
    import numpy as np

    arrays: dict[str, np.ndarray] = {}
    for name in TABLES:
        cold_t = getattr(cold, name)
        q = QUANTA.get(name, 1)
        change = np.round((getattr(learnt, name).astype(np.int64) - cold_t.astype(np.int64)) / q).astype(np.int64)
        flat = change.reshape(-1)
        idx = np.flatnonzero(flat)
        vals = flat[idx]
        small = np.abs(vals).max(initial=0) < 1 << 15
        arrays[f"{name}.shape"] = np.array(cold_t.shape, dtype=np.int64)
        arrays[f"{name}.quantum"] = np.array(q, dtype=np.int64)
        arrays[f"{name}.gaps"] = np.diff(idx, prepend=0).astype(np.int32)  # small numbers compress well
        arrays[f"{name}.change"] = vals.astype(np.int16 if small else np.int32)
    bio = io.BytesIO()
    np.savez_compressed(bio, **arrays)
    path.write_bytes(bio.getvalue())
    return file_sha256(path)
