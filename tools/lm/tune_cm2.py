"""Measure the ``cm2`` context mixer with some of its constants overridden, without re-running the network.

The network's outputs (logits and top hidden state for every lockstep step) are computed once per file
and segment plan and cached under ``work-data/cm2-cache``; each trial then only re-runs the compiled
mixer (a few seconds per file). Constants are module globals of :mod:`lmar.plugins.lmcore.cm2`, frozen
into the compiled code, so each trial compiles a fresh copy of ``code_step`` after setting them.

    .venv/bin/python tools/lm/tune_cm2.py MIX_SHIFT=15 FAST_SHIFT=3     # one trial
    .venv/bin/python tools/lm/tune_cm2.py --files alice29.txt --prefix 0 # whole file, defaults
    .venv/bin/python tools/lm/tune_cm2.py --no-net                       # the mixer alone

Prints total coded bytes and bits/byte per file. The numbers are what the codec would write minus the
payload header (exact: the same compiled step and coder run).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numba
import numpy as np

from lmar.plugins.lmcore import bitcoder, cm2, model_files, runtime
from lmar.plugins.lmcore.segments import SegmentPlan, plan_segments

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "text"
CACHE = ROOT / "work-data" / "cm2-cache"
DEFAULT_FILES = ("alice29.txt", "plrabn12.txt", "lcet10.txt", "urls.10K", "cp.html", "asyoulik.txt")


def network_outputs(data: bytes, plan: SegmentPlan, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(logits [steps, S, 256], hidden [steps, S, H]) exactly as the codec's block loop sees them."""
    lpath, hpath = CACHE / f"{key}.logits.npy", CACHE / f"{key}.hidden.npy"
    if lpath.exists() and hpath.exists():
        return np.load(lpath, mmap_mode="r"), np.load(hpath, mmap_mode="r")
    card = model_files.require_model("bytegru-v1", None)
    net = runtime.StepModel(card, model_files.file_sha256(card.path))
    S = plan.count
    logits = np.zeros((plan.steps, S, 256), np.float32)
    hidden = np.zeros((plan.steps, S, card.hidden), np.float32)
    src = np.frombuffer(data, np.uint8)
    prev, state = np.full(S, net.bos, np.int64), net.zero_state(S)
    for t in range(plan.steps):
        lg, state = net.step(prev, state)
        logits[t], hidden[t] = lg, state[-1]
        live = plan.lengths > t
        prev = np.where(live, src[np.minimum(plan.starts + t, len(data) - 1)], 0).astype(np.int64)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(lpath, logits)
    np.save(hpath, hidden)
    return logits, hidden


def coded_bytes(data: bytes, plan: SegmentPlan, step, outputs: tuple[np.ndarray, np.ndarray] | None) -> int:
    S = plan.count
    hidden_units = outputs[1].shape[2] if outputs is not None else 1
    tables = cm2.Cm2State(S, plan.size, hidden_units).args()
    buf = np.zeros(plan.size, np.uint8)
    src = np.frombuffer(data, np.uint8).copy()
    coder, stream = bitcoder.new_state(), np.zeros(2 * len(data) + 4096, np.uint8)
    flat, no_hidden = np.zeros((S, 256), np.float32), np.zeros((S, 1), np.float32)
    live = S
    for t in range(plan.steps):
        while live and plan.lengths[live - 1] <= t:
            live -= 1
        lg = flat if outputs is None else np.ascontiguousarray(outputs[0][t])
        hd = no_hidden if outputs is None else np.ascontiguousarray(outputs[1][t])
        step(0, live, t, lg, hd, plan.starts, src, buf, coder, stream, *tables)
    return int(coder[bitcoder.POS]) + 4


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="NAME=INT constants of lmar.plugins.lmcore.cm2")
    ap.add_argument("--files", nargs="*", default=list(DEFAULT_FILES))
    ap.add_argument("--prefix", type=int, default=120_000, help="bytes of each file (0: whole file)")
    ap.add_argument("--min-segment", type=int, default=32768)
    ap.add_argument("--max-segments", type=int, default=256)
    ap.add_argument("--no-net", action="store_true", help="the mixer alone (uniform network input)")
    args = ap.parse_args(argv)
    for item in args.overrides:
        name, _, value = item.partition("=")
        if not hasattr(cm2, name):
            ap.error(f"cm2 has no constant {name}")
        setattr(cm2, name, int(value))
    cm2._MATCH_MASK = np.uint64((1 << (8 * min(cm2.MATCH_MIN, 8))) - 1)
    step = numba.njit(nogil=True)(cm2.code_step.py_func)  # compiled now, with the overridden globals
    total, rows = 0, []
    for name in args.files:
        data = (CORPUS / name).read_bytes()
        data = data[: args.prefix] if args.prefix else data
        plan = plan_segments(len(data), args.min_segment, args.max_segments)
        key = f"{name}.{len(data)}.{args.min_segment}.{args.max_segments}"
        outputs = None if args.no_net else network_outputs(data, plan, key)
        n = coded_bytes(data, plan, step, outputs)
        total += n
        rows.append(f"{name} {n * 8 / len(data):.3f}")
    print(" ".join(args.overrides) or "defaults", "TOTAL", total, "|", " | ".join(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
