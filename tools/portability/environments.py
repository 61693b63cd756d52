"""Where each CPU runs lmar: wheels, installation folders and the command line that starts Python.

Why installation folders instead of virtual environments: ``pip install --target`` only unpacks wheels,
so the same recipe serves the host and the arm64 sysroot, and nothing is installed over either Python.
Every target runs ``python -S`` with ``PYTHONPATH`` naming these folders, so whatever else the host has in
its site-packages (the repository's editable install included) cannot leak into a measurement.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from userland import log, run

#: Platform tags of Linux aarch64 wheels a Debian 12 (glibc 2.36) userland accepts.
AARCH64_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_27_aarch64",
                     "manylinux_2_28_aarch64", "manylinux_2_31_aarch64", "manylinux_2_34_aarch64",
                     "manylinux_2_35_aarch64", "manylinux_2_36_aarch64")
AARCH64_PYTHON = "3.11"


@dataclass
class Target:
    """One CPU: how to start Python on it and where its packages are."""

    name: str
    prefix: list[str]          # emulator and its options; empty for the host
    python: str
    paths: list[Path]
    env: dict[str, str] = field(default_factory=dict)

    def command(self, *args: str) -> list[str]:
        return self.prefix + [self.python, "-S"] + list(args)

    def environ(self, work: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "NUMBA_", "LMAR_", "VIRTUAL_ENV"))}
        env.update(PYTHONPATH=os.pathsep.join(str(p) for p in self.paths), LMAR_DEVICE="cpu", OMP_NUM_THREADS="1",
                   NUMBA_CACHE_DIR=str(work / "numba-cache" / self.name), PYTHONDONTWRITEBYTECODE="1",
                   **self.env)
        return env


def requirements(repo: Path) -> list[str]:
    """lmar's dependencies from pyproject.toml, pinned to the versions of the running environment."""
    text = (repo / "pyproject.toml").read_text()
    block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M)
    reqs = re.findall(r'"([^"]+)"', block.group(1)) if block else []
    pinned = []
    for req in reqs:
        name = re.split(r"[<>=!~; \[]", req, maxsplit=1)[0]
        try:
            pinned.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pinned.append(req)
    return pinned


def lmar_source(repo: Path, work: Path, worktree: bool) -> Path:
    """lmar's source: HEAD via ``git archive`` (default: unfinished edits stay out) or the working tree."""
    if worktree:
        return repo
    src = work / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", "HEAD"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    return src


def lmar_wheel(src: Path, work: Path) -> Path:
    """A wheel of lmar built from ``src``."""
    out = work / "wheel-lmar"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)])
    (wheel,) = out.glob("lmar-*.whl")
    return wheel


def _fresh_target_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def host_target(work: Path, reqs: list[str], wheel: Path) -> Target:
    """The host CPU, with the same Python as the running script and the pinned dependencies."""
    deps = work / "site-x86_64" / "deps"
    stamp = deps / ".requirements.json"
    if not stamp.is_file() or json.loads(stamp.read_text()) != reqs:
        log("pip install --target (host dependencies)")
        _fresh_target_dir(deps)
        run([sys.executable, "-m", "pip", "install", "-q", "--only-binary=:all:", "--target", str(deps)] + reqs)
        stamp.write_text(json.dumps(reqs))
    site = _fresh_target_dir(work / "site-x86_64" / "lmar")
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)])
    return Target("x86-64 (host)", [], os.path.realpath(sys.executable), [site, deps])


def aarch64_wheels(work: Path, reqs: list[str]) -> tuple[Path, list[str]]:
    """Download aarch64 wheels one requirement at a time; return the folder and the requirements without one."""
    dest = work / "wheels-aarch64"
    dest.mkdir(parents=True, exist_ok=True)
    plats = [a for p in AARCH64_PLATFORMS for a in ("--platform", p)]
    missing = []
    for req in reqs:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(dest), "--only-binary=:all:",
                               "--python-version", AARCH64_PYTHON, "--implementation", "cp", *plats, req],
                              capture_output=True, text=True)
        if proc.returncode:
            missing.append(req)
    return dest, missing


def emulated_python(sysroot: Path, cpu: str) -> list[str]:
    return ["qemu-aarch64", "-cpu", cpu, "-L", str(sysroot)]


def aarch64_target(work: Path, sysroot: Path, cpu: str, wheels: Path, wheel: Path) -> tuple[Target, str]:
    """The emulated aarch64 CPU; also tries ``pip install lmar`` there with every dependency (report line)."""
    python = str(sysroot / "usr/bin/python3.11")
    pip_wheels = list((work / "pip").glob("pip-*.whl"))
    if not pip_wheels:
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(work / "pip"), "pip"])
        pip_wheels = list((work / "pip").glob("pip-*.whl"))
    pip = [*emulated_python(sysroot, cpu), python, str(pip_wheels[0] / "pip")]
    # The installation a user would do: resolve lmar and all its dependencies from aarch64 wheels only.
    # (--target: Debian's Python refuses installs into itself, PEP 668.)
    proc = subprocess.run(pip + ["install", "--dry-run", "--no-index", "--find-links", str(wheels), "--find-links",
                                 str(wheel.parent), "--target", str(work / "pip-dry-run"), "lmar"],
                          capture_output=True, text=True)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-1:]
    would = [ln for ln in lines if ln.startswith("Would install")]
    pip_report = (f"resolves ({len(would[0].split()) - 2 if would else '?'} distributions)" if proc.returncode == 0
                  else f"fails: {errors[0] if errors else proc.returncode}")
    deps = sysroot / "opt/lmar-deps"
    have = sorted(p.name for p in wheels.glob("*.whl"))
    stamp = deps / ".wheels.json"
    if not stamp.is_file() or json.loads(stamp.read_text()) != have:
        log("pip install --target under qemu-aarch64 (aarch64 dependencies; about a minute)")
        _fresh_target_dir(deps)
        run(pip + ["install", "-q", "--no-index", "--no-deps", "--target", str(deps)]
            + [str(wheels / n) for n in have])
        stamp.write_text(json.dumps(have))
    site = _fresh_target_dir(sysroot / "opt/lmar")
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)])
    return Target(f"aarch64 {cpu}", emulated_python(sysroot, cpu), python, [site, deps]), pip_report


def x86_emulated(host: Target, cpu: str) -> Target:
    """The host's Python and packages on an emulated x86-64 CPU.

    OPENBLAS_CORETYPE: numpy's bundled OpenBLAS picks an AVX kernel from QEMU's ``-cpu Nehalem`` CPUID and
    dies of SIGILL in numpy's import-time self-test; naming the core type keeps it on the CPU emulated.
    """
    return Target(f"x86-64 {cpu}", ["qemu-x86_64", "-cpu", cpu], host.python, host.paths,
                  {"OPENBLAS_CORETYPE": cpu.split("-")[0]})
