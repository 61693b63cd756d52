"""Quantisation-aware fine-tuning of a float byte GRU for the integer network (scheme ``cm6``).

Why: rounding bytegru-v3 after training (``quantize_int.py``) costs bits, mostly from 7-bit weights and
8-bit matmul operands. Here the forward pass rounds exactly where ``intnet.step`` does (weights per row
to [-64, 63], operands to 1/128, pre-activations to 1/256, gates and the state to Q15, logits to 1/16),
with straight-through gradients, so training moves the float weights to where their integer version
predicts well. The GRU is unrolled step by step in Python (no fused kernel can round inside the cell),
which is slow but fits a bounded fine-tune on one thread.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python tools/lm/qat.py --init-onnx plugins/models/bytegru-v3.onnx \
        --minutes 35 --out work-data/v3i-qat.npz

Writes the integer parameters (``intquant.from_float`` of the fine-tuned weights) for
``export_int_onnx.py``, and a torch checkpoint beside them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from intquant import from_float  # noqa: E402
from onnx_weights import load_onnx_weights  # noqa: E402
from quantize_int import save_params  # noqa: E402
from train import Corpus, inputs_targets, parse_weights  # noqa: E402

from lmar.plugins.lmcore.intnet import W_MAX, W_MIN  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def rq(x: torch.Tensor) -> torch.Tensor:
    """Round with a straight-through gradient."""
    return x + (torch.round(x) - x).detach()


def fq_rows(w: torch.Tensor, clip: float) -> torch.Tensor:
    s = (w.detach().abs().amax(dim=1, keepdim=True) * clip / W_MAX).clamp_min(1e-8)
    return torch.clamp(rq(w / s), W_MIN, W_MAX) * s


def operand(h: torch.Tensor) -> torch.Tensor:
    return torch.clamp(rq(h * 128), -127, 127) / 128


def on_grid(x: torch.Tensor, units: float) -> torch.Tensor:
    return rq(x * units) / units


def gate(fn, pre: torch.Tensor) -> torch.Tensor:
    return on_grid(fn(torch.clamp(pre, -8.0, 8.0 - 1 / 256)), 32768.0)


def forward(sd: dict[str, torch.Tensor], layers: int, tokens: torch.Tensor, state: torch.Tensor,
            clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """tokens [T, B] -> (logits [T, B, 256], state [L, B, H]), rounding as the integer network does."""
    H = sd["gru.weight_hh_l0"].shape[1]
    zn = torch.cat([torch.ones(2 * H), torch.zeros(H)])
    table = sd["embed.weight"] @ sd["gru.weight_ih_l0"].t() + sd["gru.bias_ih_l0"] + zn * sd["gru.bias_hh_l0"]
    table = on_grid(table, 256.0)
    w_hh = [fq_rows(sd[f"gru.weight_hh_l{i}"], clip).t() for i in range(layers)]
    w_ih = [None] + [fq_rows(sd[f"gru.weight_ih_l{i}"], clip).t() for i in range(1, layers)]
    b_ih = [None] + [sd[f"gru.bias_ih_l{i}"] + zn * sd[f"gru.bias_hh_l{i}"] for i in range(1, layers)]
    b_hh = [(1 - zn) * sd[f"gru.bias_hh_l{i}"] for i in range(layers)]
    w_out = fq_rows(sd["head.weight"], clip).t()
    hs = list(state.unbind(0))
    tops = []
    for t in range(tokens.shape[0]):
        x = table[tokens[t]]
        for i in range(layers):
            if i:
                x = on_grid(operand(hs[i - 1]) @ w_ih[i] + b_ih[i], 256.0)
            gh = on_grid(operand(hs[i]) @ w_hh[i] + b_hh[i], 256.0)
            r = gate(torch.sigmoid, x[:, :H] + gh[:, :H])
            z = gate(torch.sigmoid, x[:, H:2 * H] + gh[:, H:2 * H])
            n = gate(torch.tanh, x[:, 2 * H:] + on_grid(r * gh[:, 2 * H:], 256.0))
            hs[i] = hs[i] + on_grid((1 - z) * (n - hs[i]), 32768.0)
        tops.append(operand(hs[-1]))
    top = torch.stack(tops)
    logits = on_grid(top @ w_out + sd["head.bias"], 16.0)
    return logits, torch.stack(hs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init-onnx", type=Path, default=ROOT / "plugins" / "models" / "bytegru-v3.onnx")
    ap.add_argument("--corpus", type=Path, default=ROOT / "work-data" / "corpus")
    ap.add_argument("--minutes", type=float, default=35.0)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--bptt", type=int, default=64)
    ap.add_argument("--segment", type=int, default=1024)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--weights", default="", help="NAME=W,... (default: the card of the initial model)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    card = json.loads(args.init_onnx.with_suffix(".json").read_text())
    weights = parse_weights(args.weights) if args.weights else card.get("training", {}).get("weights", {})
    corpus = Corpus(args.corpus, "train", weights)
    model = load_onnx_weights(args.init_onnx)
    layers = model.config.layers
    params = dict(model.named_parameters())
    opt = torch.optim.Adam(params.values(), lr=args.lr)
    budget = args.minutes * 60
    t0 = time.monotonic()
    seen, step, run_nats, run_n = 0, 0, 0.0, 0
    log = args.out.with_suffix(".log")
    while time.monotonic() - t0 < budget:
        inp, tgt = inputs_targets(corpus.batch(rng, args.batch, args.segment))
        state = torch.zeros(layers, args.batch, model.config.hidden)
        for c in range(0, args.segment, args.bptt):
            frac = (time.monotonic() - t0) / budget
            lr = args.lr * min(1.0, (step + 1) / 50) * (1.0 if frac < 0.6 else max(0.05, (1 - frac) / 0.4))
            for g in opt.param_groups:
                g["lr"] = lr
            logits, state = forward(params, layers, inp[c:c + args.bptt], state, args.clip)
            state = state.detach()
            loss = F.cross_entropy(logits.reshape(-1, 256), tgt[c:c + args.bptt].reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
            opt.step()
            step += 1
            n = int(tgt[c:c + args.bptt].numel())
            seen += n
            run_nats += float(loss.detach()) * n
            run_n += n
        if step % 64 < args.segment // args.bptt:
            el = time.monotonic() - t0
            with open(log, "a") as f:
                f.write(f"{el:7.0f} s step {step} bytes {seen:,d} train {run_nats / run_n / np.log(2):.4f} bpb "
                        f"lr {lr:.2e}\n")
            run_nats, run_n = 0.0, 0
    torch.save({"model": model.state_dict(), "config": model.config.to_dict(),
                "training": {"init": str(args.init_onnx.name), "bytes_seen": seen, "steps": step,
                             "wall_seconds": time.monotonic() - t0, "lr": args.lr, "batch": args.batch,
                             "bptt": args.bptt, "segment": args.segment, "clip": args.clip, "weights": weights,
                             "torch_version": torch.__version__}},
               args.out.with_suffix(".pt"))
    save_params(from_float(model.state_dict(), layers, args.clip), args.out)
    print(f"qat: {seen:,d} bytes in {time.monotonic() - t0:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
