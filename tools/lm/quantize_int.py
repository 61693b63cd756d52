"""Post-training quantisation of a float byte GRU to the integer network, and its cost in bits/byte.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python tools/lm/quantize_int.py --model bytegru-v3 \
        --out work-data/bytegru-v3-ptq.npz

Evaluates the float network (torch) and the integer one (the numpy reference, ``intnet.step``) on the
text corpus in independent segments (like the codec), with the network's own softmax: the figure is the
network's bits/byte alone, before the mixer. ``--clip`` scales each row's range before rounding.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from intquant import from_float  # noqa: E402
from onnx_weights import load_onnx_weights  # noqa: E402

from lmar.plugins.lmcore import intnet  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "text"


def segments(files: list[Path], seg: int, limit: int) -> list[bytes]:
    out = []
    for f in files:
        data = f.read_bytes()[:limit]
        out += [data[i:i + seg] for i in range(0, len(data), seg)]
    return out


def _nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    lg = logits.astype(np.float64)
    m = lg.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(lg - m).sum(axis=1))
    return lse - lg[np.arange(len(targets)), targets]


def eval_bits(segs: list[bytes], stepper, scale: float) -> float:
    """Total bits of ``segs`` under ``stepper(prev, state) -> (logits, state)``, logits in 1/scale nats."""
    steps = max(len(s) for s in segs)
    arr = np.full((len(segs), steps), -1, dtype=np.int64)
    for i, s in enumerate(segs):
        arr[i, :len(s)] = np.frombuffer(s, np.uint8)
    prev = np.full(len(segs), 256, dtype=np.int64)
    state = None
    bits = 0.0
    for t in range(steps):
        logits, state = stepper(prev, state)
        tgt = arr[:, t]
        live = tgt >= 0
        bits += _nll(logits[live] / scale, tgt[live]).sum() / np.log(2)
        prev = np.where(live, tgt, 0)
    return bits


def float_stepper(model):
    def step(prev, state):
        with torch.no_grad():
            lg, st = model(torch.from_numpy(prev)[None], state)
        return lg[0].numpy(), st
    return step


def int_stepper(p: intnet.IntParams):
    def step(prev, state):
        if state is None:
            state = np.zeros((p.layers, len(prev), p.hidden), dtype=np.int32)
        return intnet.step(p, prev, state)
    return step


def save_params(p: intnet.IntParams, path: Path) -> None:
    arrays = {"emb": p.emb, "w_out": p.w_out, "m_out": p.m_out, "c_out": p.c_out, "sig": p.sig, "tanh": p.tanh}
    for i in range(p.layers):
        arrays.update({f"w_hh{i}": p.w_hh[i], f"m_hh{i}": p.m_hh[i], f"c_hh{i}": p.c_hh[i]})
        if i:
            arrays.update({f"w_ih{i}": p.w_ih[i], f"m_ih{i}": p.m_ih[i], f"c_ih{i}": p.c_ih[i]})
    np.savez(path, **arrays)


def load_params(path: Path) -> intnet.IntParams:
    z = np.load(path)
    layers = sum(1 for k in z.files if k.startswith("w_hh"))
    e8, e64 = np.zeros((0, 0), np.int8), np.zeros(0, np.int64)
    p = intnet.IntParams(
        emb=z["emb"], w_hh=[z[f"w_hh{i}"] for i in range(layers)], m_hh=[z[f"m_hh{i}"] for i in range(layers)],
        c_hh=[z[f"c_hh{i}"] for i in range(layers)], w_ih=[e8] + [z[f"w_ih{i}"] for i in range(1, layers)],
        m_ih=[e64] + [z[f"m_ih{i}"] for i in range(1, layers)], c_ih=[e64] + [z[f"c_ih{i}"] for i in range(1, layers)],
        w_out=z["w_out"], m_out=z["m_out"], c_out=z["c_out"], sig=z["sig"], tanh=z["tanh"])
    p.check()
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bytegru-v3")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--segment", type=int, default=4096)
    ap.add_argument("--limit", type=int, default=1 << 30, help="bytes per file")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--params", type=Path, help="evaluate these integer parameters (npz) instead of PTQ")
    ap.add_argument("--out", type=Path, help="save the integer parameters (npz)")
    ap.add_argument("--no-float", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = load_onnx_weights(ROOT / "plugins" / "models" / f"{args.model}.onnx").eval()
    p = load_params(args.params) if args.params else from_float(model.state_dict(), model.config.layers, args.clip)
    if args.out:
        save_params(p, args.out)
    files = sorted(f for f in args.corpus.iterdir() if f.is_file())
    segs = segments(files, args.segment, args.limit)
    n = sum(len(s) for s in segs)
    t0 = time.monotonic()
    bi = eval_bits(segs, int_stepper(p), intnet.LOGIT_SCALE)
    t1 = time.monotonic()
    line = f"{len(segs)} segments, {n:,d} bytes: integer {bi / n:.4f} bits/byte ({t1 - t0:.0f} s)"
    if not args.no_float:
        bf = eval_bits(segs, float_stepper(model), 1.0)
        line += f", float {bf / n:.4f}, ratio {bi / bf:.4f}"
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
