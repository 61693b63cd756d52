"""Writing format 2 archives: groups planned by :mod:`grouping`, coded by :mod:`pipeline`, framed by
:mod:`lmar.formats.container`.

Groups are coded in worker processes and written strictly in plan order, so the archive's bytes never
depend on the worker count. Small files travel to workers as bytes (a solid group's content); only
large files are read by path, block by block.
"""
from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import xxhash

from lmar.formats.container import ContainerWriter
from lmar.formats.member_table import Table, TableMember

from .errors import CodecError, LmarError
from .grouping import CHANGED, Group, GroupingOptions, plan_groups
from .members import FILE
from .executors import open_executor, window_has_room
from .pipeline import Plan, failed_plan, iter_blocks_of_large_file, plan_bytes, plan_input_size, submit_file
from .progress import NoProgress, Progress
from .registry import get_registry, machine_binding
from .selection import SelectOptions, small_file_classifier
from .walk import Skipped, Source, collect

_EMPTY_XXH64 = xxhash.xxh3_64_intdigest(b"")


def _task_bytes(group: Group) -> int:
    """Bytes a group holds while its task is in flight: a solid group's content (with its coded result), or
    what a large file's plan reads."""
    if group.data is not None:
        return 2 * len(group.data)
    if group.kind == "large":
        return plan_input_size(group.members[0].info.size)
    return 0


@dataclass
class CreateOptions:
    select: SelectOptions = field(default_factory=SelectOptions)
    #: Worker processes (0: all cores).
    jobs: int = 0
    excludes: list[str] = field(default_factory=list)
    #: Total seconds of compression the user allows; shared among groups by size.
    time_budget: float | None = None
    grouping: GroupingOptions = field(default_factory=GroupingOptions)
    #: Keep every candidate codec's trial size in the archive (``lmar list -l`` shows them).
    record_trials: bool = False
    #: Where tasks run: "local" (this machine's process pool) or "ray" (a Ray cluster; needs ``lmar[ray]``).
    executor: str = "local"
    #: The Ray cluster to join (default: ``RAY_ADDRESS``; neither: Ray starts on this machine).
    ray_address: str | None = None
    #: Record each member's owner (user and group, ids and names), as tar does; ``--no-owner`` turns it off.
    owners: bool = True


@dataclass
class MemberResult:
    """What happened to one path during create: shown by ``-v`` and ``--json``."""

    path: str
    type: str
    size: int = 0
    stored_size: int = 0
    codec: str | None = None
    candidates: dict[str, list[Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    group: int | None = None
    dedup_of: str | None = None
    #: The machines this member decodes on, when its codec's numerics bind it (float LLM graphs); "" for any.
    machine_bound: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.type, "size": self.size, "stored_size": self.stored_size,
                "codec": self.codec, "candidates": {k: {"size": v[0], "how": v[1]} for k, v in self.candidates.items()},
                "warnings": self.warnings, "error": self.error, "group": self.group, "dedup_of": self.dedup_of,
                "machine_bound": self.machine_bound or None}


class ArchiveWriter:
    """Writes an archive to a binary stream. Use ``lmar.open(path, "w")`` for the safe temp-file-and-rename."""

    def __init__(self, fileobj: Any, options: CreateOptions | None = None,
                 progress: Progress | None = None) -> None:
        self.options = options or CreateOptions()
        self.progress = progress or NoProgress()
        self._container = ContainerWriter(fileobj)
        self._closed = False

    def __enter__(self) -> "ArchiveWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.close()

    # -- trees -------------------------------------------------------------------------------------------
    def add(self, paths: Iterable[str], skip_real: Iterable[str] = ()) -> list[MemberResult]:
        """Add files and trees (stored under the names given, like tar); returns one result per path."""
        entries = list(collect(paths, self.options.excludes, skip_real))
        sources = [e for e in entries if isinstance(e, Source)]
        results = [MemberResult(e.path, "skipped", error=e.reason if e.is_error else None,
                                warnings=[] if e.is_error else [e.reason]) for e in entries if isinstance(e, Skipped)]
        total = sum(s.info.size for s in sources if s.info.isfile())
        executor = open_executor(self.options.executor, self._jobs_for(sources), self.options.ray_address)
        jobs = executor.workers
        self.progress.start(total, "compressing")
        registry = get_registry()
        select = self.options.select
        try:
            groups = plan_groups(sources, self.options.grouping, small_file_classifier(registry, select), select.level)
            results.extend(self._write_groups(groups, executor, jobs, total))
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            self.progress.stop()
        return results

    def _jobs_for(self, sources: list[Source]) -> int:
        """The worker count: 1 (coded in this process) when every file is below the solid limit and all of
        them fit one solid group. Why: that is one task, so a process pool buys no parallelism and costs its
        start-up (~0.4 s on 2 cores: spawning and importing per worker), more than ``tar | xz -9e`` takes on a
        1 MB tree. Only where work runs changes; the archive is the same for any worker count."""
        opts = self.options
        if opts.executor != "local" or opts.jobs == 1:
            return opts.jobs
        limit = opts.grouping.limit_at(opts.select.level)
        sizes = [s.info.size for s in sources if s.info.isfile()]
        if limit and all(n < limit for n in sizes) and sum(sizes) <= opts.grouping.size_at(opts.select.level):
            return 1
        return opts.jobs

    def _select_options(self, size: int, total: int) -> SelectOptions:
        sel = self.options.select
        if self.options.time_budget is None:
            return sel
        share = self.options.time_budget * (size / total if total else 1.0)
        return dataclasses.replace(sel, budget_s=share)  # every other field carried over, new ones included

    def _submit(self, group: Group, executor: Any, total: int) -> Any:
        if group.kind == "solid" and group.data is not None:
            return executor.submit(plan_bytes, group.data, len(group.data), self._select_options(len(group.data), total))
        if group.kind == "large":
            src = group.members[0]
            return submit_file(executor, src.fs_path, src.info.size, self._select_options(src.info.size, total))
        return None

    def _write_groups(self, groups: Iterator[Group], executor: Any, jobs: int, total: int) -> Iterator[MemberResult]:
        pending: deque[tuple[Group, Any, int]] = deque()
        in_flight = 0
        exhausted = False
        while True:
            while not exhausted and window_has_room(len(pending), in_flight, jobs):
                group = next(groups, None)
                if group is None:
                    exhausted = True
                    break
                cost = _task_bytes(group)
                pending.append((group, self._submit(group, executor, total), cost))
                in_flight += cost
            if not pending:
                return
            group, fut, cost = pending.popleft()
            in_flight -= cost
            for src, why in group.errors:
                self.progress.advance(src.info.size, src.info.path)
                yield MemberResult(src.info.path, src.info.type, error=why)
            if not group.members:
                continue
            plan = None
            if fut is not None:
                try:
                    plan = fut.result()
                except Exception as exc:  # a worker died: report it against the group's members
                    plan = failed_plan(f"{type(exc).__name__}: {exc}")
            yield from self._write_group(group, plan, executor, jobs)

    # -- one group ---------------------------------------------------------------------------------------
    def _table(self, group: Group, codec_id: int | None, plan: Plan | None) -> Table:
        first = self._container.members_written
        refd: dict[int, int] = {}
        for o in group.refs.values():
            refd[o] = refd.get(o, 0) + 1
        members = []
        for i, src in enumerate(group.members):
            info = src.info
            members.append(TableMember(info.path, info.type, info.mode, info.mtime_ns,
                                       info.size if info.type == FILE else 0, info.link,
                                       first + group.refs[i] if i in group.refs else None, refd.get(i, 0),
                                       info.owner if self.options.owners else None))
        trials = {}
        if plan is not None and self.options.record_trials:
            trials = {k: v[0] for k, v in plan.candidates.items() if v and isinstance(v[0], int)}
        return Table(self._container.next_group, codec_id, members, trials)

    def _write_group(self, group: Group, plan: Plan | None, executor: Any, jobs: int) -> Iterator[MemberResult]:
        members = group.members
        if plan is not None and plan.error:
            for src in members:
                self.progress.advance(src.info.size, src.info.path)
                yield MemberResult(src.info.path, src.info.type, error=plan.error)
            return
        codec_id = None
        if plan is not None:
            codec_id = self._container.descriptor({"name": plan.codec_name, "version": plan.version,
                                                   "params": plan.params, "provider": plan.provider,
                                                   "info": plan.info})
        warnings = list(plan.warnings) if plan is not None else []
        if group.kind == "large" and plan is not None and plan.blocks is not None:  # read whole by its plan
            warnings += _read_as_walked(group, plan.size, plan.xxh3_128)
        table = self._table(group, codec_id, plan)
        self._container.begin_group(table)
        stored = 0
        streamed = False
        hashes = dict(group.hashes)
        if plan is not None and plan.blocks is not None:
            for block in plan.blocks:
                self._container.block(block.raw_len, block.stored, block.raw_xxh64)
                stored += len(block.stored)
            if group.kind == "large":
                hashes[0] = plan.xxh3_64 if plan.xxh3_64 is not None else _EMPTY_XXH64
        elif plan is not None:  # a large file: read and coded block by block
            streamed = True
            stored, hashes[0], size, digest = self._stream_large(members[0], plan, executor, jobs)
            warnings += _read_as_walked(group, size, digest)
        file_hashes = []
        for i, m in enumerate(table.members):
            if m.kind == FILE:
                at = group.refs.get(i, i)
                file_hashes.append(hashes.get(at, _EMPTY_XXH64))
        self._container.end_group(file_hashes)
        yield from self._results(group, plan, stored, warnings, table.group, streamed)

    def _stream_large(self, src: Source, plan: Plan, executor: Any, jobs: int) -> tuple[int, int, int, bytes]:
        """(bytes stored, XXH3-64 and size of what was read, its XXH3-128)."""
        hasher = xxhash.xxh3_128()
        h64 = xxhash.xxh3_64()
        stored = size = 0
        try:
            for block in iter_blocks_of_large_file(executor, src.fs_path, plan, jobs,
                                                   self.options.select.verify, hasher, h64):
                self._container.block(block.raw_len, block.stored, block.raw_xxh64)
                stored += len(block.stored)
                size += block.raw_len
                self.progress.advance(block.raw_len, src.info.path)
        except OSError as exc:
            raise LmarError(f"{src.info.path}: read failed while archiving: {exc.strerror or exc}") from None
        except CodecError as exc:
            raise LmarError(f"{src.info.path}: {exc}") from None
        return stored, h64.intdigest(), size, hasher.digest()

    def _results(self, group: Group, plan: Plan | None, stored: int, warnings: list[str],
                 number: int, streamed: bool) -> Iterator[MemberResult]:
        data_members = [i for i, s in enumerate(group.members) if s.info.type == FILE and i not in group.refs]
        data_size = sum(group.members[i].info.size for i in data_members) or 1
        left = stored
        # one codec codes the whole group, so one answer serves every member
        bound = machine_binding(get_registry(), plan.codec_name, plan.info) if plan is not None else ""
        for i, src in enumerate(group.members):
            info = src.info
            r = MemberResult(info.path, info.type, size=info.size if info.type == FILE else 0, group=number)
            if plan is not None and info.type == FILE:
                r.codec = plan.codec_name
                r.candidates = plan.candidates
                r.machine_bound = bound
                if i in group.refs:
                    r.dedup_of = group.members[group.refs[i]].info.path
                else:
                    share = left if i == data_members[-1] else stored * info.size // data_size
                    r.stored_size = share
                    left -= share
            r.warnings = (warnings if i == 0 else []) + group.notes.get(i, [])
            if not (streamed and i == 0) and info.type == FILE and i not in group.refs:
                self.progress.advance(info.size, info.path)
            yield r

    # -- in-memory files ---------------------------------------------------------------------------------
    def addbytes(self, name: str, data: bytes, mode: int = 0o644, mtime_ns: int = 0) -> MemberResult:
        """Add an in-memory file as a group of its own (API convenience; selection runs in this process)."""
        from .members import MemberInfo

        plan = plan_bytes(data, len(data), self._select_options(len(data), len(data)))
        if plan.error:
            raise LmarError(f"{name}: {plan.error}")
        if plan.blocks is None:
            plan.blocks = []
        src = Source(MemberInfo(name, FILE, mode, mtime_ns, len(data)), "")
        group = Group("solid", [src], data, hashes={0: xxhash.xxh3_64_intdigest(data)})
        results = list(self._write_group(group, plan, None, 1))
        return results[0]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()


def _read_as_walked(group: Group, size: int, digest: bytes | None) -> list[str]:
    """[] when a large file read (by its plan, or streamed) at ``size`` bytes hashing to ``digest`` is what
    the walk and the duplicate search saw; else the warning, naming the copies already written as
    references to it. The member takes the size read."""
    src = group.members[0]
    if size == src.info.size and not (group.refs and digest != group.dup_digest):
        return []
    src.info.size = size
    copies = [m.info.path for i, m in enumerate(group.members) if i in group.refs]
    if not copies:
        return [CHANGED]
    return [CHANGED + f"; {len(copies)} file(s) that were identical to it ({', '.join(copies[:3])}"
            f"{' ...' if len(copies) > 3 else ''}) are stored as references and extract with its new content"]
