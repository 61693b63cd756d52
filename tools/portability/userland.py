"""QEMU user mode and an arm64 Python userland, built without changing the host.

Why a private userland: emulating aarch64 needs aarch64 binaries of Python and of the C libraries it
loads. Installing Debian's arm64 packages with ``dpkg --add-architecture`` would change the host's package
state; instead apt runs with its own configuration (architecture arm64, its own lists, cache and an empty
status file under ``work-data/``), ``apt-get download`` fetches the .deb files and ``dpkg-deb -x`` only
unpacks them into a sysroot. QEMU's ``-L SYSROOT`` then resolves absolute paths (the dynamic loader,
``/usr/lib``, and the fake ``/proc/cpuinfo`` and ``/sys`` below) inside the sysroot first.

Why a fake CPU description: under ``qemu-aarch64`` the real ``/proc/cpuinfo`` describes the x86 host.
LLVM (numba) and ONNX Runtime's cpuinfo read it on Linux/ARM to pick the CPU model and its features, so
they would compile or select instructions that the emulated CPU lacks. The files written here describe
the CPU given to ``-cpu``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

#: Debian packages whose arm64 builds make a working Python; apt adds their dependencies.
ROOT_PACKAGES = ("python3.11", "libstdc++6", "libgcc-s1", "zlib1g", "libffi8", "libssl3")
#: Dependencies that only matter to a real installation (maintainer scripts, perl, dpkg itself).
SKIP_PACKAGES = frozenset({
    "dpkg", "perl", "perl-base", "perl-modules-5.36", "libperl5.36", "tar", "install-info", "mailcap",
    "mime-support", "debconf", "coreutils", "libselinux1", "libacl1", "libattr1", "libpcre2-8-0", "libmd0",
    "libgmp10", "debianutils",
})

#: What ``/proc/cpuinfo`` says on real hardware of each ``-cpu`` model (MIDR fields and hwcaps).
ARM_CPUS = {
    "neoverse-n1": {"variant": "0x3", "part": "0xd0c", "revision": "1",
                    "features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm "
                                "lrcpc dcpop asimddp ssbs"},
    "cortex-a72": {"variant": "0x0", "part": "0xd08", "revision": "3",
                   "features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"},
}


def log(msg: str) -> None:
    print(f"[portability] {msg}", flush=True)


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run a set-up step; its output is shown only when it fails."""
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"[portability] failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def ensure_qemu() -> None:
    """Install Debian's ``qemu-user`` when its emulators are missing (no binfmt registration)."""
    if shutil.which("qemu-x86_64") and shutil.which("qemu-aarch64"):
        return
    if os.geteuid() != 0:
        raise SystemExit("[portability] qemu-x86_64/qemu-aarch64 missing: run "
                         "`apt-get install --no-install-recommends qemu-user` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log("installing qemu-user (without qemu-user-binfmt: nothing is registered system-wide)")
    run(["apt-get", "update", "-q"], env=env)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "qemu-user"], env=env)


def _apt_env(apt: Path) -> dict[str, str]:
    """An apt configuration of our own: arm64 only, private lists, cache and (empty) dpkg status."""
    for sub in ("lists/partial", "cache/archives/partial", "etc/sources.list.d", "etc/preferences.d"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "status").touch()
    sources = []
    for src in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        text = src.read_text()
        if "debian" not in text:  # third-party repositories rarely carry arm64 builds of Debian's Python
            continue
        stanzas = []
        for stanza in text.split("\n\n"):
            lines = [ln for ln in stanza.splitlines() if ln.strip() and not ln.startswith("#")
                     and not ln.startswith("Architectures:")]
            if lines:
                stanzas.append("\n".join(lines + ["Architectures: arm64"]))
        sources.append("\n\n".join(stanzas))
    legacy = Path("/etc/apt/sources.list")
    if not sources and legacy.is_file():
        lines = [ln.replace("deb ", "deb [arch=arm64] ", 1) for ln in legacy.read_text().splitlines()
                 if ln.startswith("deb ")]
        (apt / "etc/sources.list.d/arm64.list").write_text("\n".join(lines) + "\n")
    else:
        (apt / "etc/sources.list.d/arm64.sources").write_text("\n\n".join(sources) + "\n")
    conf = apt / "apt.conf"
    conf.write_text("\n".join([
        'APT::Architecture "arm64";', 'APT::Architectures { "arm64"; };',
        f'Dir::State "{apt}";', f'Dir::State::Lists "{apt}/lists";', f'Dir::State::status "{apt}/status";',
        f'Dir::Cache "{apt}/cache";', 'Dir::Etc::SourceList "/dev/null";',
        f'Dir::Etc::SourceParts "{apt}/etc/sources.list.d";', 'Dir::Etc::Preferences "/dev/null";',
        f'Dir::Etc::PreferencesParts "{apt}/etc/preferences.d";', "",
    ]))
    return {**os.environ, "APT_CONFIG": str(conf), "DEBIAN_FRONTEND": "noninteractive"}


def build_sysroot(work: Path) -> Path:
    """Download Debian's arm64 Python and its libraries and unpack them into ``work/sysroot-aarch64``."""
    sysroot = work / "sysroot-aarch64"
    python = sysroot / "usr/bin/python3.11"
    if python.is_file():
        return sysroot
    env = _apt_env(work / "apt")
    log("apt-get update (arm64, private lists under work-data)")
    run(["apt-get", "update", "-q"], env=env)
    out = run(["apt-get", "-q", "-o", "Debug::NoLocking=1", "install", "-s", "--no-install-recommends"]
              + list(ROOT_PACKAGES), env=env)
    names = sorted({ln.split()[1] for ln in out.splitlines() if ln.startswith("Inst ")} - SKIP_PACKAGES)
    debs = work / "debs-arm64"
    debs.mkdir(parents=True, exist_ok=True)
    log(f"apt-get download {len(names)} arm64 packages")
    run(["apt-get", "-q", "download"] + [f"{n}:arm64" for n in names], env=env, cwd=debs)
    tmp = sysroot.with_name(sysroot.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for deb in sorted(debs.glob("*.deb")):
        run(["dpkg-deb", "-x", str(deb), str(tmp)])
    tmp.rename(sysroot)
    return sysroot


def describe_cpu(sysroot: Path, cpu: str) -> None:
    """Write ``/proc/cpuinfo`` and ``/sys/devices/system/cpu`` for one emulated core of ``cpu``."""
    spec = ARM_CPUS[cpu]
    (sysroot / "proc").mkdir(exist_ok=True)
    (sysroot / "proc/cpuinfo").write_text(
        "processor\t: 0\nBogoMIPS\t: 50.00\n"
        f"Features\t: {spec['features']}\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
        f"CPU variant\t: {spec['variant']}\nCPU part\t: {spec['part']}\nCPU revision\t: {spec['revision']}\n\n")
    cpus = sysroot / "sys/devices/system/cpu"
    cpus.mkdir(parents=True, exist_ok=True)
    for name in ("possible", "present", "online"):
        (cpus / name).write_text("0\n")
    midr = (0x41 << 24) | (int(spec["variant"], 16) << 20) | (0xF << 16) | (int(spec["part"], 16) << 4) \
        | int(spec["revision"])
    ident = cpus / "cpu0/regs/identification"
    ident.mkdir(parents=True, exist_ok=True)
    (ident / "midr_el1").write_text(f"0x{midr:016x}\n")
    topo = cpus / "cpu0/topology"
    topo.mkdir(parents=True, exist_ok=True)
    for name, value in (("physical_package_id", "0"), ("core_id", "0"), ("cluster_id", "0"),
                        ("core_siblings_list", "0"), ("thread_siblings_list", "0"), ("package_cpus_list", "0")):
        (topo / name).write_text(value + "\n")
