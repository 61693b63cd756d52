"""Render a :class:`lmar.bench.BenchRun`: terminal tables (rich), Markdown, JSON and PNG plots.

Why one module for every format: the terminal and Markdown show the same tables, built once here as
rows of :class:`Cell`, so the two can never disagree. The JSON is the archival form; its schema is
documented in docs/BENCHMARKS.md and versioned by :data:`lmar.bench.SCHEMA_VERSION`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .bench import (ALL_GROUP, DECLINED, DOMAIN_KINDS, MISMATCH, REUSABLE_STATUSES, SCHEMA_VERSION, SKIPPED, TIMEOUT,
                    BenchRun, Contender, FileResult, GroupSummary, Measurement, Reuse, Settings, Totals,
                    adjusted_rate_pct, best_codec, bits_per_byte, rate_pct, throughput)
from .errors import LmarError

# -- formatting -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """A table cell; ``best`` marks the winner of its row or column (bold in both renderings)."""

    text: str
    best: bool = False


def _chunks(run: BenchRun) -> str:
    """How the chunked figures were made, for titles (sampling must never go unsaid)."""
    text = f"{run.settings.chunk_size}-byte chunks"
    if run.settings.chunk_sample:
        text += f", at most {run.settings.chunk_sample} per file, evenly spread"
    return text


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def fmt_bpb(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _scaled(value: float, unit: str) -> str:
    """Three significant digits with a decimal prefix: ``1.23 MB``, ``45.6 kB/s``."""
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def fmt_speed(bytes_per_s: float | None) -> str:
    return "-" if bytes_per_s is None else _scaled(bytes_per_s, "B/s")


def fmt_bytes(n: int | None) -> str:
    return "-" if n is None else _scaled(n, "B")


def _declined_text(kind: str) -> str:
    """A domain codec refusing other data is expected; any other refusal is a failure worth seeing."""
    return "n/a (declined)" if kind in DOMAIN_KINDS else "declined"


def _failure_text(m: Measurement, kind: str) -> str:
    if m.status == DECLINED:
        return _declined_text(kind)
    return {MISMATCH: "MISMATCH", TIMEOUT: "timeout", SKIPPED: "not run"}.get(m.status, "error")


def _measurement_cell(m: Measurement | None, kind: str, best: bool) -> Cell:
    if m is None:
        return Cell("-")
    if not m.ok:
        return Cell(_failure_text(m, kind))
    return Cell(fmt_pct(rate_pct(m.compressed_bytes, m.raw_bytes)), best)


def _totals_cell(t: Totals | None, kind: str, best: bool) -> Cell:
    """A group's rate; files the codec did not code are shown as a count so partial coverage is visible."""
    if t is None:
        return Cell("-")
    if t.files_ok == 0:
        if t.files_declined == t.files_total and t.files_total:
            return Cell(_declined_text(kind))
        if t.files_skipped == t.files_total and t.files_total:
            return Cell("not run")
        return Cell("failed" if t.files_total else "-")
    text = fmt_pct(rate_pct(t.compressed_bytes, t.raw_bytes))
    if not t.complete:
        text += f" ({t.files_ok}/{t.files_total})"
    return Cell(text, best)


# -- tables shared by terminal and Markdown ----------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""
    #: Leading columns that identify a row; repeated when a wide table is split to fit a terminal.
    key_columns: int = 1


def _best_in_group(run: BenchRun, group: dict[str, GroupSummary], chunked: bool) -> str | None:
    """Lowest rate among contenders that coded every file of the group (others are not comparable)."""
    cands: dict[str, float] = {}
    for c in run.contenders:
        t = group[c.name].chunked if chunked else group[c.name].whole
        if t is not None and t.complete:
            cands[c.name] = t.compressed_bytes / max(1, t.raw_bytes)
    return best_codec(cands)


def metrics_table(run: BenchRun, group_name: str, title: str) -> Table:
    """Every figure for one group of files: one row per contender."""
    group = run.groups.get(group_name, {})
    best = _best_in_group(run, group, False) if group else None
    chunked_on = run.settings.chunk_size is not None
    header = ["codec", "kind", "files", "compressed", "rate", "bits/byte", "adj. rate"]
    if chunked_on:
        header += [f"rate @{run.settings.chunk_size}", f"adj. @{run.settings.chunk_size}"]
    header += ["compress", "decompress"]
    rows = []
    for c in run.contenders:
        if c.name not in group:
            continue
        t, tc = group[c.name].whole, group[c.name].chunked
        raw = t.raw_bytes
        ok = t.files_ok > 0
        row = [Cell(c.name, c.name == best), Cell(c.kind), Cell(f"{t.files_ok}/{t.files_total}"),
               Cell(fmt_bytes(t.compressed_bytes) if ok else "-"), _totals_cell(t, c.kind, c.name == best),
               Cell(fmt_bpb(bits_per_byte(t.compressed_bytes, raw)) if ok else "-"),
               Cell(fmt_pct(adjusted_rate_pct(t.compressed_bytes, c.model_bytes, raw)) if ok else "-")]
        if chunked_on:
            okc = tc is not None and tc.files_ok > 0
            row += [_totals_cell(tc, c.kind, False),
                    Cell(fmt_pct(adjusted_rate_pct(tc.compressed_bytes, c.model_bytes, tc.raw_bytes)) if okc else "-")]
        row += [Cell(fmt_speed(throughput(raw, t.compress_s)) if ok else "-"),
                Cell(fmt_speed(throughput(raw, t.decompress_s)) if ok else "-")]
        rows.append(tuple(row))
    files = sum(1 for f in run.files if group_name in (ALL_GROUP, f.modality))
    raw_total = sum(f.raw_bytes for f in run.files if group_name in (ALL_GROUP, f.modality))
    note = (f"{files} files, {fmt_bytes(raw_total)}. Rate = compressed/raw (lower is better); adj. rate adds the "
            "model's bytes once per group; speeds are raw bytes per second (median of repeats). Best complete "
            "contender in bold.")
    return Table(title, tuple(header), tuple(rows), note)


def modality_table(run: BenchRun, chunked: bool) -> Table:
    """Rate per modality per contender (columns: modalities, then all files)."""
    by_group = run.groups
    groups = [g for g in by_group if g != ALL_GROUP] + [ALL_GROUP]
    bests = {g: _best_in_group(run, by_group[g], chunked) for g in groups}
    rows = []
    for c in run.contenders:
        cells = [Cell(c.name)]
        for g in groups:
            s = by_group[g][c.name]
            cells.append(_totals_cell(s.chunked if chunked else s.whole, c.kind, bests[g] == c.name))
        rows.append(tuple(cells))
    what = f"each file cut into independent {_chunks(run)}" if chunked else "whole files"
    return Table(f"Rate by modality ({what})", ("codec", *groups), tuple(rows),
                 "(k/n): the contender coded only k of the n files; its rate covers those files.")


def _results_by_file(run: BenchRun) -> dict[str, dict[str, FileResult]]:
    out: dict[str, dict[str, FileResult]] = {}
    for r in run.results:
        out.setdefault(r.path, {})[r.codec] = r
    return out


def file_best(results: dict[str, FileResult], chunked: bool) -> str | None:
    sizes = {}
    for name, r in results.items():
        m = r.chunked if chunked else r.whole
        if m is not None and m.ok and m.compressed_bytes is not None:
            sizes[name] = m.compressed_bytes
    return best_codec(sizes)


def file_table(run: BenchRun, chunked: bool) -> Table:
    """Rate per file (rows) per contender (columns), the smallest in bold."""
    by_file = _results_by_file(run)
    rows = []
    for f in run.files:
        results = by_file.get(f.path)
        if not results:
            continue
        best = file_best(results, chunked)
        cells = [Cell(f.name), Cell(fmt_bytes(f.raw_bytes)), Cell(best or "-")]
        for c in run.contenders:
            r = results.get(c.name)
            m = None if r is None else (r.chunked if chunked else r.whole)
            cells.append(_measurement_cell(m, c.kind, c.name == best))
        rows.append(tuple(cells))
    what = _chunks(run) if chunked else "whole files"
    return Table(f"Rate per file ({what})", ("file", "raw", "best", *(c.name for c in run.contenders)), tuple(rows),
                 key_columns=3)


def failure_lines(run: BenchRun) -> list[str]:
    """Every failed measurement with its reason; a domain codec's refusals are counted on one line each."""
    kinds = {c.name: c.kind for c in run.contenders}
    lines: list[str] = []
    declined: dict[tuple[str, str], int] = {}
    for r in run.results:
        for label, m in (("whole", r.whole), (f"chunked {run.settings.chunk_size}", r.chunked)):
            if m is None or m.ok or m.status == SKIPPED:  # --only: said once under "Not measured"
                continue
            if m.status == DECLINED and kinds.get(r.codec) in DOMAIN_KINDS:
                declined[(r.codec, label)] = declined.get((r.codec, label), 0) + 1
                continue
            lines.append(f"{r.codec} on {r.path} ({label}): {m.status}: {m.reason}")
    for (codec, label), n in declined.items():
        lines.append(f"{codec} ({kinds[codec]} codec) declined {n} file(s) ({label}): not its kind of data")
    return lines


def reuse_line(run: BenchRun) -> str:
    n = sum(r.reused for r in run.results)
    source, when = (run.reuse.source, run.reuse.created_utc) if run.reuse is not None else ("-", "-")
    return (f"{n} of {len(run.results)} measurements reused from {source} (measured {when}); "
            f"the rest measured {run.created_utc}")


def skipped_lines(run: BenchRun) -> list[str]:
    return [f"{s.name}: {s.reason}" for s in run.skipped]


def all_tables(run: BenchRun) -> list[Table]:
    tables = [metrics_table(run, ALL_GROUP, "All files"), modality_table(run, False)]
    if run.settings.chunk_size is not None:
        tables.append(modality_table(run, True))
    tables.append(file_table(run, False))
    return tables


# -- terminal ---------------------------------------------------------------------------------------------


def split_columns(t: Table, width: int) -> list[Table]:
    """Cut a table too wide for ``width`` into several, each repeating the key columns.

    Why: a per-file matrix has one column per codec; wrapped cells in a narrow terminal are unreadable.
    """
    widths = [max([len(t.header[i])] + [len(r[i].text) for r in t.rows]) + 3 for i in range(len(t.header))]
    key = t.key_columns
    parts: list[list[int]] = [[]]
    used = sum(widths[:key]) + 1
    for i in range(key, len(t.header)):
        if parts[-1] and used + widths[i] > width:
            parts.append([])
            used = sum(widths[:key]) + 1
        parts[-1].append(i)
        used += widths[i]
    if len(parts) == 1:
        return [t]
    out = []
    for n, cols in enumerate(parts, 1):
        idx = list(range(key)) + cols
        out.append(Table(f"{t.title} ({n}/{len(parts)})", tuple(t.header[i] for i in idx),
                         tuple(tuple(r[i] for i in idx) for r in t.rows), t.note if n == len(parts) else "", key))
    return out


def print_terminal(run: BenchRun, console: Any) -> None:
    """Print the tables, then failures and skips, on a ``rich.console.Console``."""
    from rich.table import Table as RichTable
    from rich.text import Text

    # Text objects, not markup strings: a file name like "a[1].txt" must print as it is.
    for t in (part for table in all_tables(run) for part in split_columns(table, console.width)):
        # Title and note go outside the table: rich would wrap them to the width of a narrow table.
        console.print(Text(t.title, style="bold"))
        rt = RichTable()
        for i, h in enumerate(t.header):
            rt.add_column(Text(h), justify="left" if i < t.key_columns else "right", no_wrap=i >= t.key_columns)
        for row in t.rows:
            rt.add_row(*(Text(c.text, style="bold green" if c.best else "") for c in row))
        console.print(rt)
        if t.note:
            console.print(Text(t.note, style="dim"))
    for title, lines in (("Failures", failure_lines(run)), ("Not measured", skipped_lines(run))):
        if lines:
            console.print(Text(title, style="bold"))
            for line in lines:
                console.print(Text(f"  - {line}"))
    if run.reuse is not None:
        console.print(Text(reuse_line(run)))
    if not run.complete:
        console.print(Text("Interrupted: the figures above cover only what was measured.", style="bold yellow"))


# -- Markdown ---------------------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(t: Table) -> str:
    def cell(c: Cell) -> str:
        text = _md_escape(c.text)
        return f"**{text}**" if c.best else text

    lines = ["| " + " | ".join(_md_escape(h) for h in t.header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(t.header) - 1)) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in t.rows]
    if t.note:
        lines += ["", t.note]
    return "\n".join(lines)


def render_markdown(run: BenchRun) -> str:
    """A self-contained Markdown report: provenance, summary, per modality, per file, failures."""
    m = run.machine
    out = [f"## lmar bench results ({run.created_utc})", ""]
    if run.settings.command:
        out.append(f"- command: `{run.settings.command}`")
    chunking = _chunks(run) if run.settings.chunk_size else "off"
    out += [f"- lmar {run.lmar_version}; repeat {run.settings.repeat}; chunked: {chunking}"
            + (f"; timeout {run.settings.timeout:g} s per measurement" if run.settings.timeout else "")
            + (f"; run budget {run.settings.max_time:g} s" if run.settings.max_time else ""),
            f"- machine: {m.cpu_model}, {m.cpu_cores} cores, GPU: {m.gpu or 'none'}; {m.platform}; Python {m.python}",
            "- contenders: " + "; ".join(f"`{c.name}` ({c.kind}) {c.description}"
                                         + (f", model {fmt_bytes(c.model_bytes)}" if c.model_bytes else "")
                                         for c in run.contenders),
            ""]
    if run.reuse is not None:
        out.insert(-1, f"- {reuse_line(run)}")
    if not run.complete:
        out += ["**Interrupted: these figures cover only what was measured.**", ""]
    chunk_views = (False, True) if run.settings.chunk_size is not None else (False,)
    tables = [metrics_table(run, ALL_GROUP, "All files")]
    tables += [modality_table(run, chunked) for chunked in chunk_views]
    tables += [metrics_table(run, g, f"Modality `{g}`") for g in dict.fromkeys(f.modality for f in run.files)]
    tables += [file_table(run, chunked) for chunked in chunk_views]
    for t in tables:
        out += [f"### {t.title}", "", markdown_table(t), ""]
    for title, lines in (("Failures", failure_lines(run)), ("Not measured", skipped_lines(run))):
        if lines:
            out += [f"### {title}", ""] + [f"- {_md_escape(line)}" for line in lines] + [""]
    return "\n".join(out) + "\n"


# -- JSON -------------------------------------------------------------------------------------------------


def _r(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def measurement_dict(m: Measurement, model_bytes: int | None) -> dict[str, Any]:
    raw = m.raw_bytes
    return {
        "status": m.status, "reason": m.reason, "pieces": m.pieces, "raw_bytes": raw,
        "compressed_bytes": m.compressed_bytes,
        "rate_pct": _r(rate_pct(m.compressed_bytes, raw), 4),
        "bits_per_byte": _r(bits_per_byte(m.compressed_bytes, raw), 5),
        "adjusted_rate_pct": _r(adjusted_rate_pct(m.compressed_bytes, model_bytes, raw), 4),
        "compress_s": _r(m.compress_s, 6), "decompress_s": _r(m.decompress_s, 6),
        "compress_bytes_per_s": _r(throughput(raw, m.compress_s), 1),
        "decompress_bytes_per_s": _r(throughput(raw, m.decompress_s), 1),
    }


def totals_dict(t: Totals, model_bytes: int | None) -> dict[str, Any]:
    ok = t.files_ok > 0
    return {
        "files_ok": t.files_ok, "files_declined": t.files_declined, "files_failed": t.files_failed,
        "files_skipped": t.files_skipped,
        "complete": t.complete, "raw_bytes": t.raw_bytes,
        "compressed_bytes": t.compressed_bytes if ok else None,
        "rate_pct": _r(rate_pct(t.compressed_bytes, t.raw_bytes), 4) if ok else None,
        "bits_per_byte": _r(bits_per_byte(t.compressed_bytes, t.raw_bytes), 5) if ok else None,
        "adjusted_rate_pct": _r(adjusted_rate_pct(t.compressed_bytes, model_bytes, t.raw_bytes), 4) if ok else None,
        "compress_s": _r(t.compress_s, 6) if ok else None, "decompress_s": _r(t.decompress_s, 6) if ok else None,
        "compress_bytes_per_s": _r(throughput(t.raw_bytes, t.compress_s), 1) if ok else None,
        "decompress_bytes_per_s": _r(throughput(t.raw_bytes, t.decompress_s), 1) if ok else None,
    }


def _contender_dict(c: Contender) -> dict[str, Any]:
    return {"name": c.name, "kind": c.kind, "source": c.source, "description": c.description,
            "version": c.version, "model_bytes": c.model_bytes, "block_size": c.block_size, "info": dict(c.info)}


def to_json_dict(run: BenchRun) -> dict[str, Any]:
    """The report in the documented schema (docs/BENCHMARKS.md, ``schema_version`` 1)."""
    models = {c.name: c.model_bytes for c in run.contenders}
    by_file = _results_by_file(run)
    by_group = run.groups
    groups = [ALL_GROUP] + [g for g in by_group if g != ALL_GROUP]
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": "lmar bench",
        "lmar_version": run.lmar_version,
        "created_utc": run.created_utc,
        "complete": run.complete,
        "settings": {"paths": list(run.settings.paths), "repeat": run.settings.repeat,
                     "chunk_size": run.settings.chunk_size, "chunk_sample": run.settings.chunk_sample,
                     "whole_only": list(run.settings.whole_only),
                     "only": [{"codec": c, "glob": g} for c, g in run.settings.only],
                     "chunked_repeat": 1, "timeout_s": run.settings.timeout, "max_time_s": run.settings.max_time,
                     "command": run.settings.command,
                     "reused_from": None if run.reuse is None else {"path": run.reuse.source,
                                                                    "created_utc": run.reuse.created_utc}},
        "machine": asdict(run.machine),
        "codecs": [_contender_dict(c) for c in run.contenders],
        "skipped": [{"name": s.name, "reason": s.reason} for s in run.skipped],
        "files": [{"path": f.path, "name": f.name, "modality": f.modality, "raw_bytes": f.raw_bytes,
                   "sha256": next((r.sha256 for r in by_file.get(f.path, {}).values()), None),
                   "best_codec": file_best(by_file.get(f.path, {}), False),
                   "best_codec_chunked": file_best(by_file.get(f.path, {}), True)}
                  for f in run.files],
        "results": [{"path": r.path, "codec": r.codec, "reused": r.reused,
                     "whole": measurement_dict(r.whole, models.get(r.codec)),
                     "chunked": None if r.chunked is None else measurement_dict(r.chunked, models.get(r.codec))}
                    for r in run.results],
        "summary": [{"group": g,
                     "best_codec": _best_in_group(run, by_group[g], False),
                     "best_codec_chunked": _best_in_group(run, by_group[g], True) if run.settings.chunk_size else None,
                     "codecs": [{"codec": s.codec,
                                 "whole": totals_dict(s.whole, models.get(s.codec)),
                                 "chunked": None if s.chunked is None else totals_dict(s.chunked, models.get(s.codec))}
                                for s in by_group[g].values()]}
                    for g in groups],
    }


#: What must not have changed for an earlier figure to still describe a codec (``info`` holds model checksums).
_IDENTITY = ("kind", "source", "description", "version", "model_bytes", "block_size", "info")


def _measurement_from(d: dict[str, Any]) -> Measurement:
    return Measurement(d["status"], d["reason"], d["compressed_bytes"], d["compress_s"], d["decompress_s"],
                       d["pieces"], d["raw_bytes"])


def read_reuse(path: str | Path, settings: Settings, contenders: list[Contender]) -> Reuse:
    """Load the reusable measurements of an earlier JSON report (see :class:`lmar.bench.Reuse`).

    Raises :class:`LmarError` when the report cannot be read or was measured with other settings: figures
    taken with another repeat count or chunking would not compare with the new ones.
    """
    try:
        old = json.loads(Path(path).read_text(encoding="utf-8"))
        if old.get("schema_version") != SCHEMA_VERSION:
            raise LmarError(f"--reuse {path}: schema_version {old.get('schema_version')}, expected {SCHEMA_VERSION}")
        was = old["settings"]
        for key, now in (("repeat", settings.repeat), ("chunk_size", settings.chunk_size),
                         ("chunk_sample", settings.chunk_sample)):
            if was.get(key) != now:
                raise LmarError(f"--reuse {path}: measured with {key} {was.get(key)}, this run uses {now}")
        now_ids = {c.name: {k: _contender_dict(c)[k] for k in _IDENTITY} for c in contenders}
        same = {c["name"] for c in old["codecs"] if now_ids.get(c["name"]) == {k: c.get(k) for k in _IDENTITY}}
        digests = {f["path"]: f.get("sha256") for f in old["files"]}
        table: dict[tuple[str, str], tuple[Measurement, Measurement | None]] = {}
        for r in old["results"]:
            digest = digests.get(r["path"])
            pair = (r["whole"], r["chunked"])
            if r["codec"] in same and digest and all(m is None or m["status"] in REUSABLE_STATUSES for m in pair):
                table[(digest, r["codec"])] = (_measurement_from(r["whole"]),
                                               None if r["chunked"] is None else _measurement_from(r["chunked"]))
        return Reuse(str(path), old.get("created_utc", "?"), table)
    except OSError as exc:
        raise LmarError(f"--reuse {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LmarError(f"--reuse {path}: not an lmar bench JSON report ({type(exc).__name__}: {exc})") from None


def write_json(run: BenchRun, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_json_dict(run), indent=1) + "\n", encoding="utf-8")


def write_markdown(run: BenchRun, path: str | Path) -> None:
    Path(path).write_text(render_markdown(run), encoding="utf-8")


# -- plots ------------------------------------------------------------------------------------------------


class PlotUnavailable(LmarError):
    """matplotlib is an optional extra; say how to get it instead of failing with an import error."""


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotUnavailable("--plot needs matplotlib: pip install 'lmar[plot]'") from None


_MARKERS = {"classical": "o", "lm": "*", "image": "^", "audio": "v", "external": "s"}


def write_plot(run: BenchRun, path: str | Path) -> None:
    """Two panels in one PNG: rate vs compression speed (log x), and rate per modality (grouped bars).

    Contenders that do not compress at all (rate >= 100 %, e.g. ``store``) are left out: they would
    stretch both axes and hide the differences that matter.
    """
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_group = run.groups
    overall = by_group.get(ALL_GROUP, {})
    modalities = [g for g in by_group if g != ALL_GROUP]
    shown, omitted = [], []
    for c in run.contenders:
        t = overall[c.name].whole if c.name in overall else None
        rate = rate_pct(t.compressed_bytes, t.raw_bytes) if t is not None and t.files_ok else None
        if rate is None or rate >= 100.0:
            omitted.append(c.name)
        else:
            shown.append((c, t, rate))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(17, 6.5), gridspec_kw={"width_ratios": [1, 1.4]})
    colors = plt.get_cmap("tab20")

    for i, (c, t, rate) in enumerate(shown):
        speed = throughput(t.raw_bytes, t.compress_s)
        label = c.name if t.complete else f"{c.name} ({t.files_ok}/{t.files_total} files)"
        ax1.scatter([speed], [rate], color=colors(i % 20), s=110 if c.kind == "lm" else 60,
                    marker=_MARKERS.get(c.kind, "D"), label=label, zorder=3, edgecolors="black", linewidths=0.4)
    ax1.set_xscale("log")
    ax1.set_xlabel("compression throughput (raw bytes/s, log scale)")
    ax1.set_ylabel("compression rate, all files (% of raw, lower is better)")
    ax1.set_title("Rate vs speed (o classical, * LM, ^ v image/audio, s command line)", fontsize=10)
    ax1.grid(True, which="both", alpha=0.3)

    width = 0.8 / max(1, len(shown))
    for i, (c, _, _) in enumerate(shown):
        xs, ys = [], []
        for j, g in enumerate(modalities):
            t = by_group[g][c.name].whole
            if t.files_ok:
                xs.append(j - 0.4 + width * (i + 0.5))
                ys.append(rate_pct(t.compressed_bytes, t.raw_bytes))
        ax2.bar(xs, ys, width=width, color=colors(i % 20), label=c.name)
    ax2.set_xticks(range(len(modalities)), modalities)
    ax2.set_ylabel("compression rate (% of raw, lower is better)")
    ax2.set_title("Rate per modality, whole files (no bar: declined or failed)", fontsize=10)
    ax2.grid(True, axis="y", alpha=0.3)
    if shown:
        ax1.legend(fontsize=7, ncol=2)
        ax2.legend(fontsize=7, ncol=2)
    title = f"lmar bench, {run.created_utc}" + ("" if run.complete else " (interrupted)")
    if omitted:
        title += f"; not shown (no compression or no result): {', '.join(omitted)}"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(run: BenchRun, json_path: str | None, md_path: str | None, plot_path: str | None) -> list[str]:
    """Write each requested file; returns the paths written."""
    written = []
    for target, writer in ((json_path, write_json), (md_path, write_markdown), (plot_path, write_plot)):
        if target:
            writer(run, target)
            written.append(target)
    return written

