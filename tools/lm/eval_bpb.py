"""Measure bits/byte of the exported ONNX model on the evaluation texts and record them in the card.

Why through ONNX and in segments: that is exactly how the codec uses the model (one-step graph,
independent segments starting from BOS and a zero state), so these numbers are what the codec's
entropy coder can reach, minus its small coding overhead. ``shared/corpus`` is evaluation-only data.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "plugins" / "models"
NAME = "bytegru-v3"
BOS = 256


def session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def segment_bits(sess: ort.InferenceSession, segs: list[bytes], layers: int, hidden: int) -> np.ndarray:
    """Total bits to code each segment, all segments stepped together as one batch."""
    b = len(segs)
    longest = max(len(s) for s in segs)
    grid = np.zeros((b, longest), dtype=np.int64)
    mask = np.zeros((b, longest), dtype=bool)
    for i, s in enumerate(segs):
        grid[i, : len(s)] = np.frombuffer(s, dtype=np.uint8)
        mask[i, : len(s)] = True
    state = np.zeros((layers, b, hidden), dtype=np.float32)
    byte = np.full(b, BOS, dtype=np.int64)
    bits = np.zeros(b)
    rows = np.arange(b)
    for t in range(longest):
        logits, state = sess.run(None, {"byte": byte, "state": state})
        m = logits.max(axis=1, keepdims=True)
        logz = np.log(np.exp(logits - m).sum(axis=1)) + m[:, 0]
        nll = logz - logits[rows, grid[:, t]]
        bits += np.where(mask[:, t], nll / np.log(2.0), 0.0)
        byte = grid[:, t]
    return bits


def ppmd_bpb(data: bytes) -> float:
    """Reference point: PPMd order 6 with 256 MiB, as the ppmd codec would use it."""
    import pyppmd

    return 8.0 * len(pyppmd.compress(data, max_order=6, mem_size=256 << 20)) / len(data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "text")
    ap.add_argument("--segment", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="print only; leave the JSON card alone")
    ap.add_argument("--name", default=NAME, help="which shipped model (plugins/models/NAME.onnx)")
    args = ap.parse_args(argv)

    onnx_path, card_path = MODELS / f"{args.name}.onnx", MODELS / f"{args.name}.json"
    card = json.loads(card_path.read_text())
    if hashlib.sha256(onnx_path.read_bytes()).hexdigest() != card["onnx_sha256"]:
        raise SystemExit("the JSON card does not describe this ONNX file; re-run export_onnx.py")
    files = sorted(p for p in args.corpus.iterdir() if p.is_file())
    segs, owner = [], []
    for p in files:
        data = p.read_bytes()
        for off in range(0, len(data), args.segment):
            segs.append(data[off: off + args.segment])
            owner.append(p.name)
    t0 = time.time()
    bits = segment_bits(session(onnx_path, args.threads), segs, card["layers"], card["hidden"])
    seconds = time.time() - t0
    result: dict[str, float] = {}
    ppmd: dict[str, float] = {}
    total_bits, total_bytes = 0.0, 0
    print(f"{'file':14s} {'bytes':>8s} {'model bpb':>9s} {'ppmd6 bpb':>9s}")
    for p in files:
        n = p.stat().st_size
        fb = float(sum(b for b, o in zip(bits, owner) if o == p.name))
        result[p.name] = round(fb / n, 4)
        ppmd[p.name] = round(ppmd_bpb(p.read_bytes()), 4)
        total_bits += fb
        total_bytes += n
        print(f"{p.name:14s} {n:8d} {result[p.name]:9.3f} {ppmd[p.name]:9.3f}")
    overall = total_bits / total_bytes
    print(f"{'all':14s} {total_bytes:8d} {overall:9.3f}   ({total_bytes / seconds / 1e3:.1f} KB/s, "
          f"batch {len(segs)}, {seconds:.0f}s)")
    if not args.no_write:
        card["eval"] = result
        card["eval_settings"] = {"corpus": "shared/corpus/text", "segment_bytes": args.segment,
                                 "overall_bits_per_byte": round(overall, 4)}
        card["reference_ppmd_o6"] = ppmd
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
