"""Real-directory-tree benchmark (issue 13): lmar against tar|xz, tar|zstd, zpaq, 7-Zip and bzip3 on real
published trees, all in one run, with a round trip of every lmar archive.

Why real trees: `lmar create DIR` is the product's main job, and on a real directory the container (per
member metadata, no dedup, every file coded cold) decides as much as the codecs. The trees are fetched at
benchmark time with the ordinary package clients and pinned to exact versions so that a rerun measures the
same bytes; they are unpacked under work-data/trees/ (git-ignored) and never committed:

    click          PyPI sdist click 8.1.7: code, docs, 3 PNGs (like the issue's 125-file tree)
    markdown       PyPI sdist Markdown 3.6: hundreds of small files, duplicated test fixtures
    lodash         npm lodash 4.17.21: 1,054 small JavaScript files, some duplicates
    uriparser-doc  Debian liburiparser-doc 0.9.7+dfsg-2: Doxygen HTML pages, duplicate files
    small20k       20,000 real files of 200 B-4 KB from twelve npm packages (distinct contents first,
                   copies only if the packages run out), `--level fast` only (lmar's speed on many files)

Symbolic links that lead outside a tree (Debian's links into /usr/share/javascript) are removed after
unpacking (lmar, like tar's `data` filter, refuses them on extraction); directory mtimes are set to a fixed
time so that tar's output, and so every size, is the same on every run.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python tools/bench_tree.py --jobs 1 \
        --md work-data/bench_tree.md --json work-data/bench_tree.json
    tools/bench_tree.py --trees click,lodash --tools xz,zpaq,lmar-fast      # a subset
    tools/bench_tree.py --lmar-rev ef1f00e ...    # measure the lmar of a past commit (see --help)

Each row: archive bytes, % of raw, ratio to `tar | xz -9e` and to `zpaq -m5`, create wall and CPU seconds;
for lmar also extraction time, the round trip (`diff -r --no-dereference` against the tree) and metadata
bytes per member (archive size minus the members' stored sizes, from `lmar list --json`). A tool that is
missing, fails or times out is a row saying so, never a crash. Nothing in the product imports this file.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXED_DIR_MTIME = 1704067200  # 2024-01-01 UTC: tar records directory mtimes; unpacking would vary them

# Keys of `lmar list --json` in format 1; other keys (solid block, dedup source) mean stored sizes may not be
# per member, so the metadata figure is then labelled an estimate.
V1_LIST_KEYS = {"path", "type", "size", "codec", "stored_size", "mode", "mtime_ns", "link", "codec_version",
                "codec_params", "candidates"}


@dataclasses.dataclass
class TreeSpec:
    name: str
    kind: str            # pypi | npm | deb | small
    spec: str            # pinned requirement, npm spec or Debian PKG=VERSION; for small: the file count
    about: str
    lm_modes: bool = True  # run lmar's default-level modes (the LM codec: ~5-20 KB/s) on this tree


SMALL_SOURCES = [  # npm packages whose small files make the many-small-files tree (all pinned)
    "date-fns@2.30.0", "rxjs@7.8.1", "core-js@3.36.0", "@mdi/svg@7.4.47", "bootstrap-icons@1.11.3",
    "@fortawesome/fontawesome-free@6.5.1", "caniuse-lite@1.0.30001600", "@babel/runtime@7.24.0",
    "ramda@0.29.1", "lodash-es@4.17.21", "ajv@8.12.0", "lodash@4.17.21",
]
SMALL_MIN, SMALL_MAX = 200, 4096

TREES = {t.name: t for t in [
    TreeSpec("click", "pypi", "click==8.1.7", "PyPI sdist click 8.1.7 (code, docs, PNGs)"),
    TreeSpec("markdown", "pypi", "Markdown==3.6", "PyPI sdist Markdown 3.6 (small test fixtures, duplicates)"),
    TreeSpec("lodash", "npm", "lodash@4.17.21", "npm lodash 4.17.21 (1,054 small JS files)"),
    TreeSpec("uriparser-doc", "deb", "liburiparser-doc=0.9.7+dfsg-2",
             "Debian liburiparser-doc 0.9.7+dfsg-2 (Doxygen HTML)"),
    TreeSpec("small20k", "small", "20000", "20,000 real files of 200 B-4 KB from 12 npm packages",
             lm_modes=False),
]}


# ----------------------------------------------------------------------------------------------- running

@dataclasses.dataclass
class Run:
    ok: bool
    wall: float
    cpu: float
    error: str = ""
    stdout: str = ""


def run(cmd: str, cwd: Path, timeout: float, env: dict | None = None) -> Run:
    """Run a shell command in its own process group; wall time and children's CPU time; never raises."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
                                env=env)
    except OSError as exc:
        return Run(False, 0.0, 0.0, f"cannot start: {exc}")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Run(False, time.perf_counter() - t0, 0.0, f"timed out after {timeout:.0f} s")
    except BaseException:  # interrupted or terminated: do not leave the tool running in its own session
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (err or out).splitlines() if ln.strip()]
        return Run(False, wall, cpu, f"exit {proc.returncode}: {lines[-1][:200] if lines else 'no message'}", out)
    return Run(True, wall, cpu, "", out)


def first_line(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = [ln.strip(" *") for ln in (p.stdout + p.stderr).splitlines() if ln.strip(" *")]
    return lines[0] if lines else "?"


# ----------------------------------------------------------------------------------------------- fetching

class FetchError(Exception):
    pass


def _check(cmd: list[str], cwd: Path) -> str:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=900)
    if p.returncode != 0:
        lines = [ln for ln in (p.stderr or p.stdout).splitlines() if ln.strip() and "WARNING" not in ln]
        raise FetchError(f"{' '.join(cmd[:3])}...: {lines[-1] if lines else p.returncode}")
    return p.stdout


def fetch_pypi(spec: str, cache: Path) -> Path:
    name, ver = spec.split("==")
    found = [p for p in cache.glob("*") if p.name.lower().replace("_", "-").startswith(f"{name.lower()}-{ver}.")]
    if not found:
        _check([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", spec,
                "-d", str(cache)], cache)
        found = [p for p in cache.glob("*") if p.name.lower().replace("_", "-").startswith(f"{name.lower()}-{ver}.")]
    if not found:
        raise FetchError(f"pip download {spec}: no sdist appeared in {cache}")
    return found[0]


def fetch_npm(spec: str, cache: Path) -> Path:
    base = spec.rsplit("@", 1)
    want = base[0].lstrip("@").replace("/", "-") + f"-{base[1]}.tgz"
    if not (cache / want).exists():
        if not shutil.which("npm"):
            raise FetchError("npm is not installed")
        out = _check(["npm", "pack", "--json", "--silent", spec], cache)
        try:
            want = json.loads(out)[0]["filename"].replace("/", "-").lstrip("@")
        except (ValueError, KeyError, IndexError):
            pass
    if not (cache / want).exists():
        raise FetchError(f"npm pack {spec}: {want} did not appear")
    return cache / want


def fetch_deb(spec: str, cache: Path) -> Path:
    pkg = spec.split("=")[0]
    found = sorted(cache.glob(f"{pkg}_*.deb"))
    if not found:
        if not shutil.which("apt-get"):
            raise FetchError("apt-get is not available")
        _check(["apt-get", "download", "-q", spec], cache)
        found = sorted(cache.glob(f"{pkg}_*.deb"))
    if not found:
        raise FetchError(f"apt-get download {spec}: no .deb appeared")
    return found[0]


def unpack(archive: Path, dest: Path) -> None:
    """Unpack into dest, dropping the single top-level folder of sdists and npm tarballs."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if archive.suffix == ".deb":
        _check(["dpkg-deb", "-x", str(archive), str(tmp)], tmp)
    elif archive.suffix == ".zip":
        _check(["unzip", "-q", str(archive), "-d", str(tmp)], tmp)
    else:
        _check(["tar", "-xf", str(archive), "-C", str(tmp), "--no-same-owner"], tmp)
    entries = list(tmp.iterdir())
    root = entries[0] if archive.suffix != ".deb" and len(entries) == 1 and entries[0].is_dir() else tmp
    shutil.rmtree(dest, ignore_errors=True)
    root.rename(dest)
    shutil.rmtree(tmp, ignore_errors=True)


def normalize(tree: Path) -> int:
    """Remove symlinks that lead outside the tree; fix directory mtimes. Returns the links removed."""
    removed = 0
    top = tree.resolve()
    for dirpath, dirnames, filenames in os.walk(tree):
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            if p.is_symlink():
                target = os.readlink(p)
                resolved = (p.parent / target).resolve() if not os.path.isabs(target) else Path(target)
                if os.path.isabs(target) or not str(resolved).startswith(str(top) + os.sep):
                    p.unlink()
                    removed += 1
    for dirpath, _, _ in os.walk(tree):
        os.utime(dirpath, (FIXED_DIR_MTIME, FIXED_DIR_MTIME))
    return removed


def build_small(spec: TreeSpec, work: Path, dest: Path) -> dict:
    """Many small real files: round-robin over the sources' files of SMALL_MIN..SMALL_MAX bytes, each
    content once, paths kept (source/original/path); copies (copyN/...) only if the sources run out."""
    count = int(spec.spec)
    src_root = work / "_src"
    pools: list[list[tuple[str, Path]]] = []
    seen: set[bytes] = set()
    for npm_spec in SMALL_SOURCES:
        slug = npm_spec.rsplit("@", 1)[0].lstrip("@").replace("/", "-")
        d = src_root / slug
        if not d.exists():
            unpack(fetch_npm(npm_spec, work / "_cache" / "npm"), d)
        pool = []
        for p in sorted(x for x in d.rglob("*") if x.is_file() and not x.is_symlink()):
            if SMALL_MIN <= p.stat().st_size <= SMALL_MAX:
                h = hashlib.sha256(p.read_bytes()).digest()
                if h not in seen:
                    seen.add(h)
                    pool.append((f"{slug}/{p.relative_to(d)}", p))
        pools.append(pool)
    distinct = sum(len(p) for p in pools)
    if distinct == 0:
        raise FetchError("no small files found in the sources")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    made, copy = 0, 0
    while made < count:
        idx = [0] * len(pools)
        while made < count and any(i < len(p) for i, p in zip(idx, pools)):
            for k, pool in enumerate(pools):
                if made >= count or idx[k] >= len(pool):
                    continue
                rel, src = pool[idx[k]]
                idx[k] += 1
                out = tmp / (f"copy{copy}/{rel}" if copy else rel)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, out)
                os.utime(out, ns=(src.stat().st_mtime_ns, src.stat().st_mtime_ns))
                made += 1
        copy += 1
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return {"sources": SMALL_SOURCES, "distinct_available": distinct}


def tree_stats(tree: Path) -> dict:
    files = dirs = links = size = dup_files = dup_bytes = 0
    seen: dict[bytes, int] = {}
    groups: dict[bytes, int] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for n in dirnames:
            if Path(dirpath, n).is_symlink():
                links += 1
            else:
                dirs += 1
        for n in sorted(filenames):
            p = Path(dirpath, n)
            if p.is_symlink():
                links += 1
                continue
            data = p.read_bytes()
            files += 1
            size += len(data)
            h = hashlib.sha256(data).digest()
            if h in seen:
                dup_files += 1
                dup_bytes += len(data)
                groups[h] = groups.get(h, 1) + 1
            else:
                seen[h] = len(data)
    largest = max(((seen[h], n) for h, n in groups.items()), default=(0, 0))
    return {"files": files, "dirs": dirs, "symlinks": links, "bytes": size, "duplicate_files": dup_files,
            "duplicate_bytes": dup_bytes, "duplicate_groups": len(groups),
            "largest_duplicate": {"bytes": largest[0], "copies": largest[1]}}


def prepare_tree(spec: TreeSpec, work: Path) -> dict:
    """Fetch and unpack one tree unless a matching one is already there; returns its facts."""
    dest = work / spec.name
    stamp = work / f"{spec.name}.json"
    if dest.is_dir() and stamp.exists():
        facts = json.loads(stamp.read_text())
        if facts.get("spec") == spec.spec and facts.get("kind") == spec.kind:
            return facts
    cache = work / "_cache" / spec.kind
    cache.mkdir(parents=True, exist_ok=True)
    extra: dict = {}
    if spec.kind == "small":
        extra = build_small(spec, work, dest)
        source = f"npm: {', '.join(SMALL_SOURCES)}"
    else:
        fetch = {"pypi": fetch_pypi, "npm": fetch_npm, "deb": fetch_deb}[spec.kind]
        archive = fetch(spec.spec, cache)
        unpack(archive, dest)
        source = f"{spec.kind}: {archive.name} (sha256 {hashlib.sha256(archive.read_bytes()).hexdigest()[:16]})"
    removed = normalize(dest)
    facts = {"name": spec.name, "kind": spec.kind, "spec": spec.spec, "about": spec.about, "source": source,
             "outside_links_removed": removed, **extra, **tree_stats(dest)}
    stamp.write_text(json.dumps(facts, indent=1))
    return facts


# ----------------------------------------------------------------------------------------------- tools

@dataclasses.dataclass
class Tool:
    key: str
    label: str
    needs: str                        # the binary that must exist ("" for lmar)
    ext: str
    create: str                       # shell template: {name} tree folder, {out} archive, {t} threads, {lmar}, {j}
    extract: str = ""                 # shell template: {out}, {dest}
    lm: bool = False                  # uses lmar's default level (the LM codec)
    needs_flag: str = ""              # an lmar create option that must appear in `lmar create --help`


TAR = "tar --sort=name -cf - {name}"
TOOLS = [
    Tool("xz", "tar | xz -9e", "xz", "tar.xz", TAR + " | xz -9e -T{t} -c > {out}"),
    Tool("zstd19", "tar | zstd -19 --long=27", "zstd", "tar.zst", TAR + " | zstd -q -19 --long=27 -T{t} -c > {out}"),
    Tool("zstd3", "tar | zstd -3", "zstd", "tar.zst", TAR + " | zstd -q -3 -T{t} -c > {out}",
         extract="zstd -q -d -c {out} | tar -xf - -C {dest}"),
    Tool("zpaq", "zpaq -m5", "zpaq", "zpaq", "zpaq a {out} {name} -m5 -t{t} > /dev/null"),
    Tool("7z", "7zz -mx9", "7zz", "7z", "7zz a -mx9 -mmt={t} -snl -bd -bso0 -bsp0 {out} {name}"),
    Tool("bzip3", "tar | bzip3", "bzip3", "tar.bz3", TAR + " | bzip3 -e -c -j {t} > {out}"),
    Tool("lmar", "lmar (default)", "", "lmar", "{lmar} create -q -j {j} {out} {name}", lm=True),
    Tool("lmar-fast", "lmar --level fast", "", "lmar", "{lmar} create -q -j {j} --level fast {out} {name}"),
    Tool("lmar-no-solid", "lmar --no-solid", "", "lmar", "{lmar} create -q -j {j} --no-solid {out} {name}",
         lm=True, needs_flag="--no-solid"),
    Tool("lmar-no-dedup", "lmar --no-dedup", "", "lmar", "{lmar} create -q -j {j} --no-dedup {out} {name}",
         lm=True, needs_flag="--no-dedup"),
]
LMAR_EXTRACT = "{lmar} extract -q {out} -C {dest}"


def lmar_snapshot(rev: str, work: Path) -> str:
    """An lmar command for a past commit: its archiver/, formats/ and plugins/ laid out as the package
    `lmar` (what the editable install maps) and put first on PYTHONPATH, run with this venv's Python.
    Entry points come from the installed metadata, so the commit must have the same codec plugins."""
    sha = subprocess.run(["git", "rev-parse", rev], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    site = work / "_lmar" / sha[:12]
    pkg = site / "lmar"
    if not (pkg / "cli.py").exists():
        shutil.rmtree(site, ignore_errors=True)
        src = site / "_src"
        src.mkdir(parents=True)
        tarball = subprocess.run(["git", "archive", sha, "archiver", "formats", "plugins"], cwd=REPO,
                                 capture_output=True, check=True).stdout
        tmp_tar = site / "src.tar"
        tmp_tar.write_bytes(tarball)
        with tarfile.open(tmp_tar) as tf:
            tf.extractall(src, filter="data")
        tmp_tar.unlink()
        (src / "archiver").rename(pkg)
        (src / "formats").rename(pkg / "formats")
        (src / "plugins").rename(pkg / "plugins")
        shutil.rmtree(src)
    python = REPO / ".venv" / "bin" / "python"
    return f"env PYTHONPATH={shlex.quote(str(site))} {shlex.quote(str(python if python.exists() else sys.executable))} -m lmar.cli"


def lmar_list_facts(lmar: str, archive: Path, size: int, timeout: float) -> dict:
    r = run(f"{lmar} list --json {shlex.quote(str(archive))}", archive.parent, timeout)
    if not r.ok:
        return {"list_error": r.error}
    try:
        members = json.loads(r.stdout)
    except ValueError as exc:
        return {"list_error": f"list --json: {exc}"}
    stored = sum(int(m.get("stored_size") or 0) for m in members)
    extra_keys = sorted({k for m in members for k in m} - V1_LIST_KEYS)
    codecs: dict[str, int] = {}
    for m in members:
        if m.get("codec"):
            codecs[m["codec"]] = codecs.get(m["codec"], 0) + 1
    facts = {"members": len(members), "stored_sum": stored, "codecs": dict(sorted(codecs.items())),
             "list_extra_keys": extra_keys}
    if members and stored <= size:
        facts["meta_per_member"] = (size - stored) / len(members)
        facts["meta_estimate"] = any(("solid" in k or "block" in k or "dedup" in k) for k in extra_keys)
    return facts


def diff_trees(a: Path, b: Path, timeout: float) -> tuple[bool, str]:
    if not b.exists():
        return False, f"{b.name} missing after extraction"
    r = run(f"diff -r --no-dereference {shlex.quote(str(a))} {shlex.quote(str(b))} | head -5", a.parent, timeout)
    if r.ok and not r.stdout.strip():
        return True, ""
    return False, (r.stdout.strip().splitlines() or [r.error])[0][:200]


def merge_runs(res: dict) -> dict:
    """One row from a tool's runs on a tree: the last run's facts with the median create/extract times,
    every run's times, and a failed round trip or a differing size from any run."""
    runs = res.pop("runs", None)
    if not runs:
        return res
    row = dict(runs[-1])
    if len(runs) > 1:
        for key in ("create_s", "extract_s", "create_cpu_s", "extract_cpu_s"):
            values = [r[key] for r in runs if key in r]
            if values:
                row[key] = round(statistics.median(values), 2)
                row[key + "_runs"] = values
        if len({r.get("bytes") for r in runs}) > 1:
            row["error"] = f"sizes differ between runs: {sorted({r.get('bytes') for r in runs})}"
        failed = [r for r in runs if r.get("roundtrip") == "FAIL" or "error" in r]
        if failed:
            row.update({k: failed[0][k] for k in ("roundtrip", "roundtrip_note", "error") if k in failed[0]})
    return row


def measure(tool: Tool, tree: Path, outdir: Path, ctx: dict, args: argparse.Namespace) -> dict:
    row: dict = {"tool": tool.key, "label": tool.label}
    out = outdir / f"{tree.name}.{tool.key}.{tool.ext}"
    if out.exists():
        out.unlink()
    subst = {"name": shlex.quote(tree.name), "out": shlex.quote(str(out)), "t": args.tool_threads,
             "lmar": ctx["lmar"], "j": args.jobs}
    cmd = tool.create.format(**subst)
    row["command"] = cmd.replace(str(outdir) + "/", "").replace(ctx["lmar"], "lmar")
    r = run(cmd, tree.parent, args.timeout, ctx["env"])
    row.update(create_s=round(r.wall, 2), create_cpu_s=round(r.cpu, 2))
    if not r.ok or not out.exists():
        row["error"] = r.error or "no archive written"
        return row
    row["bytes"] = out.stat().st_size
    is_lmar = tool.key.startswith("lmar")
    template = LMAR_EXTRACT if is_lmar else tool.extract
    if is_lmar:
        row.update(lmar_list_facts(ctx["lmar"], out, row["bytes"], args.timeout))
    if template:
        dest = outdir / f"x.{tree.name}.{tool.key}"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        x = run(template.format(out=shlex.quote(str(out)), dest=shlex.quote(str(dest)), lmar=ctx["lmar"]),
                outdir, args.timeout, ctx["env"])
        row.update(extract_s=round(x.wall, 2), extract_cpu_s=round(x.cpu, 2))
        if not x.ok:
            row["roundtrip"], row["roundtrip_note"] = "FAIL", f"extract: {x.error}"
        else:
            same, note = diff_trees(tree, dest / tree.name, args.timeout)
            row["roundtrip"] = "OK" if same else "FAIL"
            if note:
                row["roundtrip_note"] = note
        # The extracted tree stays until the run ends: on ext4 (mounted with discard) creating files right after
        # removing 20,000 others took 3-10x longer, which would charge one tool for the one measured before it.
    if not args.keep:
        out.unlink()
    return row


# ----------------------------------------------------------------------------------------------- reporting

def _n(v: float | int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _cell(text: str) -> str:
    """Markdown table cells cannot hold a bare '|'."""
    return text.replace("|", "\\|")


def _r(a: float | None, b: float | None, fmt: str = "{:.3f}") -> str:
    return "-" if not a or not b else fmt.format(a / b)


def _t(a: dict, b: dict, what: str) -> str:
    """Time ratio, wall and CPU: on a shared machine wall time swings, CPU time less so."""
    wall = _r(a.get(f"{what}_s"), b.get(f"{what}_s"), "{:.2f}")
    cpu_a, cpu_b = a.get(f"{what}_cpu_s"), b.get(f"{what}_cpu_s")
    cpu = _r(cpu_a, cpu_b, "{:.1f}") if cpu_b and cpu_b >= 0.05 else "-"
    return f"{wall} ({cpu})"


def render_md(report: dict) -> str:
    L = [f"Run {report['started']} - {report['finished']} on {report['host']}; command: `{report['command']}`",
         "", f"lmar: {report['lmar']['version']} ({report['lmar']['command']}); "
         f"options found in `create --help`: {', '.join(report['lmar']['flags']) or 'none of --no-solid/--no-dedup'}",
         "", "Tools: " + "; ".join(f"{k}: {v.strip(' *')}" for k, v in report["tool_versions"].items()), ""]
    L += ["| tree | source | files | dirs | symlinks | bytes | duplicate files (bytes) | largest duplicate |",
          "|---|---|---:|---:|---:|---:|---:|---|"]
    for t in report["trees"]:
        if "error" in t:
            L.append(f"| {t['name']} | not fetched: {t['error']} | | | | | | |")
            continue
        big = t["largest_duplicate"]
        gone = t["outside_links_removed"]
        links = f"{t['symlinks']}" + (f" (+{gone} leading outside, removed)" if gone else "")
        L.append(f"| {t['name']} | {t['about']} | {_n(t['files'])} | {_n(t['dirs'])} | {links}"
                 f" | {_n(t['bytes'])} | {t['duplicate_files']} ({_n(t['duplicate_bytes'])}) | "
                 f"{_n(big['bytes'])} B x{big['copies']} |")
    for t in report["trees"]:
        if "error" in t:
            continue
        rows = {r["tool"]: r for r in t["results"]}
        xz, zp = rows.get("xz", {}).get("bytes"), rows.get("zpaq", {}).get("bytes")
        L += ["", f"### {t['name']}: {_n(t['files'])} files, {_n(t['bytes'])} bytes", "",
              "| archive | bytes | % of raw | vs tar\\|xz -9e | vs zpaq -m5 | create s (CPU s) | extract s | "
              "round trip | metadata B/member |", "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
        for r in t["results"]:
            if "skipped" in r:
                L.append(f"| {_cell(r['label'])} | skipped: {r['skipped']} | | | | | | | |")
                continue
            if "error" in r:
                L.append(f"| {_cell(r['label'])} | FAILED: {_cell(r['error'])} | | | | {r.get('create_s', '-')} | | | |")
                continue
            meta = "-"
            if "meta_per_member" in r:
                meta = f"{r['meta_per_member']:.0f}" + (" (est.)" if r.get("meta_estimate") else "")
            rt = r.get("roundtrip", "-") + (f": {_cell(r['roundtrip_note'])}" if r.get("roundtrip_note") else "")
            ex = f"{r['extract_s']:.2f}" if "extract_s" in r else "-"
            L.append(f"| {_cell(r['label'])} | {_n(r['bytes'])} | {100 * r['bytes'] / max(t['bytes'], 1):.2f} | "
                     f"{_r(r['bytes'], xz)} | {_r(r['bytes'], zp)} | {r['create_s']:.2f} ({r['create_cpu_s']:.1f}) | "
                     f"{ex} | {rt} | {meta} |")
        notes = [f"{r['label']}: {', '.join(f'{k} x{v}' for k, v in r['codecs'].items())} ({r['members']} members)"
                 for r in t["results"] if r.get("codecs")]
        if notes:
            L += ["", "Codecs chosen: " + "; ".join(notes) + "."]
    L += ["", "### Targets of issue 13", "",
          "| tree | lmar default vs tar\\|xz (<= 0.80) | vs zpaq -m5 (< 1) | metadata B/member (<= 40) | "
          "fast bytes vs xz (<= 1) | fast time vs xz (<= 1.5), wall (CPU) | fast create vs tar\\|zstd -3 (<= 3), "
          "wall (CPU) | fast extract vs zstd -d\\|tar (<= 3), wall (CPU) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for t in report["trees"]:
        if "error" in t:
            continue
        rows = {r["tool"]: r for r in t["results"] if "bytes" in r}
        xz, zp, d, f, z3 = (rows.get(k, {}) for k in ("xz", "zpaq", "lmar", "lmar-fast", "zstd3"))
        meta = d.get("meta_per_member")
        L.append(f"| {t['name']} | {_r(d.get('bytes'), xz.get('bytes'))} | {_r(d.get('bytes'), zp.get('bytes'))} | "
                 f"{'-' if meta is None else f'{meta:.0f}'} | {_r(f.get('bytes'), xz.get('bytes'))} | "
                 f"{_t(f, xz, 'create')} | {_t(f, z3, 'create')} | {_t(f, z3, 'extract')} |")
    return "\n".join(L) + "\n"


def splice(doc: Path, md: str) -> None:
    begin, end = "<!-- bench-tree:begin -->", "<!-- bench-tree:end -->"
    text = doc.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"bench_tree: {doc} lacks the {begin} / {end} markers")
    head, rest = text.split(begin, 1)
    doc.write_text(head + begin + "\n" + md + rest[rest.index(end):])


# ----------------------------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trees", default=",".join(TREES), help=f"comma list of {', '.join(TREES)} (default: all)")
    ap.add_argument("--tools", default=",".join(t.key for t in TOOLS),
                    help=f"comma list of {', '.join(t.key for t in TOOLS)} (default: all available)")
    ap.add_argument("--skip-lm", action="store_true", help="skip lmar's default-level rows (the slow LM codec)")
    ap.add_argument("--small-lm", action="store_true", help="also run the default-level lmar rows on small20k")
    ap.add_argument("--jobs", "-j", type=int, default=2, help="lmar -j (default 2)")
    ap.add_argument("--tool-threads", type=int, default=1,
                    help="threads for xz/zstd/zpaq/7zz/bzip3 (default 1: more threads change their output sizes)")
    ap.add_argument("--lmar", help="lmar command (default: the repo's .venv/bin/lmar, else lmar on PATH)")
    ap.add_argument("--lmar-rev", metavar="REV", help="run lmar as of git commit REV (a snapshot under "
                    "WORK/_lmar, on this venv's Python): e.g. a format 1 baseline while the tree has format 2")
    ap.add_argument("--work", default=str(REPO / "work-data" / "trees"), help="where trees are fetched and unpacked")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="measure every tool N times per tree, in rounds, and report median times (default 1)")
    ap.add_argument("--timeout", type=float, default=7200, help="seconds per command (default 7200)")
    ap.add_argument("--install", action="store_true", help="apt-get install the missing tools first")
    ap.add_argument("--fetch-only", action="store_true", help="fetch and unpack the trees, print their facts")
    ap.add_argument("--keep", action="store_true", help="keep the archives (WORK/_out/runPID)")
    ap.add_argument("--md", help="write the Markdown report here too")
    ap.add_argument("--json", help="write the JSON report here")
    ap.add_argument("--splice", metavar="DOC", help="replace the text between <!-- bench-tree:begin/end --> in DOC")
    ap.add_argument("--report-from", metavar="A.json,B.json", help="measure nothing: merge saved JSON reports "
                    "(e.g. two runs with different --trees; a later tree of the same name wins) and print, "
                    "--md, --json, --splice the result")
    args = ap.parse_args()
    if args.report_from:
        return report_from(args)

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.trees.split(",") if n]
    unknown = [n for n in names if n not in TREES] + [k for k in args.tools.split(",") if k and k not in
                                                      {t.key for t in TOOLS}]
    if unknown:
        ap.error(f"unknown tree or tool: {', '.join(unknown)}")

    if args.install:
        pkgs = {"xz": "xz-utils", "zstd": "zstd", "zpaq": "zpaq", "7zz": "7zip", "bzip3": "bzip3"}
        missing = [p for b, p in pkgs.items() if not shutil.which(b)]
        if missing:
            subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=False)

    trees = []
    for n in names:
        try:
            facts = prepare_tree(TREES[n], work)
        except (FetchError, OSError, subprocess.SubprocessError) as exc:
            facts = {"name": n, "error": str(exc)[:300]}
        print(f"bench_tree: {n}: " + (facts.get("error") or f"{facts['files']} files, {facts['bytes']:,} bytes, "
              f"{facts['duplicate_files']} duplicate files ({facts['duplicate_bytes']:,} bytes)"), file=sys.stderr)
        trees.append(facts)
    if args.fetch_only:
        print(json.dumps(trees, indent=1))
        return 0

    if args.lmar_rev:
        lmar = lmar_snapshot(args.lmar_rev, work)
    elif args.lmar:
        lmar = args.lmar
    else:
        venv = REPO / ".venv" / "bin" / "lmar"
        lmar = str(venv) if venv.exists() else (shutil.which("lmar") or "lmar")
    env = dict(os.environ)
    help_run = run(f"{lmar} create --help", work, 300, env)
    lmar_version = run(f"{lmar} --version", work, 300, env)
    flags = [f for f in ("--no-solid", "--no-dedup") if f in help_run.stdout]
    ctx = {"lmar": lmar, "env": env}
    versions = {"tar": first_line(["tar", "--version"]), "xz": first_line(["xz", "--version"]),
                "zstd": first_line(["zstd", "--version"]), "zpaq": first_line(["zpaq"]),
                "7zz": first_line(["7zz", "i"]), "bzip3": first_line(["bzip3", "-V"])}
    versions = {k: (v if shutil.which("7zz" if k == "7zz" else k) else "not installed") for k, v in versions.items()}

    selected = [t for t in TOOLS if t.key in args.tools.split(",")]
    outdir = work / "_out" / f"run{os.getpid()}"  # per run: two runs at once never share a file
    outdir.mkdir(parents=True, exist_ok=True)
    for facts in trees:
        if "error" in facts:
            continue
        tree = work / facts["name"]
        results = []
        for tool in selected:
            skip = ""
            if tool.needs and not shutil.which(tool.needs):
                skip = f"{tool.needs} not installed (apt-get install, or --install)"
            elif tool.key.startswith("lmar") and not help_run.ok:
                skip = f"lmar does not run: {help_run.error}"
            elif tool.needs_flag and tool.needs_flag not in flags:
                skip = f"this lmar has no {tool.needs_flag}"
            elif tool.lm and args.skip_lm:
                skip = "--skip-lm"
            elif tool.lm and not TREES[facts["name"]].lm_modes and not args.small_lm:
                skip = "default level not run on this tree (--small-lm)"
            if skip:
                results.append({"tool": tool.key, "label": tool.label, "skipped": skip})
                continue
            results.append({"tool": tool.key, "label": tool.label, "runs": []})
        # --repeat N: every tool once per round, rounds one after another, so a drift in this shared machine's
        # speed hits all tools alike; a row reports its median times (and each run's).
        for round_no in range(args.repeat):
            for tool, res in zip(selected, results):
                if "skipped" in res:
                    continue
                print(f"bench_tree: {facts['name']}: {tool.label} ..."
                      + (f" (round {round_no + 1}/{args.repeat})" if args.repeat > 1 else ""), file=sys.stderr, flush=True)
                row = measure(tool, tree, outdir, ctx, args)
                print(f"bench_tree:   {row.get('bytes', row.get('error'))} in {row.get('create_s')} s"
                      + (f", round trip {row['roundtrip']}" if "roundtrip" in row else ""), file=sys.stderr, flush=True)
                res["runs"].append(row)
        results = [merge_runs(res) for res in results]
        facts["results"] = results
        write_reports(args, started, lmar, lmar_version, flags, versions, trees, final=False)
    if not args.keep:
        shutil.rmtree(outdir, ignore_errors=True)
    md = write_reports(args, started, lmar, lmar_version, flags, versions, trees, final=True)
    print(md)
    return 0


def write_reports(args: argparse.Namespace, started: str, lmar: str, lmar_version: Run, flags: list[str],
                  versions: dict, trees: list[dict], final: bool) -> str:
    """Written after every tree too, so that a run cut short still leaves what it measured."""
    report = {"schema": "bench_tree/1", "started": started,
              "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "host": f"{os.uname().machine}, {os.cpu_count()} CPUs",
              "command": " ".join(shlex.quote(a) for a in sys.argv),
              "lmar": {"command": lmar if not args.lmar_rev else f"git {args.lmar_rev} snapshot",
                       "version": (lmar_version.stdout.strip() or lmar_version.error), "flags": flags,
                       "jobs": args.jobs},
              "tool_threads": args.tool_threads, "tool_versions": versions, "complete": final,
              "trees": [t for t in trees if "results" in t or "error" in t]}
    md = render_md(report) + ("" if final else "\n(partial: the run goes on)\n")
    if args.md:
        Path(args.md).write_text(md)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if args.splice and final:
        splice(Path(args.splice), md)
    return md


def report_from(args: argparse.Namespace) -> int:
    """Merge saved reports: one table for runs that measured different trees with the same tools."""
    reports = [json.loads(Path(f).read_text()) for f in args.report_from.split(",") if f]
    if not reports:
        raise SystemExit("bench_tree: --report-from names no file")
    merged = dict(reports[0])
    trees: dict[str, dict] = {}
    for r in reports:
        for t in r["trees"]:
            trees[t["name"]] = t
    order = [n for n in TREES if n in trees] + [n for n in trees if n not in TREES]
    merged["trees"] = [trees[n] for n in order]
    merged["started"] = min(r["started"] for r in reports)
    merged["finished"] = max(r["finished"] for r in reports)
    merged["command"] = "` and `".join(r["command"] for r in reports)
    merged["complete"] = all(r.get("complete", True) for r in reports)
    merged["merged_from"] = [r["command"] for r in reports]
    md = render_md(merged)
    print(md)
    if args.md:
        Path(args.md).write_text(md)
    if args.json:
        Path(args.json).write_text(json.dumps(merged, indent=1) + "\n")
    if args.splice:
        splice(Path(args.splice), md)
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())
