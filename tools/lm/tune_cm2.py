"""Measure the compiled context mixer with some of its layout's rates overridden, without re-running the network.

The network's outputs (logits and top hidden state for every lockstep step) are computed once per file
and segment plan and cached under ``work-data/cm2-cache``; each trial then only re-runs the compiled
mixer (a few seconds per file). What a trial changes is a field of the scheme's frozen
:class:`lmar.plugins.lmcore.mixer_layout.Layout` (``mix_shift``, ``apm_w``, ``sets``, ``extra``, ...; names
are case-insensitive): the tool builds its own layout with :func:`dataclasses.replace` and hands it to the
codec's block coder, so nothing in the product is patched and nothing is recompiled.

    .venv/bin/python tools/lm/tune_cm2.py MIX_SHIFT=15 FAST_SHIFT=3     # one trial
    .venv/bin/python tools/lm/tune_cm2.py --files alice29.txt --prefix 0 # whole file, defaults
    .venv/bin/python tools/lm/tune_cm2.py --no-net                       # the mixer alone

Prints total coded bytes and bits/byte per file: what the codec writes minus the payload header
(exact: the codec's own block loop runs, with one lane so the cached outputs replay step by step).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from lmar.plugins.lm_codec import DEFAULT_MODEL, LmCodec
from lmar.plugins.lmcore import block_coder, mixer_layout, model_files, prior, runtime
from lmar.plugins.lmcore.payload import HEADER_BYTES
from lmar.plugins.lmcore.segments import plan_segments

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "text"
CACHE = ROOT / "work-data" / "cm2-cache"
DEFAULT_FILES = ("alice29.txt", "plrabn12.txt", "lcet10.txt", "urls.10K", "cp.html", "asyoulik.txt")


class _Recording:
    """The real network, keeping every step's logits and top hidden state (one lane: one call per step)."""

    def __init__(self, net) -> None:
        self.net, self.bos, self.logits, self.hidden = net, net.bos, [], []

    def zero_state(self, batch: int) -> np.ndarray:
        return self.net.zero_state(batch)

    def step(self, prev: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, state = self.net.step(prev, state)
        self.logits.append(logits)
        self.hidden.append(state[-1])
        return logits, state


class _Replay:
    """Hands back recorded network outputs in order; the bytes fed in are ignored (they are the same)."""

    bos = 256

    def __init__(self, logits: np.ndarray, hidden: np.ndarray) -> None:
        self.logits, self.hidden, self.t = logits, hidden, 0

    def zero_state(self, batch: int) -> np.ndarray:
        return np.zeros((1, batch, self.hidden.shape[2]), np.float32)

    def step(self, prev: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t, self.t = self.t, self.t + 1
        return np.ascontiguousarray(self.logits[t]), np.ascontiguousarray(self.hidden[t])[None]


def network(key: str, model: str):
    """A replay of the cached network outputs for ``key``, or a recorder that will fill the cache."""
    lpath, hpath = CACHE / f"{key}.logits.npy", CACHE / f"{key}.hidden.npy"
    if lpath.exists() and hpath.exists():
        return _Replay(np.load(lpath, mmap_mode="r"), np.load(hpath, mmap_mode="r"))
    card = model_files.require_model(model, None)
    return _Recording(runtime.StepModel(card, model_files.file_sha256(card.path)))


def save(net, key: str) -> None:
    if isinstance(net, _Recording):
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(CACHE / f"{key}.logits.npy", np.stack(net.logits))
        np.save(CACHE / f"{key}.hidden.npy", np.stack(net.hidden))


def tuned_layout(scheme: str, overrides: list[str]) -> mixer_layout.Layout:
    """``scheme``'s layout with ``NAME=INT`` (or ``NAME=INT,INT,...`` for a tuple field) applied."""
    base = mixer_layout.layout(scheme)
    names = [f.name for f in fields(base)]
    changes: dict[str, object] = {}
    for item in overrides:
        name, _, value = item.partition("=")
        key = name.strip().lower()
        if key not in names:
            raise SystemExit(f"tune_cm2: the mixer layout has no field {name!r} (fields: {', '.join(names)})")
        ints = [int(v) for v in value.split(",") if v]
        changes[key] = tuple(ints) if isinstance(getattr(base, key), tuple) else ints[0]
    return replace(base, **changes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*",
                    help="NAME=INT (or NAME=INT,INT,... for a tuple) fields of the scheme's mixer layout")
    ap.add_argument("--files", nargs="*", default=list(DEFAULT_FILES))
    ap.add_argument("--prefix", type=int, default=120_000, help="bytes of each file (0: whole file)")
    ap.add_argument("--min-segment", type=int, default=32768)
    ap.add_argument("--max-segments", type=int, default=256)
    ap.add_argument("--no-net", action="store_true", help="the mixer alone (uniform network input)")
    ap.add_argument("--scheme", default=LmCodec.default_params["scheme"], choices=sorted(block_coder.FORMATS))
    ap.add_argument("--model", default=DEFAULT_MODEL, help="shipped network whose outputs are cached and replayed")
    args = ap.parse_args(argv)
    warm = None
    if args.scheme in prior.PRIOR_SCHEMES:  # the shipped prior of --model
        warm = prior.require_prior(model_files.require_model(args.model, None), args.scheme, None)
    lay = tuned_layout(args.scheme, args.overrides)
    total, rows = 0, []
    for name in args.files:
        data = (CORPUS / name).read_bytes()
        data = data[: args.prefix] if args.prefix else data
        plan = plan_segments(len(data), args.min_segment, args.max_segments)
        key = f"{name}.{len(data)}.{args.min_segment}.{args.max_segments}.{args.model}"
        net = None if args.no_net else network(key, args.model)
        # The codec's own block loop, with one lane, so every network call is one whole step (what the
        # cache holds).
        n = len(block_coder.encode_block(data, plan, net, 0, args.scheme, warm, lay=lay, one_lane=True)) - HEADER_BYTES
        save(net, key)
        total += n
        rows.append(f"{name} {n * 8 / len(data):.3f}")
    print(args.scheme, " ".join(args.overrides) or "defaults", "TOTAL", total, "|", " | ".join(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
