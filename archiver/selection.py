"""Per-file codec choice by trial compression: cheap estimates on a sample, full trials for the finalists.

Every decision is a pure function of the bytes and the options (time budgets use each codec's declared
speed, never a stopwatch), so the same input and options always give a byte-identical archive. What a
codec is to selection, it declares (:class:`lmar.codec.Codec`: ``slow``, ``whole_files``, ``speed``); the
fallback and the incompressibility probe are the registry's choice (``fallback_rank``, ``probe_rank``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import xxhash

from .codec import Codec
from .errors import CodecError
from .registry import Registry

#: Seconds of compression allowed per MiB of input at each level (None: no limit).
#: The default lets the shipped LM codec (a few KB/s on 2 CPU cores) compete on every file up to a few MiB;
#: fast admits xz-class codecs (about the cost of ``tar | xz -9e``) now that small files share solid groups.
LEVEL_BUDGET = {"fast": 0.8, "default": 300.0, "max": None}
#: A file is budgeted as if it had at least this many bytes, so that an LM still competes on a tiny file at
#: the default level. Not at fast: there the budget admits only codecs about as fast as xz -9e, and with
#: the floor brotli (0.7 MB/s, ~50 ms on a 26 KB group) got a full trial on every small group.
LEVEL_BUDGET_FLOOR = {"fast": 1}
#: ...but never more than this many seconds for one file, so a large file does not stall the archive.
LEVEL_FILE_CAP = {"fast": 30.0, "default": 600.0, "max": None}
#: Levels that skip codecs declaring ``slow`` (language models).
NO_SLOW_LEVELS = frozenset({"fast"})
#: Files up to this size are read whole and their trials give the final payload directly.
WHOLE_LIMIT = 64 << 20
SAMPLE_PIECE = 64 << 10
SAMPLE_PIECES = 4
#: Smaller sample pieces per level. Fast codes only the best estimate in full, so its estimates are most
#: of what selection costs: on a 1 MB source tree, 256 KiB samples of six codecs (lzma -9e, PPMd with its
#: decode check...) cost about as much as the final payload. Pieces of 16 KiB still rank text codecs against
#: binary ones, which is the choice fast makes.
LEVEL_SAMPLE_PIECE = {"fast": 16 << 10}
FINALISTS = 3
#: Full trials per level: fast codes only the best estimate in full.
LEVEL_FINALISTS = {"fast": 1}
#: A finalist's estimate must be within this factor of the best one: full trials of slow codecs that
#: cannot win (an LM on an image, say) would cost minutes for nothing.
FINALIST_MARGIN = 1.10
#: Data whose probe ratio as a whole is under this fraction of its sample's also gets a full trial of a
#: long-window codec (:func:`_long_range_codec`). Measured whole/sample ratios at fast's 16 KiB pieces: the
#: benchmark trees' solid groups 0.49-1.04, a 32.9 MB tar of small files 0.50, the text corpus 0.60-1.00,
#: 9.3 MB of text repeated four times 0.20; so only data that mostly repeats itself gets the extra trial.
LONG_RANGE_GAIN = 0.35
#: A sample that the registry's probe (zstd level 1) cannot shrink below this ratio is treated as incompressible.
INCOMPRESSIBLE = 0.98


@dataclass
class SelectOptions:
    codec: str = "auto"
    candidates: list[str] | None = None
    level: str = "default"
    #: Seconds allowed for this file (overrides the level's per-MiB rate when set).
    budget_s: float | None = None
    verify: bool = True


@dataclass
class EncodedBlock:
    raw_len: int
    stored: bytes
    raw_xxh64: int


@dataclass
class Choice:
    codec: Codec
    candidates: dict[str, list[Any]] = field(default_factory=dict)
    #: The coded blocks when the trials already coded the whole file.
    blocks: list[EncodedBlock] | None = None
    warnings: list[str] = field(default_factory=list)


class VerifyError(CodecError):
    """Decoding a freshly coded block did not give the input back."""


def block_size_of(codec: Codec) -> int:
    from lmar.formats.limits import MAX_BLOCK

    return max(1, min(int(codec.block_size), MAX_BLOCK))


def encode_blocks(codec: Codec, data: bytes, verify: bool) -> list[EncodedBlock]:
    """Cut ``data`` into the codec's blocks and code each; with ``verify`` decode each and compare."""
    size = block_size_of(codec)
    view = memoryview(data)
    out = []
    for start in range(0, len(data), size):
        chunk = bytes(view[start:start + size])
        out.append(encode_block(codec, chunk, verify))
    return out


def encode_block(codec: Codec, chunk: bytes, verify: bool) -> EncodedBlock:
    try:
        stored = codec.compress(chunk)
    except CodecError:
        raise
    except Exception as exc:  # a codec bug must not crash the archiver
        raise CodecError(f"codec {codec.name} failed: {type(exc).__name__}: {exc}") from None
    if verify:
        try:
            back = codec.decompress(stored, len(chunk))
        except Exception as exc:
            raise VerifyError(f"codec {codec.name} could not decode its own output: {exc}") from None
        if back != chunk:
            raise VerifyError(f"codec {codec.name} decoded different bytes than it encoded")
    return EncodedBlock(len(chunk), stored, xxhash.xxh3_64_intdigest(chunk))


def sample_of(data: bytes, piece: int = SAMPLE_PIECE) -> bytes:
    """Up to SAMPLE_PIECES evenly spaced pieces: representative of the file, cheap to trial."""
    total = piece * SAMPLE_PIECES
    if len(data) <= total:
        return data
    step = (len(data) - piece) // (SAMPLE_PIECES - 1)
    return b"".join(data[i * step:i * step + piece] for i in range(SAMPLE_PIECES))


def _budget(opts: SelectOptions, size: int) -> float | None:
    if opts.budget_s is not None:
        return opts.budget_s
    rate = LEVEL_BUDGET.get(opts.level, LEVEL_BUDGET["default"])
    if rate is None:
        return None
    budget = rate * max(size, LEVEL_BUDGET_FLOOR.get(opts.level, 1 << 16)) / (1 << 20)
    cap = LEVEL_FILE_CAP.get(opts.level)
    return budget if cap is None else min(budget, cap)


def _incompressible(registry: Registry, data: bytes) -> bool:
    """The registry's probe cannot shrink ``data`` (never true without a probe codec)."""
    probe = registry.probe()
    return probe is not None and probe.probe_size(data) >= INCOMPRESSIBLE * len(data)


def _eligible(registry: Registry, opts: SelectOptions, size: int, probe: bytes,
              candidates: dict[str, list[Any]]) -> list[Codec]:
    names = sorted(opts.candidates) if opts.candidates else sorted(registry.codecs)
    no_slow = opts.level in NO_SLOW_LEVELS
    fallback = registry.fallback_name()
    budget = _budget(opts, size)
    chosen = []
    for name in names:
        cls = registry.codecs.get(name)
        if cls is None:
            candidates[name] = [None, "not installed"]
            continue
        if no_slow and cls.slow and name != fallback:  # before availability: an LM's loads its model
            continue
        ok, why = cls.availability()
        if not ok:
            candidates[name] = [None, f"unavailable: {why}"]
            continue
        if budget is not None and name != fallback and size / cls.speed > budget:
            candidates[name] = [None, "over time budget"]
            continue
        codec = cls()
        try:
            if not codec.accepts(probe):
                continue
        except Exception:
            continue
        chosen.append(codec)
    return chosen


def choose(registry: Registry, data: bytes, total_size: int, opts: SelectOptions) -> Choice:
    """Pick the codec for a file. ``data`` is the whole file when ``total_size <= WHOLE_LIMIT``."""
    whole = len(data) == total_size
    if opts.codec != "auto":
        return _forced(registry, data, total_size, opts)
    candidates: dict[str, list[Any]] = {}
    if total_size == 0:
        store = registry.fallback()
        return Choice(store, {store.name: [0, "empty"]}, [] if whole else None)
    sample = sample_of(data, LEVEL_SAMPLE_PIECE.get(opts.level, SAMPLE_PIECE))
    pool = _eligible(registry, opts, total_size, data if whole else sample, candidates)
    if not pool:
        pool = [registry.fallback()]
    # A sample the probe cannot shrink is stored, unless all we read (the whole, or a large file's first
    # WHOLE_LIMIT bytes) can be: copies of incompressible data further apart than the sample's pieces (a tar
    # holding one archive twice). The probe runs at hundreds of MB/s.
    if (not any(c.whole_files for c in pool) and _incompressible(registry, sample)
            and (len(sample) == len(data) or _incompressible(registry, data))):
        store = registry.fallback()
        candidates[store.name] = [total_size, "incompressible sample"]
        return Choice(store, candidates, encode_blocks(store, data, False) if whole else None)

    # Cheap estimates (or real trials on the sample when a codec offers no estimate).
    estimates: list[tuple[float, str, Codec]] = []
    trials: dict[str, list[EncodedBlock]] = {}
    warnings: list[str] = []
    sample_is_whole = whole and len(sample) == len(data)
    for codec in pool:
        try:
            # Whole-file codecs (images, audio) need the headers and all, so they always get a full trial.
            ratio = None if codec.whole_files else codec.estimate(sample)
            if ratio is None:
                if sample_is_whole or (whole and codec.whole_files):
                    trials[codec.name] = encode_blocks(codec, data, False)
                    ratio = sum(len(b.stored) for b in trials[codec.name]) / max(len(data), 1)
                else:
                    ratio = len(codec.compress(sample)) / max(len(sample), 1)
        except CodecError as exc:
            candidates[codec.name] = [None, f"failed: {exc}"]
            continue
        except Exception as exc:
            candidates[codec.name] = [None, f"failed: {type(exc).__name__}: {exc}"]
            continue
        estimates.append((ratio, codec.name, codec))
        how = "full" if codec.name in trials else "sample"
        candidates[codec.name] = [int(round(ratio * total_size)), how]
    if not estimates:
        store = registry.fallback()
        return Choice(store, candidates, encode_blocks(store, data, False) if whole else None)
    estimates.sort(key=lambda e: (e[0], e[1]))
    if not whole:
        # A large file is planned on its first WHOLE_LIMIT bytes and cannot be trialed: when they repeat
        # themselves far apart, the long-window codec is taken on the probe's word.
        far = _long_range_codec(registry, data, sample, estimates)
        winner = far if far is not None else estimates[0][2]
        return Choice(winner, candidates, None, warnings)

    # Full trials for the finalists, then the smallest one that verifies.
    best_ratio = estimates[0][0]
    finalists = estimates[:LEVEL_FINALISTS.get(opts.level, FINALISTS)]
    far = _long_range_codec(registry, data, sample, estimates)
    if far is not None and all(c is not far for _, _, c in finalists):
        finalists.append((0.0, far.name, far))  # its estimate on the pieces is blind to what it will find
    for ratio, name, codec in finalists:
        if ratio > best_ratio * FINALIST_MARGIN and name not in trials:
            continue
        if name not in trials:
            try:
                trials[name] = encode_blocks(codec, data, False)
            except Exception as exc:
                candidates[name] = [None, f"failed: {exc}"]
                continue
            candidates[name] = [sum(len(b.stored) for b in trials[name]), "full"]
    ranked = sorted(((sum(len(b.stored) for b in blocks), name) for name, blocks in trials.items()))
    by_name = {c.name: c for _, _, c in estimates}
    for size, name in ranked:
        codec = by_name[name]
        if opts.verify and codec.verify_by_default:
            try:
                _verify(codec, data, trials[name])
            except VerifyError as exc:
                warnings.append(f"{exc}; falling back to the next best codec")
                candidates[name] = [size, "failed verification"]
                continue
        return Choice(codec, candidates, trials[name], warnings)
    # Every full trial failed its verification (pyppmd mis-decodes about 1 input in 40): the next estimates,
    # in order, before falling back to storing (with one finalist, the fast level has no other trial).
    for _, name, codec in estimates:
        if name in trials:
            continue
        try:
            blocks = encode_blocks(codec, data, opts.verify and codec.verify_by_default)
        except Exception as exc:
            candidates[name] = [None, f"failed: {exc}"]
            continue
        candidates[name] = [sum(len(b.stored) for b in blocks), "full"]
        return Choice(codec, candidates, blocks, warnings)
    store = registry.fallback()
    return Choice(store, candidates, encode_blocks(store, data, False), warnings)


def _long_range_codec(registry: Registry, data: bytes, sample: bytes,
                      estimates: list[tuple[float, str, Codec]]) -> Codec | None:
    """When ``data`` repeats itself further apart than its sample's pieces, the best-estimated codec whose
    window (``Codec.window``) spans all of it (else the one with the longest window). The registry's probe
    (a long-window quick coder) tells: it shrinks the whole to under LONG_RANGE_GAIN of the ratio it gets on
    the sample. Estimates on the pieces cannot see such repeats (9.3 MB of text repeated four times: PPMd's
    estimate won; lzma's 64 MiB window codes the copies almost for free)."""
    probe = registry.probe()
    if probe is None or len(sample) >= len(data) or not sample:
        return None
    if probe.probe_size(data) / len(data) >= LONG_RANGE_GAIN * probe.probe_size(sample) / len(sample):
        return None
    windowed = [c for _, _, c in estimates if c.window]  # in estimate order
    spanning = [c for c in windowed if c.window >= len(data)]
    if spanning:
        return spanning[0]
    return max(windowed, key=lambda c: (c.window, c.name)) if windowed else None


def _verify(codec: Codec, data: bytes, blocks: list[EncodedBlock]) -> None:
    size = block_size_of(codec)
    for i, block in enumerate(blocks):
        chunk = data[i * size:i * size + block.raw_len]
        try:
            back = codec.decompress(block.stored, block.raw_len)
        except Exception as exc:
            raise VerifyError(f"codec {codec.name} could not decode its own output: {exc}") from None
        if back != chunk:
            raise VerifyError(f"codec {codec.name} decoded different bytes than it encoded")


#: Bytes that text hardly contains (controls other than tab, newline, form feed, carriage return, escape).
_CONTROL_BYTES = bytes([c for c in range(32) if c not in (9, 10, 12, 13, 27)] + [127])


def small_file_classifier(registry: Registry, opts: SelectOptions) -> Callable[[bytes], str]:
    """A function telling which pool a small file joins before solid grouping (see
    :func:`lmar.grouping.plan_groups`).

    "alone": a ``whole_files`` codec (image, audio) accepts it and would be considered, so it keeps a trial
    of its own; "solid": at most 1 % control bytes (text); "raw": the registry's probe cannot shrink it, so
    it is packed apart from compressible files; "binary": everything else, packed apart from text so each
    kind gets the codec that suits it. A forced codec codes every group, so all files are "solid".
    Which ``whole_files`` codecs could claim a file is decided here, once (names, availability, an instance
    each), not per file: that halves classifying (20,000 files: 0.35-0.40 s -> 0.17-0.20 s).
    """
    if opts.codec != "auto":
        return lambda data: "solid"
    no_slow = opts.level in NO_SLOW_LEVELS
    names = sorted(opts.candidates) if opts.candidates else sorted(registry.codecs)
    claimants: list[Codec] = []
    for name in names:
        cls = registry.codecs.get(name)
        if cls is None or not cls.whole_files or (no_slow and cls.slow):
            continue
        if not cls.availability()[0]:
            continue
        try:
            claimants.append(cls())
        except Exception:
            continue
    return lambda data: _classify(registry, data, claimants)


def _classify(registry: Registry, data: bytes, claimants: list[Codec]) -> str:
    for codec in claimants:
        try:
            if codec.accepts(data):
                return "alone"
        except Exception:
            continue
    probe = data[: 1 << 18]
    controls = len(probe) - len(probe.translate(None, _CONTROL_BYTES))  # one C pass, not one per byte value
    if controls <= 0.01 * len(probe):
        # Text: no need to try the probe codec (~1 ms a file, most of a small tree's classification).
        # Compressed or random data has ~11 % control bytes, so it never lands here.
        return "solid"
    if len(data) >= 512 and _incompressible(registry, probe):
        return "raw"
    return "binary"


def _forced(registry: Registry, data: bytes, total_size: int, opts: SelectOptions) -> Choice:
    whole = len(data) == total_size
    codec = registry.create(opts.codec)
    if data and not codec.accepts(data[: 1 << 20] if not whole else data):
        return _general_fallback(registry, data, total_size, opts, f"codec {opts.codec} does not accept this file")
    if not whole:
        return Choice(codec, {codec.name: [None, "forced"]})
    try:
        blocks = encode_blocks(codec, data, opts.verify and codec.verify_by_default)
    except VerifyError as exc:
        return _general_fallback(registry, data, total_size, opts, str(exc))
    return Choice(codec, {codec.name: [sum(len(b.stored) for b in blocks), "forced"]}, blocks)


def _general_fallback(registry: Registry, data: bytes, total_size: int, opts: SelectOptions, why: str) -> Choice:
    """The best other general-purpose codec (neither ``slow`` nor ``whole_files``), chosen as auto mode would,
    for a file the forced codec cannot code (or decode back) faithfully; a large file is judged on its sample."""
    general = [n for n, c in registry.codecs.items() if not c.slow and not c.whole_files and n != opts.codec]
    choice = choose(registry, data, total_size, replace(opts, codec="auto", candidates=general))  # keeps every other option
    choice.warnings.append(f"{why}; used {choice.codec.name} instead")
    return choice
