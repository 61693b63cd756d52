"""Everything the CLI shows on a terminal: progress bars and messages on stderr (rich)."""
from __future__ import annotations

import sys
from typing import Any

from .printable import printable


def stderr_is_tty() -> bool:
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


class RichProgress:
    """A byte-counting progress bar on stderr; created only for a terminal and without ``-q``.

    The elapsed time ticks even while one long task (a solid block coded by a language model: minutes)
    advances nothing, so a slow run does not look hung."""

    shows_total = True

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn, TransferSpeedColumn)

        self._console = Console(stderr=True)
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                                  TextColumn("{task.fields[current]}", style="dim"),
                                  console=self._console, transient=True)
        self._task: Any = None

    def start(self, total_bytes: int, description: str) -> None:
        self._progress.start()
        self._task = self._progress.add_task(description, total=total_bytes or None, current="")

    def advance(self, nbytes: int, current: str = "") -> None:
        if self._task is not None:
            self._progress.update(self._task, advance=nbytes, current=printable(current[-40:]))

    def note(self, message: str) -> None:
        self._progress.console.print(printable(message), markup=False, highlight=False)

    def stop(self) -> None:
        self._progress.stop()


def make_progress(quiet: bool) -> Any:
    from .progress import NoProgress

    if quiet or not stderr_is_tty():
        return NoProgress()
    return RichProgress()


def error(message: str) -> None:
    print(f"lmar: {printable(message)}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(f"lmar: warning: {printable(message)}", file=sys.stderr, flush=True)


def note(message: str) -> None:
    """Information, not a problem (tar's "Removing leading '/' from member names"); ``-q`` silences it."""
    print(f"lmar: {printable(message)}", file=sys.stderr, flush=True)
