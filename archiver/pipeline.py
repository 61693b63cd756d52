"""The parallel part of ``create``: code members in worker processes, hand them back in archive order.

Small files are one task each (selection + coding); large files get their codec from a sample and are
then coded block by block. A bounded window of tasks keeps memory flat; results are consumed strictly in
submission order, so parallelism never changes the archive's bytes.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Iterator

import xxhash

from .errors import CodecError, LmarError
from .executors import window_has_room
from .registry import get_registry
from .selection import WHOLE_LIMIT, Choice, EncodedBlock, SelectOptions, block_size_of, choose, encode_block


@dataclass
class Plan:
    """A worker's answer for one file: the codec choice, and the coded blocks when the file was small."""

    codec_name: str
    params: dict[str, Any]
    version: int
    provider: str
    info: dict[str, Any]
    candidates: dict[str, list[Any]]
    blocks: list[EncodedBlock] | None
    size: int
    xxh3_128: bytes | None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    #: xxh3_64 of the content when it was coded whole (format 2 checks members by it).
    xxh3_64: int | None = None


def _read_file(path: str, limit: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(limit)


def plan_file(path: str, size: int, opts: SelectOptions) -> Plan:
    """Worker entry point: choose a codec for one file (and code it when it is small)."""
    try:
        data, total = _plan_input(path, size)
    except OSError as exc:
        return failed_plan(f"cannot read: {exc.strerror or exc}")
    return plan_bytes(data, total, opts)


def plan_input_size(size: int) -> int:
    """Bytes the plan of a file of ``size`` bytes reads (and holds while it is made)."""
    return min(size, WHOLE_LIMIT)


def _plan_input(path: str, size: int) -> tuple[bytes, int]:
    """What a file's plan is made from: the whole file, or its first WHOLE_LIMIT bytes as the sample of a
    larger one, and the file's total size."""
    data = _read_file(path, WHOLE_LIMIT + 1)
    if len(data) <= WHOLE_LIMIT:
        return data, len(data)
    return data[:WHOLE_LIMIT], max(size, len(data))


def plan_bytes(data: bytes, total: int, opts: SelectOptions) -> Plan:
    """Worker entry point: choose a codec for ``data`` (a solid group, or a sample of a large file when
    ``total`` is larger) and code it when it is whole. Bytes in, bytes out: no file system needed."""
    registry = get_registry()
    whole = len(data) == total
    try:
        choice: Choice = choose(registry, data, total, opts)
        codec = choice.codec
        return Plan(codec_name=codec.name, params=dict(codec.params), version=codec.version,
                    provider=registry.providers.get(codec.name, ""), info=codec.header_info(),
                    candidates=choice.candidates, blocks=choice.blocks, size=total,
                    xxh3_128=xxhash.xxh3_128_digest(data) if whole else None, warnings=choice.warnings,
                    xxh3_64=xxhash.xxh3_64_intdigest(data) if whole else None)
    except LmarError as exc:
        return failed_plan(str(exc))


def failed_plan(msg: str) -> Plan:
    return Plan(codec_name="", params={}, version=0, provider="", info={}, candidates={}, blocks=None, size=0,
                xxh3_128=None, error=msg)


def code_block(codec_name: str, params: dict[str, Any], chunk: bytes, verify: bool) -> EncodedBlock:
    """Worker entry point: code one block of a large file with an already chosen codec."""
    codec = get_registry().create(codec_name, params)
    return encode_block(codec, chunk, verify and codec.verify_by_default)


def submit_file(executor: Any, path: str, size: int, opts: SelectOptions) -> Future:
    """Plan a large file: by path where workers share this machine's files, else read here and ship its bytes
    (the same bytes ``plan_file`` would read, so the plan is the same)."""
    if executor.reads_paths:
        return executor.submit(plan_file, path, size, opts)
    try:
        data, total = _plan_input(path, size)
    except OSError as exc:
        done: Future = Future()
        done.set_result(failed_plan(f"cannot read: {exc.strerror or exc}"))
        return done
    return executor.submit(plan_bytes, data, total, opts)


def iter_blocks_of_large_file(executor: Any, path: str, plan: Plan, workers: int, verify: bool,
                              hasher: "xxhash.xxh3_128", h64: "xxhash.xxh3_64 | None" = None) -> Iterator[EncodedBlock]:
    """Read the file block by block in this process (hashing as we go) and code the blocks in workers
    (as many in flight as :func:`lmar.executors.window_has_room` allows)."""
    codec = get_registry().create(plan.codec_name, plan.params)
    size = block_size_of(codec)
    pending: deque[Future] = deque()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(size)
            if chunk:
                hasher.update(chunk)
                if h64 is not None:
                    h64.update(chunk)
                pending.append(executor.submit(code_block, plan.codec_name, plan.params, chunk, verify))
            # each block in flight holds its raw bytes and, once coded, about as many again
            while pending and (not chunk or not window_has_room(len(pending), 2 * size * len(pending), workers)):
                try:
                    yield pending.popleft().result()
                except CodecError:
                    raise
                except Exception as exc:
                    raise CodecError(f"coding failed: {type(exc).__name__}: {exc}") from None
            if not chunk:
                return
