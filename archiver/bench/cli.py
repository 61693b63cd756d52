"""``lmar bench``: which codec wins on my data, measured and verified on the user's own files.

Why a sub-command instead of a script: it measures exactly the codecs the archiver would choose from
(the plugin registry), so a plugin author can see where their codec stands with one command. The core
CLI adds it with :func:`add_parser`; ``python -m lmar.bench PATH...`` runs it on its own.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from ..errors import LmarError
from ..registry import Registry, get_registry
from ..walk import Skipped
from .contenders import Contender, discover_contenders
from .inputs import BenchFile, collect_files
from .outputs import read_reuse, require_matplotlib, write_outputs
from .results import BenchRun, command_line, describe_machine
from .run import FileResult, Settings, iter_results
from .tables import print_terminal

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def add_parser(subparsers: Any) -> None:
    """Add ``bench`` to an ``argparse`` sub-parsers object; the parsed namespace's ``func`` is :func:`run`."""
    p = subparsers.add_parser(
        "bench", help="measure every codec on your files (rate, bits/byte, speed)",
        description="Run every available codec (and the xz/zstd/brotli/bzip2/gzip command-line tools found on "
                    "PATH) on each file, verify every round trip, and report compressed size, rate, bits per "
                    "byte and throughput per file and per top-level folder (modality).")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (walked recursively)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip files whose path (relative to the PATH given) or name matches GLOB (repeatable)")
    p.add_argument("--codecs", metavar="A,B", help="only these contenders (registry names, or ext:xz, ext:zstd, "
                   "ext:brotli, ext:bzip2, ext:gzip for the command-line tools)")
    p.add_argument("--repeat", type=int, default=3, metavar="N",
                   help="time each whole-file measurement N times and report the median (default 3)")
    p.add_argument("--chunk-size", type=int, default=2048, metavar="N",
                   help="also code each file as independent N-byte chunks, as Deletang et al. (2023) do "
                        "(default 2048; 0 turns it off)")
    p.add_argument("--chunk-sample", type=int, metavar="K",
                   help="code at most K chunks per file, evenly spread (an estimate for slow codecs; default: all)")
    p.add_argument("--whole-only", metavar="A,B",
                   help="measure these codecs on whole files only: the chunked setting costs one call per chunk, "
                        "too slow for an LM codec on a large corpus (they are listed as not measured)")
    p.add_argument("--only", action="append", default=[], metavar="CODEC=GLOB",
                   help="measure CODEC only on files whose path (relative to the PATH given) or name matches GLOB "
                        "(repeatable); elsewhere it is reported as not run")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="stop a measurement (one codec on one file) after SECONDS and report it as timed out")
    p.add_argument("--max-time", type=float, metavar="SECONDS",
                   help="start no new measurement after SECONDS; the rest is reported as not measured and the "
                        "reports are still written (files are measured round robin across modalities)")
    p.add_argument("--reuse", metavar="OLD.json",
                   help="take measurements from an earlier --json report where the file bytes, the codec and the "
                        "settings are the same (only ok/declined results); measure the rest")
    p.add_argument("--json", metavar="OUT", help="write the full results as JSON (schema: docs/BENCHMARKS.md)")
    p.add_argument("--md", metavar="OUT.md", help="write a Markdown report")
    p.add_argument("--plot", metavar="OUT.png", help="write plots (needs the 'plot' extra: matplotlib)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _check_output(path: str | None, flag: str) -> None:
    if path is None:
        return
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise LmarError(f"{flag} {path}: directory {parent} does not exist")
    if Path(path).is_dir():
        raise LmarError(f"{flag} {path}: is a directory")


def validate(args: argparse.Namespace) -> list[str] | None:
    """Check everything a long run could trip over later; returns the selected codec names (None: all)."""
    if args.repeat < 1:
        raise LmarError("--repeat must be at least 1")
    if args.chunk_size < 0:
        raise LmarError("--chunk-size must be 0 (off) or a positive number of bytes")
    if args.chunk_sample is not None and args.chunk_sample < 1:
        raise LmarError("--chunk-sample must be at least 1")
    if args.timeout is not None and not args.timeout > 0:
        raise LmarError("--timeout must be a positive number of seconds")
    if args.max_time is not None and not args.max_time > 0:
        raise LmarError("--max-time must be a positive number of seconds")
    for path, flag in ((args.json, "--json"), (args.md, "--md"), (args.plot, "--plot")):
        _check_output(path, flag)
    if args.plot:
        require_matplotlib()
    if args.codecs is None:
        return None
    names = _names(args.codecs)
    if not names:
        raise LmarError("--codecs needs at least one codec name")
    return names


def _only_rules(rules: list[str], contenders: list[Contender]) -> tuple[tuple[str, str], ...]:
    out = []
    for rule in rules:
        codec, sep, glob = rule.partition("=")
        if not sep or not codec or not glob:
            raise LmarError(f"--only {rule}: expected CODEC=GLOB, e.g. lm=text/*")
        if codec not in {c.name for c in contenders}:
            raise LmarError(f"--only {rule}: {codec} is not among the codecs measured")
        out.append((codec, glob))
    return tuple(out)


def _names(csv: str | None) -> list[str]:
    return [n.strip() for n in (csv or "").split(",") if n.strip()]


class _Progress:
    """A rich progress bar on stderr, sized in raw bytes to code; does nothing when not wanted."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.bar = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self.task = self.bar.add_task("bench", total=total)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def start(self, f: BenchFile, c: Contender) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=f"{c.name:>12} {os.path.basename(f.path)[:28]:<28}")

    def done(self, r: FileResult, passes: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, r.raw_bytes * passes)


def run(args: argparse.Namespace, registry: Registry | None = None) -> int:
    """Measure, print, write the requested files; 2 on bad input, 130 when interrupted."""
    try:
        selected = validate(args)
        files, skipped_files = collect_files(args.paths, args.exclude)
        if not files:
            raise LmarError("no files to measure under " + ", ".join(args.paths))
        contenders, skipped = discover_contenders(registry or get_registry(), selected)
        if not contenders:
            raise LmarError("no codec can run here; see `lmar codecs`")
        chunk_size = args.chunk_size or None
        whole_only = _names(args.whole_only)
        unknown = sorted(set(whole_only) - {c.name for c in contenders})
        if unknown:
            raise LmarError(f"--whole-only: {', '.join(unknown)} not among the codecs measured")
        if chunk_size is not None:
            skipped += [Skipped(n, f"chunked setting ({chunk_size}-byte chunks) not measured: --whole-only")
                        for n in whole_only]
        only = _only_rules(args.only, contenders)
        skipped += [Skipped(c, f"measured only on files matching {g} (--only)", is_error=False) for c, g in only]
        settings = Settings(paths=tuple(args.paths), repeat=args.repeat, chunk_size=chunk_size, command=command_line(),
                            chunk_sample=args.chunk_sample, timeout=args.timeout, whole_only=tuple(whole_only),
                            max_time=args.max_time, only=tuple(only))
        reuse = read_reuse(args.reuse, settings, contenders) if args.reuse else None
    except LmarError as exc:
        print(f"lmar: {exc}", file=sys.stderr)
        return EXIT_USAGE

    passes = 1 + (chunk_size is not None)
    results: list[FileResult] = []
    complete = True
    show = not args.quiet and sys.stderr.isatty()
    with _Progress(show, sum(f.raw_bytes for f in files) * len(contenders) * passes) as progress:
        try:
            for r in iter_results(files, contenders, settings, on_start=progress.start, reuse=reuse):
                results.append(r)
                progress.done(r, passes)
        except KeyboardInterrupt:
            complete = False

    # Reports list results in path order, whatever order they were measured in.
    file_order = {f.path: i for i, f in enumerate(files)}
    codec_order = {c.name: i for i, c in enumerate(contenders)}
    results.sort(key=lambda r: (file_order[r.path], codec_order[r.codec]))
    bench_run = BenchRun(
        settings=settings, machine=describe_machine(), contenders=tuple(contenders),
        skipped=tuple(skipped + skipped_files), files=tuple(files), results=tuple(results), complete=complete,
        reuse=reuse)

    from rich.console import Console

    # Piped output has no terminal width to respect; 160 columns keeps the per-file matrix in few pieces.
    print_terminal(bench_run, Console() if sys.stdout.isatty() else Console(width=160))
    if not complete:
        print("lmar: interrupted; --json/--md/--plot not written", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        write_outputs(bench_run, args.json, args.md, args.plot)
    except (OSError, LmarError) as exc:
        print(f"lmar: cannot write report: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lmar.bench PATH...``: the same as ``lmar bench PATH...``."""
    parser = argparse.ArgumentParser(prog="lmar")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)

