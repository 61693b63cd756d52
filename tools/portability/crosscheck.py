#!/usr/bin/env python3
"""Do lmar archives extract identically on other CPUs? Emulate them with QEMU user mode and compare bytes.

Creates archives on the host (``--codec lm``, ``--codec audio``, and ``--codec ppmd`` as a control that
must always pass), extracts them under ``qemu-x86_64 -cpu Nehalem`` (SSE4.2, no AVX), ``-cpu Haswell``
(AVX2 + FMA) and ``qemu-aarch64 -cpu neoverse-n1``; then the reverse: archives made under aarch64
emulation, extracted on the host. Prints a table and writes it to ``work-data/portability/results.md``.

Run from the repository root (as root the first time, to install qemu-user):
    .venv/bin/python tools/portability/crosscheck.py
Everything it builds lives in work-data/portability/ (gitignored); see tools/portability/README.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import environments as envs  # noqa: E402
import userland  # noqa: E402
from userland import log  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
DEFAULT_TEXT = ("text/grammar.lsp", "text/xargs.1")
DEFAULT_AUDIO = "audio/whisper_jfk.wav"
#: One command under emulation may take this long (numba compiles the mixer under TCG first).
COMMAND_TIMEOUT = 3600
PROFILE_SNIPPET = """
import json, platform
from lmar.plugins.lmcore import runtime
prof = runtime.numerics_profile("CPUExecutionProvider")
try:
    import llvmlite.binding as llvm
    prof["llvm_cpu"] = llvm.get_host_cpu_name()
except Exception as exc:
    prof["llvm_cpu"] = f"? {exc}"
print(json.dumps(prof))
"""


@dataclass
class Outcome:
    made_on: str
    extracted_on: str
    codec: str
    result: str
    seconds: float


def lmar(target: envs.Target, work: Path, *args: str, cwd: Path) -> tuple[int, str, float]:
    """Run ``lmar ARGS`` on a target; return (exit code, its first error line or '', seconds)."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run(target.command("-m", "lmar.cli", *args), cwd=cwd, env=target.environ(work),
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {COMMAND_TIMEOUT} s", time.monotonic() - t0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("lmar:") or "Error" in ln]
    return proc.returncode, (lines[0] if lines else proc.stderr.strip()[-300:]), time.monotonic() - t0


def create(target: envs.Target, work: Path, archive: Path, codec: str, inputs: Path, names: list[str]) -> str:
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.unlink(missing_ok=True)
    rc, err, secs = lmar(target, work, "create", "-q", "--codec", codec, "-j", "1", str(archive), *names,
                         cwd=inputs)
    log(f"create {codec} on {target.name}: rc {rc} in {secs:.0f} s {err}")
    return "" if rc == 0 else f"create failed: {err or f'exit {rc}'}"


def extract(target: envs.Target, work: Path, archive: Path, dest: Path, inputs: Path, names: list[str]) -> tuple[str, float]:
    """Extract and compare every member with its original; 'IDENTICAL' or what went wrong."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    rc, err, secs = lmar(target, work, "extract", str(archive), "-C", str(dest), cwd=dest)
    if rc:
        return f"FAILED: {err or f'exit {rc}'}", secs
    differ = [n for n in names if not (dest / n).is_file() or (dest / n).read_bytes() != (inputs / n).read_bytes()]
    return ("DIFFERENT: " + ", ".join(differ)) if differ else "IDENTICAL", secs


def profile(target: envs.Target, work: Path) -> dict:
    proc = subprocess.run(target.command("-c", PROFILE_SNIPPET), env=target.environ(work), capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1:] or proc.returncode}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def codecs_report(target: envs.Target, work: Path) -> str:
    """``lmar codecs --json`` on a target, summarised: which built-in codecs are available there."""
    proc = subprocess.run(target.command("-m", "lmar.cli", "codecs", "--json"), env=target.environ(work),
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    try:
        rows = json.loads(proc.stdout)
    except ValueError:
        return f"lmar codecs failed: {proc.stderr.strip()[-300:]}"
    ok = sorted(r["name"] for r in rows if r.get("name") and r.get("available"))
    off = [f"{r['name']} ({r.get('reason') or 'unavailable'})" for r in rows if r.get("name") and not r.get("available")]
    broken = [f"plugin {r['plugin_failure']['plugin']}: {r['plugin_failure']['error']}" for r in rows
              if r.get("plugin_failure")]
    return "; ".join([f"available: {', '.join(ok)}"] + ([f"unavailable: {', '.join(off)}"] if off else [])
                     + broken)


def table(outcomes: list[Outcome]) -> str:
    rows = ["| made on | extracted on | codec | result | extract s |", "|---|---|---|---|---:|"]
    rows += [f"| {o.made_on} | {o.extracted_on} | {o.codec} | {o.result.replace('|', '/')} | {o.seconds:.0f} |"
             for o in outcomes]
    return "\n".join(rows)


def prepare(work: Path, arm_cpu: str, worktree: bool) -> tuple[str, envs.Target, envs.Target, list[str], str]:
    """Build (or reuse) QEMU, the arm64 sysroot and both installations of lmar.

    Returns (the commit checked, host target, aarch64 target, requirements without an aarch64 wheel,
    the ``pip install lmar`` report line); llm_check.py shares it.
    """
    t_setup = time.monotonic()
    userland.ensure_qemu()
    sysroot = userland.build_sysroot(work)
    userland.describe_cpu(sysroot, arm_cpu)
    head = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s"], capture_output=True,
                          text=True).stdout.strip()  # before the snapshot: commits may land during the run
    src = envs.lmar_source(REPO, work, worktree)
    reqs = envs.requirements(src)
    wheel = envs.lmar_wheel(src, work)
    host = envs.host_target(work, reqs, wheel)
    wheels, no_wheel = envs.aarch64_wheels(work, reqs)
    arm, pip_report = envs.aarch64_target(work, sysroot, arm_cpu, wheels, wheel)
    log(f"set-up done in {time.monotonic() - t_setup:.0f} s; no aarch64 wheel for: {no_wheel or 'none'}; "
        f"pip install lmar on aarch64: {pip_report}")
    return head, host, arm, no_wheel, pip_report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=REPO / "work-data" / "portability", help="build folder")
    ap.add_argument("--text", nargs="+", type=Path, help=f"text files for --codec lm (default: {DEFAULT_TEXT})")
    ap.add_argument("--audio", type=Path, help=f"WAV file for --codec audio (default: {DEFAULT_AUDIO})")
    ap.add_argument("--x86-cpus", nargs="*", default=["Nehalem", "Haswell"], help="qemu-x86_64 -cpu models")
    ap.add_argument("--arm-cpu", default="neoverse-n1", choices=sorted(userland.ARM_CPUS),
                    help="qemu-aarch64 -cpu model")
    ap.add_argument("--codecs", default="lm,audio,ppmd", help="codecs to check (comma-separated)")
    ap.add_argument("--no-reverse", action="store_true", help="skip creating archives under aarch64 emulation")
    ap.add_argument("--worktree", action="store_true",
                    help="check the working tree as it is (default: HEAD, via git archive)")
    args = ap.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    texts = args.text or [CORPUS / t for t in DEFAULT_TEXT]
    audio = args.audio or CORPUS / DEFAULT_AUDIO
    for f in [*texts, audio]:
        if not f.is_file():
            raise SystemExit(f"[portability] input {f} not found (pass --text/--audio)")

    head, host, arm, no_wheel, pip_report = prepare(work, args.arm_cpu, args.worktree)
    emulated = [envs.x86_emulated(host, cpu) for cpu in args.x86_cpus] + [arm]
    arm_codecs = codecs_report(arm, work)
    log(f"lmar codecs on {arm.name}: {arm_codecs}")

    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    inputs = run_dir / "input"
    inputs.mkdir(parents=True)
    for f in [*texts, audio]:
        shutil.copyfile(f, inputs / f.name)
    sets = {"lm": [t.name for t in texts], "ppmd": [t.name for t in texts], "audio": [audio.name]}
    codecs = [c for c in args.codecs.split(",") if c in sets]

    outcomes: list[Outcome] = []
    makers = [host] + ([] if args.no_reverse else [arm])
    for maker in makers:
        readers = emulated if maker is host else [host]
        for codec in codecs:
            archive = run_dir / f"made-on-{maker.name.split()[0]}" / f"{codec}.lmar"
            failed = create(maker, work, archive, codec, inputs, sets[codec])
            for reader in readers:
                if failed:
                    outcomes.append(Outcome(maker.name, reader.name, codec, failed, 0.0))
                    continue
                dest = run_dir / "out" / f"{maker.name}-{reader.name}-{codec}".replace(" ", "_")
                result, secs = extract(reader, work, archive, dest, inputs, sets[codec])
                log(f"{codec}: {maker.name} -> {reader.name}: {result} ({secs:.0f} s)")
                outcomes.append(Outcome(maker.name, reader.name, codec, result, secs))

    profiles = {t.name: profile(t, work) for t in [host, *emulated]}
    sizes = ", ".join(f"{n} {(inputs / n).stat().st_size:,} B" for n in sorted({*sets['lm'], *sets['audio']}))
    report = "\n".join([
        f"lmar {'working tree' if args.worktree else 'HEAD'} {head[:80]}", f"inputs: {sizes}", "",
        table(outcomes), "",
        f"no aarch64 wheel (installed without): {', '.join(no_wheel) or 'none'}",
        f"`pip install lmar` from aarch64 wheels only: {pip_report}",
        f"`lmar codecs` on {arm.name}: {arm_codecs}", "",
        "numerics profile seen by lmar on each target (plus LLVM's host CPU, which numba compiles for):",
        *[f"- {name}: {json.dumps(p)}" for name, p in profiles.items()],
    ])
    print("\n" + report)
    (work / "results.md").write_text(report + "\n")
    (work / "results.json").write_text(json.dumps({
        "outcomes": [o.__dict__ for o in outcomes], "profiles": profiles, "no_aarch64_wheel": no_wheel,
        "pip_install_aarch64": pip_report,
        "codecs_aarch64": arm_codecs}, indent=1))
    return 0 if all(o.result == "IDENTICAL" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
