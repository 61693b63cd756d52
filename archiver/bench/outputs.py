"""The report's files: JSON (the archival form, schema in docs/BENCHMARKS.md, versioned by
:data:`~lmar.bench.results.SCHEMA_VERSION`), Markdown, a PNG plot, and reading an earlier JSON for ``--reuse``.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import LmarError
from .contenders import Contender
from .measure import Measurement
from .results import ALL_GROUP, SCHEMA_VERSION, BenchRun, Totals, adjusted_rate_pct, bits_per_byte, rate_pct, throughput
from .run import REUSABLE_STATUSES, Reuse, Settings
from .tables import best_in_group, file_best, render_markdown, results_by_file


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
    by_file = results_by_file(run)
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
        "skipped": [{"name": s.path, "reason": s.reason} for s in run.skipped],
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
                     "best_codec": best_in_group(run, by_group[g], False),
                     "best_codec_chunked": best_in_group(run, by_group[g], True) if run.settings.chunk_size else None,
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

