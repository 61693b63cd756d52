"""The local executor with workers: a process pool on this machine (see :mod:`lmar.executors`).

A module of its own so that ``multiprocessing`` and ``concurrent.futures.process`` (~40 ms to import) load
only when a command actually starts workers.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor


class LocalPool(ProcessPoolExecutor):
    """A process pool on this machine; workers read large files by path themselves."""

    reads_paths = True

    def __init__(self, workers: int) -> None:
        # spawn: no inherited threads or half-initialised runtimes (progress bars, ONNX Runtime) in workers.
        super().__init__(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        self.workers = workers
