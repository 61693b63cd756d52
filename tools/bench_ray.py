#!/usr/bin/env python3
"""Ray executor vs the local pool: `lm` throughput with 1 and 2 workers, and what a task costs to ship.

Usage: python tools/bench_ray.py [--mb 2] [--piece-kb 128] [--json out.json] [--skip-lm]

Input: real text from ../shared/corpus/text (the skewed aaa/alphabet/random files left out), cut into
pieces of --piece-kb so that each piece is one task (files of at least 64 KiB are coded on their own),
--mb in all. Runs, each timed from ``ArchiveWriter.add`` start to end with the workers already started (their start
is timed apart): Ray with 1 worker, Ray with 2 workers (one local Ray instance with 2 CPUs), the local
pool with -j 2. Each worker is pinned to a core of its own (--no-pin: not), so "1 worker" is 1 CPU.
Each run's archive must be byte-identical to the others. Each run also records the CPU seconds its
workers used: on a shared machine ``cpu_share`` says how much of a core each worker got, and the
``ratios_per_cpu`` take that out (work per worker CPU-second, times the workers). Overhead probes (no codec): the round trip of
one tiny task (submit, wait), tiny tasks in bulk (per task), and tasks carrying 1-16 MB of bytes (per MB).
Needs ``lmar[ray]``. On a shared machine run it under ``nice``; the figures are ratios, not absolutes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "text"
SKIP = {"aaa.txt", "alphabet.txt", "random.txt"}


def make_input(where: Path, mb: float, piece_kb: int) -> int:
    """Pieces of real text in ``where``; returns the bytes written."""
    text = b"".join((CORPUS / n).read_bytes() for n in sorted(os.listdir(CORPUS)) if n not in SKIP)
    want = int(mb * (1 << 20))
    while len(text) < want:
        text += text
    text = text[:want]
    piece = piece_kb << 10
    where.mkdir(parents=True, exist_ok=True)
    for i in range(0, len(text), piece):
        (where / f"part{i // piece:03d}.txt").write_bytes(text[i:i + piece])
    return len(text)


def load() -> float:
    return float(open("/proc/loadavg").read().split()[0]) if os.path.exists("/proc/loadavg") else -1.0


def pin_all_threads(cpu: int) -> int:
    """Confine this process, every thread of it, to one core: one worker = one CPU, as Ray counts it
    (an lm worker overlaps its network and mixer on two threads, which would borrow the other core)."""
    for tid in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(tid), {cpu})
    return os.getpid()


def _pin_from_queue(q: Any) -> None:
    pin_all_threads(q.get())


def executor_for(kind: str, jobs: int, pin: bool) -> Any:
    """An executor like ``open_executor``'s, started (and pinned) before the clock starts."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from lmar.executors import open_executor

    if kind == "ray":
        ex = open_executor("ray", jobs)
        if pin:
            import ray

            ray.get([a.run.remote(pin_all_threads, i % os.cpu_count()) for i, a in enumerate(ex._actors)])
        return ex
    if not pin:
        return open_executor("local", jobs)
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    for i in range(jobs):
        q.put(i % os.cpu_count())
    ex = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_pin_from_queue, initargs=(q,))
    ex.workers, ex.reads_paths = jobs, True  # type: ignore[attr-defined]
    for f in [ex.submit(time.sleep, 0.2) for _ in range(jobs)]:
        f.result()  # every worker started (and pinned)
    return ex


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used (Linux /proc; -1 when unknown)."""
    total = 0
    try:
        for pid in pids:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except OSError:
        return -1.0
    return total / os.sysconf("SC_CLK_TCK")


def worker_pids(ex: Any) -> list[int]:
    return ex.worker_pids() if hasattr(ex, "worker_pids") else list(ex._processes)


def lm_run(src: Path, out: Path, kind: str, jobs: int, pin: bool) -> dict[str, Any]:
    import lmar
    from lmar import writer
    from lmar.archive import CreateOptions
    from lmar.selection import SelectOptions

    ex = executor_for(kind, jobs, pin)
    opts = CreateOptions(select=SelectOptions(codec="lm", verify=False), executor=kind, jobs=jobs)
    saved = writer.open_executor
    writer.open_executor = lambda *a, **k: ex  # the writer shuts it down when done
    before = load()
    pids = worker_pids(ex)
    cpu0 = cpu_seconds(pids)
    used: list[float] = []
    shutdown = ex.shutdown

    def measured_shutdown(*a: Any, **k: Any) -> None:  # the writer shuts the workers down: read them first
        used.append(cpu_seconds(pids) - cpu0)
        shutdown(*a, **k)

    ex.shutdown = measured_shutdown
    try:
        t = time.perf_counter()
        with lmar.open(str(out), "w", options=opts, overwrite=True) as w:
            results = w.add([src.name])
        wall = time.perf_counter() - t
        cpu = used[0]
    finally:
        writer.open_executor = saved
    failed = [r.path for r in results if r.error]
    if failed:
        raise SystemExit(f"bench_ray: members failed: {failed}")
    # cpu_share: of the wall time x workers, how much CPU the workers got (1.0: a whole core each)
    return {"wall_s": round(wall, 2), "worker_cpu_s": round(cpu, 2), "cpu_share": round(cpu / (wall * jobs), 3),
            "load_before": before, "load_after": load()}


def startup(kind: str, jobs: int) -> float:
    from lmar.executors import open_executor

    t = time.perf_counter()
    ex = open_executor(kind, jobs)
    ex.submit(len, b"x").result()
    ex.shutdown()
    return time.perf_counter() - t


def probes(kind: str, jobs: int) -> dict[str, Any]:
    """Per-task and per-MB costs of an executor, with ``len`` as the task (no codec work)."""
    from lmar.executors import open_executor

    ex = open_executor(kind, jobs)
    try:
        for _ in range(20):  # warm: workers started, functions registered
            ex.submit(len, b"x").result()
        n = 200
        t = time.perf_counter()
        for _ in range(n):
            ex.submit(len, b"x").result()
        round_trip = (time.perf_counter() - t) / n
        n = 1000
        t = time.perf_counter()
        futs = [ex.submit(len, b"x") for _ in range(n)]
        for f in futs:
            f.result()
        bulk = (time.perf_counter() - t) / n
        ship = {}
        for mb in (1, 4, 16):
            payload = os.urandom(mb << 20)
            t = time.perf_counter()
            for _ in range(3):
                assert ex.submit(len, payload).result() == len(payload)
            ship[mb] = (time.perf_counter() - t) / 3
        per_mb = (ship[16] - ship[1]) / 15
    finally:
        ex.shutdown()
    return {"round_trip_ms": round(round_trip * 1e3, 3), "bulk_per_task_ms": round(bulk * 1e3, 3),
            "ship_s": {k: round(v, 4) for k, v in ship.items()}, "per_mb_ms": round(per_mb * 1e3, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=2.0)
    ap.add_argument("--piece-kb", type=int, default=128)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--skip-lm", action="store_true", help="overhead probes only")
    ap.add_argument("--no-pin", action="store_true", help="let workers' threads use any core")
    ap.add_argument("--runs", default="ray1,ray2,local2",
                    help="which lm runs, in this order (default ray1,ray2,local2); ratios need all three")
    args = ap.parse_args()
    json_out = Path(args.json).resolve() if args.json else None  # resolved before the chdir below
    os.environ.setdefault("LMAR_LOAD_PLUGINS", "")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from lmar.ray_executor import LOCAL_SYSTEM_CONFIG

    pin = not args.no_pin and hasattr(os, "sched_setaffinity") and os.path.isdir("/proc/self/task")
    report: dict[str, Any] = {"cpus": os.cpu_count(), "mb": args.mb, "piece_kb": args.piece_kb, "pinned": pin}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        src = Path(tmp) / "text"
        report["bytes"] = size = make_input(src, args.mb, args.piece_kb)
        os.chdir(tmp)
        # as lmar starts a local instance: workers at the driver's priority (Ray's default is +15)
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                 _system_config=LOCAL_SYSTEM_CONFIG)
        try:
            report["startup_s"] = {"ray1": round(startup("ray", 1), 2), "ray2": round(startup("ray", 2), 2),
                                   "local2": round(startup("local", 2), 2)}
            report["probes"] = {"ray2": probes("ray", 2), "local2": probes("local", 2)}
            print(json.dumps(report, indent=1), flush=True)
            if not args.skip_lm:
                runs = {}
                known = {"ray1": ("ray", 1), "ray2": ("ray", 2), "local2": ("local", 2)}
                for name in args.runs.split(","):
                    kind, jobs = known[name]
                    runs[name] = lm_run(src, Path(tmp) / f"{name}.lmar", kind, jobs, pin)
                    runs[name]["kb_per_s"] = round(size / runs[name]["wall_s"] / 1e3, 2)
                    # what the run would do with a whole core per worker: rate per worker CPU-second x workers
                    runs[name]["kb_per_cpu_s"] = round(size / runs[name]["worker_cpu_s"] / 1e3, 2)
                    print(name, runs[name], flush=True)
                archives = {n: (Path(tmp) / f"{n}.lmar").read_bytes() for n in runs}
                report["identical"] = len(set(archives.values())) == 1
                report["archive_bytes"] = len(next(iter(archives.values())))
                report["lm"] = runs
            if not args.skip_lm and set(runs) == set(known):
                report["ratios"] = {"ray2_over_ray1": round(runs["ray1"]["wall_s"] / runs["ray2"]["wall_s"], 3),
                                    "ray2_over_local2": round(runs["local2"]["wall_s"] / runs["ray2"]["wall_s"], 3)}
                # the same ratios with each worker's CPU share taken out (contention from other processes)
                report["ratios_per_cpu"] = {
                    "ray2_over_ray1": round(2 * runs["ray2"]["kb_per_cpu_s"] / runs["ray1"]["kb_per_cpu_s"], 3),
                    "ray2_over_local2": round(runs["ray2"]["kb_per_cpu_s"] / runs["local2"]["kb_per_cpu_s"], 3)}
        finally:
            ray.shutdown()
    print(json.dumps(report, indent=1))
    if json_out:
        json_out.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if report.get("identical", True) else 1


if __name__ == "__main__":
    sys.exit(main())
