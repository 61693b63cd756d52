"""``lmar bench``: measure codecs on files: sizes, rates and speeds, every figure backed by a verified round trip.

Why a subpackage of its own: the archiver keeps only the winning codec per block, while a benchmark must run
*every* contender on the same bytes and keep failures as results, so a comparison never silently loses a
codec. Contenders are the registry's codecs (never imported directly) plus the classical command-line
compressors found on ``PATH``, which anchor the figures to tools readers already know.

One job per module: :mod:`.inputs` (files, walked as ``create`` walks them), :mod:`.contenders` (who is
measured), :mod:`.measure` (one coder on some bytes), :mod:`.run` (every contender on every file),
:mod:`.results` (totals, machine, the run), :mod:`.tables` (terminal and Markdown), :mod:`.outputs`
(JSON, plot, ``--reuse``), :mod:`.cli` (the sub-command). Names used from outside are re-exported here.
"""
from __future__ import annotations

from ..walk import Skipped
from .contenders import DOMAIN_KINDS, EXTERNAL_TOOLS, Contender, ExternalCoder, ExternalTool, discover_contenders
from .inputs import BenchFile, collect_files
from .measure import DECLINED, ERROR, MISMATCH, OK, SKIPPED, TIMEOUT, Coder, Measurement, measure, sample, split
from .results import (ALL_GROUP, SCHEMA_VERSION, BenchRun, GroupSummary, Machine, Totals, adjusted_rate_pct,
                      best_codec, bits_per_byte, command_line, describe_machine, rate_pct, summarize, throughput)
from .run import REUSABLE_STATUSES, FileResult, Reuse, Settings, interleave, iter_results

__all__ = [
    "ALL_GROUP", "DECLINED", "DOMAIN_KINDS", "ERROR", "EXTERNAL_TOOLS", "MISMATCH", "OK", "REUSABLE_STATUSES",
    "SCHEMA_VERSION", "SKIPPED", "TIMEOUT", "BenchFile", "BenchRun", "Coder", "Contender", "ExternalCoder",
    "ExternalTool", "FileResult", "GroupSummary", "Machine", "Measurement", "Reuse", "Settings", "Skipped",
    "Totals", "adjusted_rate_pct", "best_codec", "bits_per_byte", "collect_files", "command_line",
    "describe_machine", "discover_contenders", "interleave", "iter_results", "measure", "rate_pct", "sample",
    "split", "summarize", "throughput",
]
