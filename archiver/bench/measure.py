"""One codec on some bytes: compress, decompress, compare, time; every failure becomes a result.

Why failures are results: a benchmark that drops a codec which crashed, refused or mis-decoded quietly
measures less than it says. :func:`measure` turns each of those into a :class:`Measurement` with its
reason, and keeps ``KeyboardInterrupt`` for the caller.
"""
from __future__ import annotations

import signal
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

OK, DECLINED, ERROR, MISMATCH, TIMEOUT = "ok", "declined", "error", "mismatch", "timeout"
#: Not measured on purpose (``--only``): neither the codec's refusal nor a failure.
SKIPPED = "skipped"


class Coder(Protocol):
    """What a measurement needs: the codec contract's coding half (``lmar.codec.Codec`` satisfies it)."""

    def accepts(self, data: bytes) -> bool: ...

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, payload: bytes, size: int) -> bytes: ...


@dataclass(frozen=True)
class Measurement:
    """One codec on one file, cut into ``pieces`` coded independently (sizes summed, times summed).

    ``raw_bytes`` is what was coded: the whole file, or the sampled chunks when chunks are sampled.
    """

    status: str  # ok | declined | error | mismatch | timeout | skipped
    reason: str = ""
    compressed_bytes: int | None = None
    #: Median over repeats of the total time for all pieces.
    compress_s: float | None = None
    decompress_s: float | None = None
    pieces: int = 0
    raw_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.status == OK


def split(data: bytes, size: int | None) -> list[bytes]:
    """Cut ``data`` into independent pieces of ``size`` bytes (the last may be shorter); at least one."""
    if not size or len(data) <= size:
        return [data]
    return [data[i:i + size] for i in range(0, len(data), size)]


def sample(pieces: list[bytes], limit: int | None) -> list[bytes]:
    """At most ``limit`` pieces, evenly spread from first to last, so every codec sees the same sample.

    Why: a codec that models one 2 kB chunk per call (no batching) may code only a few kB/s; sampling
    keeps the paper's chunked setting measurable on a whole corpus at the cost of an estimate.
    """
    if limit is None or len(pieces) <= limit:
        return pieces
    if limit == 1:
        return [pieces[len(pieces) // 2]]
    return [pieces[round(i * (len(pieces) - 1) / (limit - 1))] for i in range(limit)]


def _mismatch(expected: bytes, got: bytes) -> str:
    n = min(len(expected), len(got))
    first = next((i for i in range(n) if expected[i] != got[i]), n)
    return f"round trip differs: {len(got)} bytes back for {len(expected)}, first difference at byte {first}"


class _Timeout(Exception):
    pass


@contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`_Timeout` in this thread after ``seconds`` (SIGALRM; a no-op where that is unavailable).

    A Python-level codec (numpy loops, one model call per byte) is interrupted between calls; a single
    long C call finishes first. Subprocesses are killed by ``subprocess.run`` when the exception arrives.
    """
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def measure(coder: Coder, pieces: Sequence[bytes], repeat: int = 1, timeout: float | None = None) -> Measurement:
    """Compress and decompress every piece ``repeat`` times, checking each round trip byte for byte.

    A refusal, an exception, a mismatch or running past ``timeout`` seconds becomes the measurement's
    status with its reason: the benchmark reports failures, it never drops them. ``KeyboardInterrupt``
    passes through.
    """
    n, raw = len(pieces), sum(len(p) for p in pieces)
    try:
        with _deadline(timeout):
            return _measure(coder, pieces, repeat)
    except _Timeout:
        return Measurement(TIMEOUT, f"stopped after {timeout:g} s (--timeout)", pieces=n, raw_bytes=raw)
    except Exception as exc:  # any codec bug is a result to report, not a crash of the benchmark
        return Measurement(ERROR, f"{type(exc).__name__}: {exc}", pieces=n, raw_bytes=raw)


def _measure(coder: Coder, pieces: Sequence[bytes], repeat: int) -> Measurement:
    n, raw = len(pieces), sum(len(p) for p in pieces)
    for i, piece in enumerate(pieces):
        if not coder.accepts(piece):
            where = f" (piece {i + 1} of {n})" if n > 1 else ""
            return Measurement(DECLINED, f"accepts() returned False{where}", pieces=n, raw_bytes=raw)
    comp_times: list[float] = []
    decomp_times: list[float] = []
    size: int | None = None
    for _ in range(max(1, repeat)):
        total_size = 0
        t_comp = t_decomp = 0.0
        for piece in pieces:
            t0 = time.perf_counter()
            payload = coder.compress(piece)
            t1 = time.perf_counter()
            back = bytes(coder.decompress(payload, len(piece)))
            t2 = time.perf_counter()
            if back != piece:
                return Measurement(MISMATCH, _mismatch(piece, back), pieces=n, raw_bytes=raw)
            total_size += len(payload)
            t_comp += t1 - t0
            t_decomp += t2 - t1
        if size is not None and total_size != size:
            return Measurement(ERROR, f"compressed size changed between repeats ({size} then {total_size})",
                               pieces=n, raw_bytes=raw)
        size = total_size
        comp_times.append(t_comp)
        decomp_times.append(t_decomp)
    return Measurement(OK, "", size, statistics.median(comp_times), statistics.median(decomp_times), n, raw)
