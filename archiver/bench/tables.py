"""The report's tables, built once as rows of :class:`Cell` and shown on the terminal (rich) or as Markdown.

Why one builder for both: the terminal and the Markdown file show the same tables, so they can never
disagree. The archival JSON and the plot are in :mod:`.outputs`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .contenders import DOMAIN_KINDS
from .measure import DECLINED, MISMATCH, SKIPPED, TIMEOUT, Measurement
from .results import ALL_GROUP, BenchRun, GroupSummary, Totals, adjusted_rate_pct, best_codec, bits_per_byte, rate_pct, throughput
from .run import FileResult

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


def best_in_group(run: BenchRun, group: dict[str, GroupSummary], chunked: bool) -> str | None:
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
    best = best_in_group(run, group, False) if group else None
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
    bests = {g: best_in_group(run, by_group[g], chunked) for g in groups}
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


def results_by_file(run: BenchRun) -> dict[str, dict[str, FileResult]]:
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
    by_file = results_by_file(run)
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
    return [f"{s.path}: {s.reason}" for s in run.skipped]


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

