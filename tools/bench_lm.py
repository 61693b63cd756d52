"""Benchmark the ``lm`` codec against PPMd (order 6, 256 MB) and ``xz -9e`` on a text corpus.

Prints, per file, the compressed sizes and lm's bits/byte, then totals and the ratios lm/ppmd and lm/xz;
then compress/decompress speed on a ~1 MB sample and how speed scales with the number of segments.
Every lm round trip is verified. Run it niced: ``nice -n 10 .venv/bin/python tools/bench_lm.py``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pyppmd

from lmar.plugins.lm_codec import ENCODE_SCHEMES, LmCodec

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "text"


def ppmd_size(data: bytes) -> int:
    enc = pyppmd.Ppmd7Encoder(6, 256 << 20)
    return len(enc.encode(data) + enc.flush(endmark=False))


def xz_size(path: Path) -> int:
    return len(subprocess.run(["xz", "-9e", "-k", "-c", str(path)], check=True, capture_output=True).stdout)


def _compress(codec: LmCodec, data: bytes) -> bytes:
    """The codec's payload; a decode-only scheme (the codec refuses to encode it) is coded by the codec's
    own block coder with the codec's plan, network and prior: the same bits, for comparison only."""
    scheme = codec.params["scheme"]
    if scheme in ENCODE_SCHEMES:
        return codec.compress(data)
    from lmar.plugins.lmcore import block_coder

    net = codec._network() if data else None
    return block_coder.encode_block(data, codec._plan(len(data)), net, codec._fingerprint(), scheme, codec._prior)


def lm_round_trip(data: bytes, **params) -> tuple[int, float, float]:
    """(payload bytes, compress seconds, decompress seconds); raises if the round trip is not exact."""
    codec = LmCodec(**params)
    t0 = time.perf_counter()
    payload = _compress(codec, data)
    t1 = time.perf_counter()
    out = LmCodec(**codec.params).decompress(payload, len(data))
    t2 = time.perf_counter()
    if out != data:
        raise SystemExit(f"lm round trip FAILED ({len(data)} bytes, params {params})")
    return len(payload), t1 - t0, t2 - t1


def kbs(n: int, s: float) -> float:
    return n / 1024 / s if s > 0 else float("inf")


def _params(entry: str) -> dict[str, str]:
    """``cm6`` or ``cm6:bytegru-v3i`` (a scheme with a named network) as codec params."""
    scheme, _, model = entry.partition(":")
    return {"scheme": scheme, **({"model": model} if model else {})}


def compare(args: argparse.Namespace, schemes: list[str]) -> int:
    """Each scheme (with its default network) on the same files and sample, interleaved file by file so a
    drift in this shared machine's speed hits all of them alike."""
    files = sorted(p for p in args.corpus.iterdir() if p.is_file())
    print(f"{'file':<16}{'raw':>9}" + "".join(f"{s:>9}" for s in schemes) + "".join(f"{s + '/' + schemes[0]:>10}" for s in schemes[1:]))
    tot = {s: [0, 0.0, 0.0] for s in schemes}
    raw = 0
    for path in [] if args.no_files else files:
        data = path.read_bytes()
        raw += len(data)
        sizes = []
        for s in schemes:
            n, ct, dt = lm_round_trip(data, **_params(s))
            tot[s][0] += n
            tot[s][1] += ct
            tot[s][2] += dt
            sizes.append(n)
        print(f"{path.name:<16}{len(data):>9}" + "".join(f"{n:>9}" for n in sizes)
              + "".join(f"{n / sizes[0]:>10.4f}" for n in sizes[1:]), flush=True)
    if not args.no_files:
        print(f"{'TOTAL':<16}{raw:>9}" + "".join(f"{tot[s][0]:>9}" for s in schemes)
              + "".join(f"{tot[s][0] / tot[schemes[0]][0]:>10.4f}" for s in schemes[1:]))
        for s in schemes:
            print(f"{s}: {tot[s][0]:,d} bytes, {tot[s][0] * 8 / raw:.4f} bits/byte, compress "
                  f"{kbs(raw, tot[s][1]):.1f} KB/s, decompress {kbs(raw, tot[s][2]):.1f} KB/s (whole set)")
    if args.speed_bytes:
        corpus = b"".join(p.read_bytes() for p in sorted(files, key=lambda p: -p.stat().st_size))
        sample = corpus[: args.speed_bytes]
        for s in schemes:
            n, ct, dt = lm_round_trip(sample, **_params(s))
            print(f"{s} speed on {len(sample)} bytes: compress {kbs(len(sample), ct):.1f} KB/s, "
                  f"decompress {kbs(len(sample), dt):.1f} KB/s, {n * 8 / len(sample):.3f} bits/byte", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--speed-bytes", type=int, default=1 << 20, help="size of the speed sample (0: skip)")
    ap.add_argument("--scaling-bytes", type=int, default=32 << 10, help="size of the scaling sample (0: skip)")
    ap.add_argument("--scaling", default="4,16,64,256", help="max_segments values for the scaling table")
    ap.add_argument("--no-files", action="store_true", help="skip the per-file size table (speed runs only)")
    ap.add_argument("--schemes", default="", help="compare lm schemes side by side in this process, e.g. cm5,cm6 or "
                    "cm6:bytegru-v3i,cm6 (scheme:network) "
                    "(sizes and speed of each, and the ratio of each to the first)")
    args = ap.parse_args(argv)
    if args.schemes:
        return compare(args, [s for s in args.schemes.split(",") if s])

    files = sorted(p for p in args.corpus.iterdir() if p.is_file())
    info = LmCodec.info()
    print(f"model {info.get('model')} sha256 {str(info.get('model_sha256'))[:12]} bytes {info.get('model_bytes')}")
    print(f"{'file':<16}{'raw':>9}{'lm':>9}{'ppmd':>9}{'xz':>9}{'lm bpb':>8}{'lm/ppmd':>9}{'lm/xz':>7}{'c KB/s':>8}{'d KB/s':>8}")
    tot = {"raw": 0, "lm": 0, "ppmd": 0, "xz": 0, "ct": 0.0, "dt": 0.0}
    for path in [] if args.no_files else files:
        data = path.read_bytes()
        lm, ct, dt = lm_round_trip(data)
        pp, xz = ppmd_size(data), xz_size(path)
        for k, v in (("raw", len(data)), ("lm", lm), ("ppmd", pp), ("xz", xz), ("ct", ct), ("dt", dt)):
            tot[k] += v
        print(f"{path.name:<16}{len(data):>9}{lm:>9}{pp:>9}{xz:>9}{lm * 8 / max(1, len(data)):>8.3f}"
              f"{lm / pp:>9.3f}{lm / xz:>7.3f}{kbs(len(data), ct):>8.1f}{kbs(len(data), dt):>8.1f}", flush=True)
    if not args.no_files:
        print(f"{'TOTAL':<16}{tot['raw']:>9}{tot['lm']:>9}{tot['ppmd']:>9}{tot['xz']:>9}"
              f"{tot['lm'] * 8 / tot['raw']:>8.3f}{tot['lm'] / tot['ppmd']:>9.3f}{tot['lm'] / tot['xz']:>7.3f}"
              f"{kbs(tot['raw'], tot['ct']):>8.1f}{kbs(tot['raw'], tot['dt']):>8.1f}")
        print(f"targets: lm/ppmd <= 0.90 ({'met' if tot['lm'] <= 0.9 * tot['ppmd'] else 'NOT met'}), "
              f"lm/xz <= 0.75 ({'met' if tot['lm'] <= 0.75 * tot['xz'] else 'NOT met'})")

    corpus = b"".join(p.read_bytes() for p in sorted(files, key=lambda p: -p.stat().st_size))
    if args.speed_bytes:
        sample = corpus[: args.speed_bytes]
        lm, ct, dt = lm_round_trip(sample)
        print(f"speed on {len(sample)} bytes: compress {kbs(len(sample), ct):.1f} KB/s, "
              f"decompress {kbs(len(sample), dt):.1f} KB/s, {lm * 8 / len(sample):.3f} bits/byte", flush=True)
    if args.scaling_bytes:
        sample = corpus[: args.scaling_bytes]
        print(f"scaling on {len(sample)} bytes (min_segment 64):")
        print(f"{'segments':>9}{'steps':>7}{'c KB/s':>8}{'d KB/s':>8}{'bits/byte':>10}")
        for s in (int(x) for x in args.scaling.split(",")):
            lm, ct, dt = lm_round_trip(sample, max_segments=s, min_segment=64)
            codec = LmCodec(max_segments=s, min_segment=64)
            plan = codec._plan(len(sample))
            print(f"{plan.count:>9}{plan.steps:>7}{kbs(len(sample), ct):>8.1f}{kbs(len(sample), dt):>8.1f}"
                  f"{lm * 8 / len(sample):>10.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
