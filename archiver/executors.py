"""Where coding and decoding tasks run: in this process, a local process pool, or a Ray cluster.

Create, extract and test hand work to an executor through one small interface (``submit`` returning a
``concurrent.futures.Future``, ``shutdown``) and consume results strictly in submission order, so the
archive's bytes never depend on which executor ran or how many workers it had. Task functions are
module-level functions of the core that take bytes and options, never paths, whenever the executor's
workers cannot see this machine's files (``reads_paths`` is False): a Ray worker shares no file system.
Ray is imported only when asked for (``lmar[ray]`` is an optional extra).
"""
from __future__ import annotations

import os
from concurrent.futures import Future
from typing import Any, Callable, Protocol

from .errors import LmarError

EXECUTORS = ("local", "ray")
#: Bytes of task input (and, when decoding, output) the driver keeps in flight at most, besides one task:
#: a window of ``2 x workers`` tasks alone would hold 128 solid groups of 16 MiB on 64 workers.
IN_FLIGHT_BYTES = 1 << 30


def window_has_room(tasks: int, task_bytes: int, workers: int) -> bool:
    """Whether one more task may be submitted: up to ``2 x workers`` tasks (so no worker waits for the
    driver), and up to :data:`IN_FLIGHT_BYTES` of their bytes; one task is always allowed."""
    return tasks == 0 or (tasks < max(2, 2 * workers) and task_bytes < IN_FLIGHT_BYTES)


class Executor(Protocol):
    """What the pipelines need from a pool of workers."""

    #: How many tasks can run at once (sets the window of in-flight tasks).
    workers: int
    #: True when workers share this machine's files (a task may be handed a path instead of its bytes).
    reads_paths: bool

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future: ...

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None: ...


class InlineExecutor:
    """Runs tasks at submit time: ``-j 1`` needs no processes (and tracebacks stay readable)."""

    workers = 1
    reads_paths = True

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:  # re-raised by result(), like a real executor
            fut.set_exception(exc)
        # KeyboardInterrupt (Ctrl-C) propagates now: parked in a future it waited for the next task to finish.
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def open_executor(kind: str = "local", jobs: int = 0, address: str | None = None, **ray_options: Any) -> Any:
    """An executor of ``kind`` with ``jobs`` workers (0: all local cores, or all of the Ray cluster's CPUs).

    ``address`` is the Ray cluster's (default: ``RAY_ADDRESS``; neither: Ray starts on this machine)."""
    if kind == "local":
        jobs = jobs or default_jobs()
        if jobs <= 1:
            return InlineExecutor()
        from .local_pool import LocalPool  # multiprocessing costs ~40 ms to import: only when a pool is made

        return LocalPool(jobs)
    if kind == "ray":
        try:
            from .ray_executor import RayExecutor
        except ImportError as exc:
            raise LmarError(f"--executor ray needs Ray ({exc.name or exc} is not installed): "
                            f"pip install 'lmar[ray]'") from None
        return RayExecutor(jobs=jobs, address=address, **ray_options)
    raise LmarError(f"unknown executor {kind!r} (choose from {', '.join(EXECUTORS)})")
