"""Train the shipped byte GRU on CPU, resumably, within a wall-clock budget.

Why it is shaped like this: the codec codes independent segments, each starting from a zero state with
the BOS symbol, so training does the same: every batch row is a segment (1-4 KiB, random offset in a
randomly chosen source) that starts with BOS and a zero state, processed in chunks with truncated
backpropagation while the state is carried across chunks. That teaches both cold starts and long context.

The run checkpoints to ``work-data/ckpt.pt`` every few minutes and on exit; re-running resumes from it
(the optimizer, counters and schedule too) until the total budget ``--minutes`` is spent. The learning
rate is warmup-stable-decay in training wall time, so a longer budget simply moves the decay later.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import BOS, ByteGRU, ModelConfig, build  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "work-data"
LN2 = math.log(2.0)


class Corpus:
    """Training sources as byte arrays plus their sampling weights (from ``build_corpus.py``)."""

    def __init__(self, folder: Path, split: str = "train", weights: dict[str, float] | None = None) -> None:
        sources = json.loads((folder / "manifest.json").read_text())["sources"]
        if unknown := sorted(set(weights or {}) - set(sources)):
            raise SystemExit(f"train.py: no source(s) {', '.join(unknown)} in {folder / 'manifest.json'}")
        mix = {n: float(m["weight"]) for n, m in sources.items()} | (weights or {})
        self.names = [n for n in sources if mix[n] > 0]
        self.data = [np.fromfile(folder / f"{n}.{split}", dtype=np.uint8) for n in self.names]
        w = np.array([mix[n] for n in self.names], dtype=np.float64)
        self.weights = w / w.sum()

    def batch(self, rng: np.random.Generator, rows: int, length: int) -> np.ndarray:
        """``rows`` random segments of ``length`` bytes, sources drawn by weight: uint8 [rows, length]."""
        out = np.empty((rows, length), dtype=np.uint8)
        src = rng.choice(len(self.names), size=rows, p=self.weights)
        for i, s in enumerate(src):
            d = self.data[s]
            start = int(rng.integers(0, max(1, len(d) - length)))
            seg = d[start:start + length]
            if len(seg) < length:  # a source shorter than a segment: repeat it
                seg = np.resize(seg, length)
            out[i] = seg
        return out


def inputs_targets(seg: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Time-major (inputs, targets): inputs are BOS then the segment shifted right by one."""
    t = torch.from_numpy(seg.astype(np.int64)).t().contiguous()  # [S, B]
    inp = torch.cat([torch.full((1, t.shape[1]), BOS, dtype=torch.int64), t[:-1]], dim=0)
    return inp, t


def lr_at(seconds: float, budget: float, step: int, peak: float, warmup: int = 300, decay_frac: float = 0.2) -> float:
    """Warmup (steps), then constant, then linear decay to 5% over the last ``decay_frac`` of the budget."""
    lr = peak * min(1.0, (step + 1) / warmup)
    decay_start = budget * (1.0 - decay_frac)
    if seconds > decay_start:
        frac = min(1.0, (seconds - decay_start) / max(1.0, budget - decay_start))
        lr *= 1.0 - 0.95 * frac
    return lr


@torch.no_grad()
def evaluate(model: ByteGRU, valid: Corpus, seg_len: int = 2048, segs_per_source: int = 4) -> dict[str, float]:
    """Bits/byte per source on the held-out tails, coded as the codec does (independent BOS segments).

    All sources go into one batch because the CPU GRU is far more efficient on wide batches; only the
    first ``segs_per_source`` segments of each tail are used to keep evaluation cheap during training.
    """
    model.eval()
    segs, owner = [], []
    for i, d in enumerate(valid.data):
        n = min(segs_per_source, len(d) // seg_len)
        segs.append(d[: n * seg_len].reshape(n, seg_len))
        owner += [i] * n
    inp, tgt = inputs_targets(np.concatenate(segs))
    nats = torch.zeros(tgt.shape[1])
    state = None
    for c in range(0, seg_len, 256):
        logits, state = model(inp[c:c + 256], state)
        nats += F.cross_entropy(logits.permute(1, 2, 0), tgt[c:c + 256].t(), reduction="none").sum(dim=1)
    res: dict[str, float] = {}
    own = torch.tensor(owner)
    for i, name in enumerate(valid.names):
        res[name] = float(nats[own == i].sum()) / LN2 / (int((own == i).sum()) * seg_len)
    res["weighted"] = float(sum(res[n] * w for n, w in zip(valid.names, valid.weights)))
    model.train()
    return res


def parse_weights(text: str) -> dict[str, float]:
    """``brown=0.2,kjv=0`` -> {"brown": 0.2, "kjv": 0.0}."""
    out: dict[str, float] = {}
    for item in filter(None, text.split(",")):
        name, _, w = item.partition("=")
        out[name.strip()] = float(w)
    return out


def save(path: Path, payload: dict[str, Any]) -> None:
    """Atomic write so an interrupted save never destroys the last good checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def log(msg: str, logfile: Path) -> None:
    line = f"{datetime.now(timezone.utc).strftime('%H:%M:%S')} {msg}"
    print(line, flush=True)
    with logfile.open("a") as f:
        f.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="total training wall-time budget (resumes count)")
    ap.add_argument("--corpus", type=Path, default=WORK / "corpus")
    ap.add_argument("--checkpoint", type=Path, default=WORK / "ckpt.pt")
    ap.add_argument("--log", type=Path, default=WORK / "train.log")
    ap.add_argument("--threads", type=int, default=1, help="1: OpenMP spinning collapses on a shared CPU")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--bptt", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--embed", type=int, default=ModelConfig.embed)
    ap.add_argument("--hidden", type=int, default=ModelConfig.hidden)
    ap.add_argument("--layers", type=int, default=ModelConfig.layers)
    ap.add_argument("--save-every", type=float, default=300.0, help="seconds between checkpoints")
    ap.add_argument("--eval-every", type=float, default=1200.0, help="seconds between validation runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init-onnx", type=Path, default=None,
                    help="start a new run from the weights of a shipped ONNX export (continued training)")
    ap.add_argument("--weights", default="",
                    help="NAME=W,... overrides the manifest's sampling weights; W=0 leaves a source out")
    ap.add_argument("--warmup", type=int, default=300, help="learning-rate warmup steps")
    ap.add_argument("--decay-frac", type=float, default=0.2, help="share of the budget spent decaying the rate")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    weights = parse_weights(args.weights)
    budget = args.minutes * 60.0
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False) if args.checkpoint.exists() else None
    if ckpt is not None:  # a resumed run keeps the mix it started with
        weights = ckpt["training"].get("weights", {})
    corpus = Corpus(args.corpus, "train", weights)
    valid = Corpus(args.corpus, "valid", weights)

    if ckpt is not None:
        model = ByteGRU(ModelConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["model"])
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        opt.load_state_dict(ckpt["optimizer"])
        training = ckpt["training"]
        rng = np.random.default_rng(args.seed + training["step"] + 1)
        log(f"resumed at step {training['step']}, {training['bytes_seen']:,d} bytes, "
            f"{training['wall_seconds']:.0f}s of {budget:.0f}s", args.log)
    else:
        if args.init_onnx:
            from onnx_weights import load_onnx_weights

            model = load_onnx_weights(args.init_onnx)
        else:
            model = build(ModelConfig(args.embed, args.hidden, args.layers), seed=args.seed)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        manifest = json.loads((args.corpus / "manifest.json").read_text())
        used = {n: m for n, m in manifest["sources"].items() if n in corpus.names}
        training = {
            "corpus": "work-data/corpus from tools/lm/build_corpus.py: " + ", ".join(
                f"{n} {m['train_bytes'] / 1e6:.1f} MB (weight {weights.get(n, m['weight'])})" for n, m in used.items()),
            "corpus_train_bytes": sum(int(m["train_bytes"]) for m in used.values()),
            "weights": weights,
            "bytes_seen": 0, "wall_seconds": 0.0, "step": 0, "valid": {},
            "batch": args.batch, "bptt": args.bptt, "peak_lr": args.lr,
            "init": str(args.init_onnx.name) if args.init_onnx else None,
        }
        rng = np.random.default_rng(args.seed)
        log(f"{'continued' if args.init_onnx else 'new'} model {model.config} with {model.num_params():,d} params; "
            f"corpus {training['corpus_train_bytes']:,d} bytes", args.log)

    def checkpoint() -> None:
        training["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        save(args.checkpoint, {"config": model.config.to_dict(), "model": model.state_dict(),
                               "optimizer": opt.state_dict(), "training": training})

    stop = {"now": False}

    def on_signal(signum: int, _frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    model.train()
    t_last = time.monotonic()
    last_save = last_eval = last_log = training["wall_seconds"]
    run_nats, run_n = 0.0, 0
    while training["wall_seconds"] < budget and not stop["now"]:
        seg_len = int(rng.choice([1024, 2048, 4096]))
        inp, tgt = inputs_targets(corpus.batch(rng, args.batch, seg_len))
        state = None
        for c in range(0, seg_len, args.bptt):
            lr = lr_at(training["wall_seconds"], budget, training["step"], args.lr, args.warmup, args.decay_frac)
            for g in opt.param_groups:
                g["lr"] = lr
            logits, state = model(inp[c:c + args.bptt], state)
            loss = F.cross_entropy(logits.reshape(-1, 256), tgt[c:c + args.bptt].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            state = state.detach()
            now = time.monotonic()
            training["wall_seconds"] += now - t_last
            t_last = now
            training["step"] += 1
            training["bytes_seen"] += int(tgt[c:c + args.bptt].numel())
            run_nats += float(loss) * tgt[c:c + args.bptt].numel()
            run_n += tgt[c:c + args.bptt].numel()
            if stop["now"] or training["wall_seconds"] >= budget:
                break
        ws = training["wall_seconds"]
        if ws - last_log >= 60:
            log(f"step {training['step']} bytes {training['bytes_seen']:,d} wall {ws:.0f}s lr {lr:.2e} "
                f"train {run_nats / max(1, run_n) / LN2:.3f} bpb "
                f"({run_n / (ws - last_log) / 1e3:.1f} KB/s)", args.log)
            run_nats, run_n, last_log = 0.0, 0, ws
        if ws - last_eval >= args.eval_every:
            training["valid"] = evaluate(model, valid)
            log("valid " + " ".join(f"{k} {v:.3f}" for k, v in training["valid"].items()), args.log)
            last_eval = ws
            t_last = time.monotonic()  # evaluation time is not training time
        if ws - last_save >= args.save_every:
            checkpoint()
            last_save = ws
            t_last = time.monotonic()
    training["valid"] = evaluate(model, valid)
    log("valid " + " ".join(f"{k} {v:.3f}" for k, v in training["valid"].items()), args.log)
    checkpoint()
    log(f"saved {args.checkpoint} at step {training['step']}, {training['bytes_seen']:,d} bytes, "
        f"{training['wall_seconds']:.0f}s", args.log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
