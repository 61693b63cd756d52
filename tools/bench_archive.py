"""Archive-level benchmark for the core: auto selection vs every forced codec vs tar|xz -9e, and
`lmar create --codec zstd` vs `tar -cf - | zstd` wall time (ratio of medians), all in one run.

    python tools/bench_archive.py ../shared/corpus [--codecs store,zlib,...] [--repeat 3] [-j 2]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run(cmd: str, cwd: str) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, shell=True, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("tree")
    ap.add_argument("--codecs", default="store,zlib,bz2,lzma,zstd,brotli,ppmd")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--level", default="default")
    ap.add_argument("--json")
    args = ap.parse_args()
    tree = os.path.abspath(args.tree)
    parent, name = os.path.dirname(tree), os.path.basename(tree)
    lmar = shutil.which("lmar") or f"{sys.executable} -m lmar.cli"
    work = tempfile.mkdtemp()
    raw = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tree) for f in fs)
    rows: dict[str, int] = {}
    try:
        out = os.path.join(work, "auto.lmar")
        t = run(f"{lmar} create -q -j {args.jobs} --level {args.level} --json {out} {name} > {work}/auto.json", parent)
        rows["lmar auto"] = os.path.getsize(out)
        print(f"lmar auto: {rows['lmar auto']} bytes in {t:.1f}s", file=sys.stderr)
        chosen: dict[str, int] = {}
        for m in json.load(open(f"{work}/auto.json"))["members"]:
            if m["codec"]:
                chosen[m["codec"]] = chosen.get(m["codec"], 0) + 1
        for codec in args.codecs.split(","):
            out = os.path.join(work, f"{codec}.lmar")
            run(f"{lmar} create -q -j {args.jobs} --codec {codec} {out} {name}", parent)
            rows[f"lmar --codec {codec}"] = os.path.getsize(out)
        run(f"tar -cf - {name} | xz -9e -T1 > {work}/t.xz", parent)
        rows["tar | xz -9e"] = os.path.getsize(f"{work}/t.xz")
        best_forced = min(v for k, v in rows.items() if k.startswith("lmar --codec"))
        print(f"\nTree {tree}: {raw} bytes raw\n")
        print(f"| archive | bytes | % of raw | vs best forced |\n|---|---:|---:|---:|")
        for k, v in rows.items():
            print(f"| {k} | {v} | {100 * v / raw:.2f} | {v / best_forced:.4f} |")
        print(f"\nauto chose: {', '.join(f'{k} x{v}' for k, v in sorted(chosen.items()))}")
        # zstd speed: lmar create/extract vs tar|zstd (same level 19, long window), medians of repeats
        tl, tt, xl, xt = [], [], [], []
        for _ in range(args.repeat):
            tl.append(run(f"{lmar} create -q -j {args.jobs} --overwrite --codec zstd {work}/z.lmar {name}", parent))
            tt.append(run(f"tar -cf - {name} | zstd -19 --long=27 -T{args.jobs} -q -f -o {work}/z.tar.zst", parent))
            shutil.rmtree(f"{work}/x", ignore_errors=True)
            os.makedirs(f"{work}/x")
            xl.append(run(f"{lmar} extract -q {work}/z.lmar -C {work}/x", parent))
            shutil.rmtree(f"{work}/y", ignore_errors=True)
            os.makedirs(f"{work}/y")
            xt.append(run(f"zstd -d -q -c --long=27 {work}/z.tar.zst | tar -xf - -C {work}/y", parent))
        m = statistics.median
        print(f"\nzstd create: lmar {m(tl):.2f}s vs tar|zstd {m(tt):.2f}s (ratio {m(tl) / m(tt):.2f}); "
              f"extract: lmar {m(xl):.2f}s vs zstd|tar {m(xt):.2f}s (ratio {m(xl) / m(xt):.2f}); "
              f"sizes {os.path.getsize(f'{work}/z.lmar')} vs {os.path.getsize(f'{work}/z.tar.zst')}")
        if args.json:
            json.dump({"raw": raw, "sizes": rows, "chosen": chosen}, open(args.json, "w"), indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
