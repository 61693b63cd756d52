#!/usr/bin/env python3
"""Do llm members (imported LLMs, fp32 and int8 graphs) made here decode on other CPUs? Measure it.

The llm codecs run a float ONNX graph (the int8 graph too: its weight GEMMs are integer, but attention,
RMSNorm, RoPE, SiLU and softmax stay float), and their members record a numerics profile and say they are
CPU-family-bound (`lmar list -l`). This measures what that binding means: a member coded natively with
``lmar create --codec llm-<model> -j 1`` is extracted under ``qemu-x86_64 -cpu Nehalem`` (SSE4.2),
``-cpu Haswell`` (AVX2 + FMA) and ``qemu-aarch64 -cpu neoverse-n1``; and the reverse, made under aarch64
emulation and extracted here. Each row is IDENTICAL, or FAILED with the error lmar printed (which should
name what differs). The model is a small random Llama imported with lmar's own importer (llm_model.py):
SmolLM2 is far too slow under emulation.

Run from the repository root with the venv that has the ``import`` extra:
    .venv/bin/python tools/portability/llm_check.py [--graphs fp32,int8] [--no-reverse] [--hidden 128 ...]
Set-up (QEMU, the arm64 sysroot, both installations of lmar) is crosscheck.py's and shared with it, in
work-data/portability/; results go to work-data/portability/llm-results.md and .json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import crosscheck  # noqa: E402
import environments as envs  # noqa: E402
import llm_model  # noqa: E402
import userland  # noqa: E402
from crosscheck import CORPUS, DEFAULT_TEXT, REPO, Outcome  # noqa: E402
from userland import log  # noqa: E402

PROFILE_SNIPPET = """
import json
from lmar.plugins.llmcore.runtime import numerics_profile
print(json.dumps(numerics_profile()))
"""
#: Words a failure must contain to count as one that names the numerics difference.
NAMES_DIFFERENCE = ("numerics", "recorded")


def with_home(target: envs.Target, home: Path) -> envs.Target:
    """The target with LMAR_HOME naming the imported models (the same files on every target: QEMU falls
    back to the host's paths) and one ORT thread (payloads do not depend on it; the host is shared)."""
    return dataclasses.replace(target, env={**target.env, "LMAR_HOME": str(home), "LMAR_LLM_THREADS": "1"})


def binding(target: envs.Target, work: Path, archive: Path) -> str:
    """What ``lmar list -l`` says about the first member's machine binding."""
    proc = subprocess.run(target.command("-m", "lmar.cli", "list", "-l", str(archive)), env=target.environ(work),
                          capture_output=True, text=True, timeout=600)
    for line in proc.stdout.splitlines():
        if "decodes" in line:
            return line[line.index("decodes"):].rstrip("]").strip()
    return "(no binding shown)"


def profile(target: envs.Target, work: Path) -> dict:
    proc = subprocess.run(target.command("-c", PROFILE_SNIPPET), env=target.environ(work), capture_output=True,
                          text=True, timeout=crosscheck.COMMAND_TIMEOUT)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or [str(proc.returncode)])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def acceptable(result: str) -> bool:
    """IDENTICAL, or a failure that names the numerics difference; anything else (wrong bytes, a create
    that fails, an error that blames the payload) is a bug."""
    return result == "IDENTICAL" or (result.startswith("FAILED") and all(w in result for w in NAMES_DIFFERENCE))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=REPO / "work-data" / "portability", help="build folder")
    ap.add_argument("--text", nargs="+", type=Path, help=f"text files to code (default: {DEFAULT_TEXT})")
    ap.add_argument("--graphs", default="fp32,int8", help="graphs to check: fp32, int8 (comma-separated)")
    ap.add_argument("--x86-cpus", nargs="*", default=["Nehalem", "Haswell"], help="qemu-x86_64 -cpu models")
    ap.add_argument("--arm-cpu", default="neoverse-n1", choices=sorted(userland.ARM_CPUS))
    ap.add_argument("--no-arm", action="store_true", help="skip aarch64 (both directions)")
    ap.add_argument("--no-reverse", action="store_true", help="skip creating archives under aarch64 emulation")
    ap.add_argument("--worktree", action="store_true", help="check the working tree (default: HEAD)")
    defaults = llm_model.ModelConfig()
    for f in dataclasses.fields(llm_model.ModelConfig):
        ap.add_argument(f"--{f.name.replace('_', '-')}", type=int, default=getattr(defaults, f.name),
                        help=f"model: {f.name} (default {getattr(defaults, f.name)})")
    args = ap.parse_args(argv)
    cfg = llm_model.ModelConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(llm_model.ModelConfig)})
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    texts = args.text or [CORPUS / t for t in DEFAULT_TEXT]
    for f in texts:
        if not f.is_file():
            raise SystemExit(f"[portability] input {f} not found (pass --text)")
    graphs = [g for g in args.graphs.split(",") if g]

    head, host, arm, _no_wheel, _pip = crosscheck.prepare(work, args.arm_cpu, args.worktree)
    t0 = time.monotonic()
    home, cards = llm_model.ensure_models(cfg, work)
    log(f"models ready in {time.monotonic() - t0:.0f} s: " + ", ".join(
        f"{g} {c['codec_name']} ({c['id'][:12]})" for g, c in cards.items()))
    emulated = [envs.x86_emulated(host, cpu) for cpu in args.x86_cpus] + ([] if args.no_arm else [arm])
    host, arm = with_home(host, home), with_home(arm, home)
    emulated = [with_home(t, home) for t in emulated]

    run_dir = work / "llm-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    inputs = run_dir / "input"
    inputs.mkdir(parents=True)
    for f in texts:
        shutil.copyfile(f, inputs / f.name)
    names = [t.name for t in texts]

    outcomes: list[tuple[str, Outcome]] = []
    bindings: dict[str, str] = {}
    makers = [host] + ([] if args.no_reverse or args.no_arm else [arm])
    for graph in graphs:
        codec = cards[graph]["codec_name"]
        for maker in makers:
            readers = emulated if maker is host else [host]
            archive = run_dir / f"made-on-{maker.name.split()[0]}" / f"{graph}.lmar"
            t1 = time.monotonic()
            failed = crosscheck.create(maker, work, archive, codec, inputs, names)
            log(f"created {graph} on {maker.name} in {time.monotonic() - t1:.0f} s (with verification)")
            if not failed and maker is host:
                bindings[graph] = binding(host, work, archive)
            for reader in readers:
                if failed:
                    outcomes.append((graph, Outcome(maker.name, reader.name, codec, failed, 0.0)))
                    continue
                dest = run_dir / "out" / f"{graph}-{maker.name}-{reader.name}".replace(" ", "_")
                result, secs = crosscheck.extract(reader, work, archive, dest, inputs, names)
                log(f"{graph}: {maker.name} -> {reader.name}: {result} ({secs:.0f} s)")
                outcomes.append((graph, Outcome(maker.name, reader.name, codec, result, secs)))

    profiles = {t.name: profile(t, work) for t in [host, *emulated]}
    rows = ["| graph | made on | extracted on | result | extract s |", "|---|---|---|---|---:|"]
    rows += [f"| {g} | {o.made_on} | {o.extracted_on} | {o.result.replace('|', '/')} | {o.seconds:.0f} |"
             for g, o in outcomes]
    sizes = ", ".join(f"{n} {(inputs / n).stat().st_size:,} B" for n in names)
    report = "\n".join([
        f"lmar {'working tree' if args.worktree else 'HEAD'} {head[:80]}", f"model: {cfg.words()}",
        "codecs: " + ", ".join(f"{g} {c['codec_name']} ({c['id'][:12]}, {c['parameters']:,} parameters)"
                               for g, c in cards.items()),
        f"inputs: {sizes}", "", *rows, "",
        *[f"`lmar list -l` ({g}, made on the host): {b}" for g, b in bindings.items()], "",
        "llm numerics profile on each target:", *[f"- {n}: {json.dumps(p)}" for n, p in profiles.items()],
    ])
    print("\n" + report)
    (work / "llm-results.md").write_text(report + "\n")
    (work / "llm-results.json").write_text(json.dumps({
        "head": head, "model": dataclasses.asdict(cfg), "cards": cards, "bindings": bindings, "profiles": profiles,
        "outcomes": [{"graph": g, **o.__dict__} for g, o in outcomes]}, indent=1))
    bad = [f"{g} {o.made_on} -> {o.extracted_on}" for g, o in outcomes if not acceptable(o.result)]
    if bad:
        log("not IDENTICAL and not a failure that names the numerics difference: " + "; ".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
