"""Who is measured: the registry's codecs (never imported directly) and command-line compressors on PATH.

Why external tools: they anchor the figures to compressors readers already know. Why the registry only:
the benchmark measures exactly the codecs the archiver chooses from, plugins included.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from ..errors import CodecError, LmarError
from ..registry import Registry
from ..walk import Skipped
from .measure import Coder

#: Codec kinds that only understand one kind of data; their refusals are expected, not failures.
DOMAIN_KINDS = frozenset({"image", "audio"})
#: Order of kinds in reports: the classical references first, then the contenders they are measured against.
_KIND_ORDER = {"classical": 0, "lm": 1, "image": 2, "audio": 3}


@dataclass(frozen=True)
class Contender:
    """One codec to measure. ``factory`` builds the coder once, lazily (LM codecs load a model)."""

    name: str
    kind: str
    source: str  # "registry" or "external"
    description: str
    version: int | None
    #: Size of the model a decoder must own; counted by the adjusted rate (Deletang et al. 2023).
    model_bytes: int | None
    #: Independent blocks the archiver would cut a file into for this codec (None: one stream per file).
    block_size: int | None
    factory: Callable[[], Coder] = field(repr=False, compare=False)
    #: The codec's ``info()`` facts (model id, checksum...), JSON-safe; part of its identity for ``--reuse``.
    info: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ExternalTool:
    """A command-line compressor used as a baseline, driven through stdin/stdout.

    ``-T1`` keeps xz and zstd single-threaded so their speed compares with the in-process codecs;
    ``size_hint`` passes the input size to zstd, which otherwise sizes its window for an unbounded stream
    (at ``--ultra -22`` that costs most of a second per call) and codes differently from ``zstd FILE``.
    """

    name: str
    program: str
    level_args: tuple[str, ...]
    decompress_args: tuple[str, ...] = ("-d", "-c")
    size_hint: bool = False

    @property
    def label(self) -> str:
        return " ".join((self.program, *self.level_args))


EXTERNAL_TOOLS: tuple[ExternalTool, ...] = (
    ExternalTool("ext:xz", "xz", ("-9e", "-T1")),
    ExternalTool("ext:zstd", "zstd", ("--ultra", "-22", "-T1"), ("-d", "-c", "-q"), size_hint=True),
    ExternalTool("ext:brotli", "brotli", ("-q", "11")),
    ExternalTool("ext:bzip2", "bzip2", ("-9",)),
    ExternalTool("ext:gzip", "gzip", ("-9", "-n")),
)


class ExternalCoder:
    """Runs an :class:`ExternalTool` once per call; process start-up is part of its measured time."""

    def __init__(self, tool: ExternalTool, executable: str) -> None:
        self.tool = tool
        self.executable = executable

    def accepts(self, data: bytes) -> bool:
        return True

    def compress(self, data: bytes) -> bytes:
        argv = [self.executable, *self.tool.level_args, "-c"]
        if self.tool.size_hint:
            argv.append(f"--stream-size={len(data)}")
        return self._run(argv, data)

    def decompress(self, payload: bytes, size: int) -> bytes:
        return self._run([self.executable, *self.tool.decompress_args], payload)

    def _run(self, argv: list[str], data: bytes) -> bytes:
        proc = subprocess.run(argv, input=data, capture_output=True, check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise CodecError(f"{self.tool.program} exited with {proc.returncode}: {err[-1] if err else 'no message'}")
        return proc.stdout


def _model_bytes(info: dict) -> int | None:
    value = info.get("model_bytes")
    return int(value) if isinstance(value, (int, float)) and value >= 0 else None


def discover_contenders(
    registry: Registry,
    selected: Sequence[str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    external: Sequence[ExternalTool] = EXTERNAL_TOOLS,
) -> tuple[list[Contender], list[Skipped]]:
    """Every codec that can run here (or the ``selected`` ones), plus what could not and why.

    Raises :class:`LmarError` for a selected name that is neither a registry codec nor an external tool,
    so a typo fails before a long run instead of quietly measuring less.
    """
    wanted = list(dict.fromkeys(selected)) if selected else None
    known = set(registry.codecs) | {t.name for t in external}
    unknown = [n for n in wanted or () if n not in known]
    if unknown:
        raise LmarError(
            f"unknown codec(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}")

    contenders: list[Contender] = []
    skipped: list[Skipped] = [
        Skipped(f"plugin {f.plugin}", f"failed to load: {f.error}") for f in registry.failures]
    for name, cls in registry.codecs.items():
        if wanted is not None and name not in wanted:
            continue
        ok, why = cls.availability()
        if not ok:
            skipped.append(Skipped(name, f"unavailable: {why}"))
            continue
        try:
            info = json.loads(json.dumps(cls.info(), default=str))
        except Exception as exc:  # a codec's metadata bug must not hide its measurements
            info = {}
            skipped.append(Skipped(f"{name} (info)", f"info() raised {type(exc).__name__}: {exc}"))
        contenders.append(Contender(
            name=name, kind=cls.kind, source="registry", description=cls.description, version=cls.version,
            model_bytes=_model_bytes(info), block_size=cls.block_size if cls.block_size > 0 else None,
            factory=lambda _n=name: registry.create(_n), info=info))
    contenders.sort(key=lambda c: (_KIND_ORDER.get(c.kind, len(_KIND_ORDER)), c.name))

    for tool in external:
        if wanted is not None and tool.name not in wanted:
            continue
        exe = which(tool.program)
        if exe is None:
            skipped.append(Skipped(tool.name, f"'{tool.program}' not found on PATH"))
            continue
        contenders.append(Contender(
            name=tool.name, kind="external", source="external", description=f"{tool.label} (command line)",
            version=None, model_bytes=None, block_size=None,
            factory=lambda _t=tool, _e=exe: ExternalCoder(_t, _e)))
    return contenders, skipped
