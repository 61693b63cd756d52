"""The ``lmar`` command: a thin layer over :mod:`lmar.archive`.

Exit codes: 0 ok, 1 some members failed, 2 fatal or usage error, 130 interrupted. No traceback reaches
the user (set ``LMAR_DEBUG=1`` to see one).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Sequence

from . import __version__
from .archive import ArchiveReader, CreateOptions, MemberFilter, MemberResult, open_archive, stdout_writer
from .grouping import DEFAULT_SOLID_LIMIT, DEFAULT_SOLID_SIZE, LEVEL_SOLID_SIZE, MAX_SOLID_SIZE, GroupingOptions
from .console import error, make_progress, note, warn
from .errors import LmarError
from .listing import json_value, long_line, member_json
from .members import MemberInfo
from .printable import printable
from .registry import describe, get_registry
from .selection import LEVEL_BUDGET, SelectOptions

EXIT_OK, EXIT_SOME_FAILED, EXIT_FATAL = 0, 1, 2


# -- create ------------------------------------------------------------------------------------------------
def cmd_create(args: argparse.Namespace) -> int:
    registry = get_registry()
    if args.codec != "auto":
        registry.create(args.codec)  # fail fast with a clear message for an unknown codec
    candidates = _split(args.candidates)
    for name in candidates or []:
        registry.get(name)
    select = SelectOptions(codec=args.codec, candidates=candidates, level=args.level, verify=not args.no_verify)
    grouping = GroupingOptions(solid=not args.no_solid, solid_limit=args.solid_limit, solid_size=args.solid_size,
                               dedup=not args.no_dedup)
    options = CreateOptions(select=select, jobs=args.jobs, excludes=args.exclude, time_budget=args.time_budget,
                            grouping=grouping, record_trials=args.record_trials, executor=args.executor,
                            ray_address=args.ray_address, owners=not args.no_owner)
    archive = args.archive if args.archive == "-" else os.path.abspath(args.archive)
    if args.files_from is not None:
        args.paths = [*args.paths, *_read_names(args.files_from, args.null)]
    if not args.paths:
        raise LmarError("no paths to archive (name some, or give --files-from)")
    if args.directory:
        try:
            os.chdir(args.directory)
        except OSError as exc:
            raise LmarError(f"{args.directory}: cannot change directory: {exc.strerror}") from None
    if not args.quiet:
        _note_renamed(args.paths)
    missing = [p for p in args.paths if not os.path.lexists(p)]
    for p in missing:
        error(f"{p}: no such file or directory")
    progress = make_progress(args.quiet or args.archive == "-")
    started = time.monotonic()
    if archive == "-":
        if sys.stdout.isatty():
            raise LmarError("refusing to write an archive to a terminal")
        writer = stdout_writer(options=options, progress=progress)
        results = writer.add([p for p in args.paths if p not in missing])
        writer.close()
        sys.stdout.buffer.flush()
    else:
        with open_archive(archive, "w", options=options, progress=progress, overwrite=args.overwrite) as writer:
            results = writer.add([p for p in args.paths if p not in missing])
    failed = _report_create(results, args, time.monotonic() - started)
    return EXIT_SOME_FAILED if failed or missing else EXIT_OK


def _note_renamed(paths: list[str]) -> None:
    """Say once, as tar does, when member names will not be the paths as typed: a leading '/' or a '..'
    is dropped (extraction would refuse them), so ``/etc`` is stored as ``etc``."""
    parts = [p.replace(os.sep, "/").split("/") for p in paths]
    if any(p.startswith("/") for p in paths):
        note("removing leading '/' from member names")
    if any(".." in ps for ps in parts):
        note("removing '..' from member names")


def _read_names(source: str, null: bool) -> list[str]:
    """Paths listed one per line (``--null``: NUL-separated, as ``find -print0`` writes them) in a file, or
    on stdin for ``-``. Read before ``-C`` changes directory, as tar reads its -T file."""
    try:
        if source == "-":
            if sys.stdin.isatty():
                raise LmarError("--files-from -: refusing to read names from a terminal")
            raw = sys.stdin.buffer.read()
        else:
            with open(source, "rb") as f:
                raw = f.read()
    except OSError as exc:
        raise LmarError(f"--files-from {source}: {exc.strerror or exc}") from None
    names = raw.split(b"\0") if null else raw.splitlines()
    return [os.fsdecode(n) for n in names if n]


def _report_create(results: list[MemberResult], args: argparse.Namespace, seconds: float) -> int:
    failed = 0
    for r in results:
        for w in r.warnings:
            warn(f"{r.path}: {w}")
        if r.error:
            failed += 1
            error(f"{r.path}: {r.error}")
        elif args.verbose and r.type != "skipped":
            print(f"{printable(r.path)}  {r.codec or r.type}  {r.size} -> {r.stored_size}", file=sys.stderr)
    _note_machine_bound(results)
    if args.json:
        raw = sum(r.size for r in results if r.type == "file")
        stored = sum(r.stored_size for r in results if r.type == "file")
        doc = {"archive": args.archive, "members": [r.to_json() for r in results],
               "totals": {"size": raw, "stored_size": stored, "seconds": round(seconds, 3), "failed": failed}}
        json.dump(doc, sys.stdout if args.archive != "-" else sys.stderr, indent=2)
        print(file=sys.stdout if args.archive != "-" else sys.stderr)
    return failed


def _note_machine_bound(results: list[MemberResult]) -> None:
    """Say once which members only decode on machines like this one (float numerics), and on which."""
    bound: dict[str, list[str]] = {}
    for r in results:
        if r.machine_bound and not r.error:
            bound.setdefault(r.machine_bound, []).append(r.path)
    for where, paths in bound.items():
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        warn(f"{len(paths)} member(s) decode only on {where}, like this machine: {shown} "
             f"(`lmar list -l` marks them)")


# -- reading -----------------------------------------------------------------------------------------------
def _open_reader(path: str) -> ArchiveReader:
    if path == "-" and sys.stdin.isatty():  # tar refuses too: the user would wait on a silent prompt
        raise LmarError("refusing to read an archive from a terminal (pipe one in, or name the file)")
    reader = ArchiveReader(sys.stdin.buffer, "<stdin>") if path == "-" else open_archive(path, "r")
    if reader.index_problem:
        warn(f"{reader.name}: {reader.index_problem}; reading the archive by scanning it")
    return reader


def cmd_extract(args: argparse.Namespace) -> int:
    def on_member(info: MemberInfo, problem: str | None) -> None:
        if problem is not None:
            progress.note(f"lmar: {problem}")
        elif args.verbose and not args.to_stdout:
            print(printable(info.path), file=sys.stderr)

    with _open_reader(args.archive) as reader:
        progress = make_progress(args.quiet or args.to_stdout)
        if args.to_stdout:
            report = reader.extract_to_stream(sys.stdout.buffer, args.members, on_member=on_member, progress=progress,
                                              **_parallel(args))
        else:
            report = reader.extractall(args.directory or ".", args.members, overwrite=args.overwrite,
                                       on_member=on_member, progress=progress, same_owner=args.same_owner,
                                       strip=args.strip_components, skip_existing=args.skip_existing,
                                       **_parallel(args))
    _say_unmatched(report.unmatched)
    return EXIT_OK if report.ok else EXIT_SOME_FAILED


def _say_unmatched(patterns: list[str]) -> None:
    """Name each MEMBER pattern of extract, list or compare that matched nothing."""
    for p in patterns:
        error(f"{p}: not found in archive")


def cmd_list(args: argparse.Namespace) -> int:
    """List from the index; without one, scan and print as we go so a damaged tail still lists the rest."""
    listed: list[MemberInfo] = []
    wanted = MemberFilter(args.members)
    with _open_reader(args.archive) as reader:
        try:
            members = reader.getmembers() if reader.indexed else (info for info, _ in reader.iter_members())
            for m in members:
                if not wanted(m.path):
                    continue
                listed.append(m)
                if not args.json:
                    print(long_line(m) if args.long else printable(m.path) + ("/" if m.isdir() else ""))
        except LmarError as exc:
            if args.json:
                json.dump([member_json(m) for m in listed], sys.stdout, indent=2, default=json_value)
                print()
            error(str(exc))
            return EXIT_SOME_FAILED if listed else EXIT_FATAL
    if args.json:
        json.dump([member_json(m) for m in listed], sys.stdout, indent=2, default=json_value)
        print()
    damaged = [m for m in listed if m.damage]
    for m in damaged:
        error(m.damage or m.path)
    _say_unmatched(wanted.unmatched)
    return EXIT_SOME_FAILED if damaged or wanted.unmatched else EXIT_OK


def _visit_members(args: argparse.Namespace, ok_word: str, run: Any) -> Any:
    """Open ARCHIVE and ``run(reader, on_member, progress)`` (test, compare): each member's problem is printed
    as it comes, and with ``-v`` each member that went through, after ``ok_word``."""
    progress = make_progress(args.quiet)

    def on_member(info: MemberInfo, problem: str | None) -> None:
        if problem is not None:
            progress.note(f"lmar: {problem}")
        elif args.verbose:
            print(f"{ok_word:<8}{printable(info.path)}")

    with _open_reader(args.archive) as reader:
        return run(reader, on_member, progress)


def cmd_test(args: argparse.Namespace) -> int:
    report = _visit_members(args, "OK", lambda reader, on_member, progress: reader.test(
        on_member=on_member, progress=progress, **_parallel(args)))
    failed = len(report.failures)
    if not args.quiet:
        print(f"{report.visited - failed} of {report.visited} members OK" + (f", {failed} FAILED" if failed else ""),
              file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    report = _visit_members(args, "same", lambda reader, on_member, progress: reader.compare(
        args.directory or ".", args.members, on_member=on_member, progress=progress, **_parallel(args)))
    _say_unmatched(report.unmatched)
    differ = len(report.failures)
    if not args.quiet:
        print(f"{report.visited - differ} of {report.visited} members match the disk"
              + (f", {differ} differ" if differ else ""), file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_SOME_FAILED


def cmd_codecs(args: argparse.Namespace) -> int:
    registry = get_registry()
    rows = []
    for name in sorted(registry.codecs):
        cls = registry.codecs[name]
        ok, why = cls.availability()
        try:
            extra = cls.info()
        except Exception as exc:  # a plugin's info() must not break the listing
            extra = {"error": str(exc)}
        rows.append({"name": name, "version": cls.version, "kind": cls.kind, "available": ok,
                     "reason": why or None, "provider": registry.providers.get(name, ""),
                     "description": cls.description, **{k: v for k, v in extra.items() if k not in ("name",)}})
    failures = [{"plugin": f.plugin, "provider": f.provider, "error": f.error} for f in registry.failures]
    if args.json:
        json.dump(rows if not failures else rows + [{"name": None, "plugin_failure": f} for f in failures],
                  sys.stdout, indent=2, default=json_value)
        print()
        return EXIT_OK
    width = max([len(r["name"]) for r in rows] + [5])
    provider_width = max([len(r["provider"] or "?") for r in rows] + [4])
    print(f"{'CODEC':<{width}}  VER  {'KIND':<10} {'FROM':<{provider_width}}  AVAILABLE")
    for r in rows:
        if r["available"]:
            needs = describe(registry.codecs[r["name"]], None)  # the codec words it; the CLI reads no params
            status = "yes  " + r["description"] + (f"  [{needs}]" if needs else "")
        else:  # the reason says what to do; the description of a codec that cannot run adds nothing
            status = f"no   {r['reason']}"
        provider = r["provider"] or "?"
        print(f"{r['name']:<{width}}  v{r['version']:<3} {r['kind']:<10} {provider:<{provider_width}}  {status}")
    for f in failures:
        print(f"plugin {f['plugin']} (from {f['provider'] or '?'}) failed to load: {f['error']}")
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------------------------
def _parallel(args: argparse.Namespace) -> dict[str, Any]:
    return {"jobs": args.jobs, "executor": args.executor, "ray_address": args.ray_address}


def _add_executor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where tasks run: local processes (default) or a Ray cluster (needs lmar[ray])")
    p.add_argument("--ray-address", metavar="ADDR", help="the Ray cluster to join (default: RAY_ADDRESS; "
                   "neither: Ray starts on this machine)")


def _count(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return n


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _positive_float(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return v


def _solid_bytes(value: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = value.strip().lower().rstrip("b")
    mult = units.get(text[-1:], 1)
    try:
        n = int(float(text[:-1] if text[-1:] in units else text) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {value}") from None
    if not 0 < n <= MAX_SOLID_SIZE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_SOLID_SIZE >> 20}M")
    return n


#: The commands lmar defines itself. When one of them is run, the optional ones (``bench``, a plugin's
#: ``register_commands``) are not built: importing ``lmar.bench`` alone took ~30 ms of every command's start.
CORE_COMMANDS = frozenset({"create", "extract", "list", "test", "compare", "diff", "codecs"})


def _command_word(argv: Sequence[str]) -> str | None:
    """The first word of ``argv`` that is not an option (the command, unless an option's value comes first)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(optional_commands: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmar", description="Archive files, compressing each one with the codec "
                                     "(classical or language model) that makes it smallest.")
    parser.add_argument("--version", action="version", version=f"lmar {__version__}")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                        help="where LM codecs run (default: auto; also LMAR_DEVICE)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("create", help="create an archive", description="Create ARCHIVE ('-' for stdout) from PATHs.")
    c.add_argument("archive")
    c.add_argument("paths", nargs="*", metavar="PATH")
    c.add_argument("-T", "--files-from", metavar="FILE",
                   help="also archive the paths listed in FILE, one per line ('-': stdin)")
    c.add_argument("--null", action="store_true", help="--files-from names are NUL-separated (find -print0)")
    c.add_argument("-C", "--directory", help="change to DIR before adding PATHs")
    c.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip matching paths (repeatable)")
    c.add_argument("--codec", default="auto", help="codec for every file, or 'auto' (default) to pick per file")
    c.add_argument("--candidates", metavar="A,B,C", help="restrict auto selection to these codecs")
    c.add_argument("--level", choices=sorted(LEVEL_BUDGET), default="default",
                   help="how much work selection may spend: fast (no LM), default, max (no time limit)")
    c.add_argument("--time-budget", type=_positive_float, metavar="SECONDS",
                   help="approximate total compression time allowed; slow codecs are skipped to fit")
    c.add_argument("-j", "--jobs", type=int, default=0, help="worker processes (default: all cores)")
    _add_executor_args(c)
    c.add_argument("--no-verify", action="store_true", help="do not decode LM-coded members before committing them")
    c.add_argument("--no-solid", action="store_true", help="code every file on its own (no solid blocks)")
    c.add_argument("--solid-size", type=_solid_bytes, default=None, metavar="N",
                   help=f"largest solid block in bytes, K/M/G suffixes allowed (default {DEFAULT_SOLID_SIZE >> 20}M, "
                   f"{LEVEL_SOLID_SIZE['fast'] >> 20}M at --level fast)")
    c.add_argument("--solid-limit", type=_solid_bytes, default=None, metavar="N",
                   help=f"files of at least N bytes are coded on their own (default {DEFAULT_SOLID_LIMIT >> 20}M)")
    c.add_argument("--no-dedup", action="store_true", help="store every file's content even when it repeats another's")
    c.add_argument("--no-owner", action="store_true",
                   help="do not record owners (user and group of each member, as tar records them)")
    c.add_argument("--record-trials", action="store_true",
                   help="keep every candidate codec's trial size in the archive (shown by list -l)")
    c.add_argument("--overwrite", action="store_true", help="replace ARCHIVE if it exists")
    c.add_argument("--json", action="store_true", help="print a JSON report (codec and candidate sizes per member)")
    c.add_argument("-v", "--verbose", action="store_true")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar, and no note that a leading '/' or "
                   "'..' was removed from names (warnings and errors are still printed)")
    c.set_defaults(func=cmd_create)

    x = sub.add_parser("extract", help="extract members", description="Extract members (all, or those matching "
                       "MEMBER names/globs; a directory selects its contents).")
    x.add_argument("archive")
    x.add_argument("members", nargs="*", metavar="MEMBER")
    x.add_argument("-C", "--directory", help="extract into DIR (default: current directory)")
    existing = x.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing files")
    existing.add_argument("--skip-existing", action="store_true",
                          help="leave files that already exist as they are, silently (resume an interrupted extract)")
    x.add_argument("--strip-components", type=_count, default=0, metavar="N",
                   help="drop N leading components from member names (and hard link targets); members with no "
                        "more than N components are skipped")
    x.add_argument("--same-owner", action="store_true",
                   help="give members their recorded owners, by name where this machine knows it (root only; "
                        "by default extracted files belong to the user extracting, as with tarfile's data filter)")
    x.add_argument("-O", "--to-stdout", action="store_true", help="write file contents to stdout")
    x.add_argument("-v", "--verbose", action="store_true")
    x.add_argument("-q", "--quiet", action="store_true")
    x.add_argument("-j", "--jobs", type=int, default=None,
                   help="workers decoding blocks (default: every core when two or more groups are LM-coded, else 1; "
                        "every CPU of a Ray cluster)")
    _add_executor_args(x)
    x.set_defaults(func=cmd_extract)

    ls = sub.add_parser("list", help="list members")
    ls.add_argument("archive")
    ls.add_argument("members", nargs="*", metavar="MEMBER", help="only these members (paths, directories or globs)")
    ls.add_argument("-l", "--long", action="store_true", help="mode, size, stored size, codec, time, candidates")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    t = sub.add_parser("test", help="decode every member and verify its checksums")
    t.add_argument("archive")
    t.add_argument("-v", "--verbose", action="store_true")
    t.add_argument("-q", "--quiet", action="store_true")
    t.add_argument("-j", "--jobs", type=int, default=None,
                   help="workers decoding blocks (default: every core when two or more groups are LM-coded, else 1; "
                        "every CPU of a Ray cluster)")
    _add_executor_args(t)
    t.set_defaults(func=cmd_test)

    d = sub.add_parser("compare", aliases=["diff"], help="say what differs between the archive and the disk",
                       description="Decode members (verifying their checksums) and compare each with the path it "
                                   "would extract to: kind, content, size, mode, modification time, link target "
                                   "(tar's --diff). Exit 1 when anything differs; nothing is written.")
    d.add_argument("archive")
    d.add_argument("members", nargs="*", metavar="MEMBER")
    d.add_argument("-C", "--directory", help="compare with the files under DIR (default: current directory)")
    d.add_argument("-v", "--verbose", action="store_true", help="also name the members that match")
    d.add_argument("-q", "--quiet", action="store_true")
    d.add_argument("-j", "--jobs", type=int, default=None, help="workers decoding blocks (as for test)")
    _add_executor_args(d)
    d.set_defaults(func=cmd_compare)

    k = sub.add_parser("codecs", help="list the codec registry")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_codecs)

    if optional_commands:
        _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub: Any) -> None:
    try:
        from .bench import cli as bench_cli
    except ImportError:
        bench_cli = None  # type: ignore[assignment]
    if bench_cli is not None:
        bench_cli.add_parser(sub)
    registry = get_registry()
    if registry.manager is not None:
        registry.manager.hook.register_commands(subparsers=sub)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        words = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser(optional_commands=_command_word(words) not in CORE_COMMANDS)
        args, extra = parser.parse_known_args(words)
        if extra:
            # argparse matches ARCHIVE and MEMBER... in one go, so in `extract A -C DIR M...` the members after
            # the option come back unmatched: they are still members.
            if args.command == "extract" and not any(e.startswith("-") for e in extra):
                args.members = [*args.members, *extra]
            else:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if args.device:
            os.environ["LMAR_DEVICE"] = args.device
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return EXIT_FATAL
        return int(args.func(args) or 0)
    except LmarError as exc:
        error(str(exc))
        return EXIT_FATAL
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return EXIT_FATAL
    except OSError as exc:  # the system refused (disk full, read-only, ...): say what, not "internal error"
        if os.environ.get("LMAR_DEBUG"):
            raise
        error(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else (exc.strerror or str(exc)))
        return EXIT_FATAL
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get("LMAR_DEBUG"):
            raise
        error(f"internal error: {type(exc).__name__}: {exc} (set LMAR_DEBUG=1 for details)")
        return EXIT_FATAL


if __name__ == "__main__":
    sys.exit(main())
