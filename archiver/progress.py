"""How long work reports progress without the archive layer knowing about screens."""
from __future__ import annotations

import sys
from typing import Protocol

from .printable import printable


class Progress(Protocol):
    #: Whether :meth:`start` uses ``total_bytes``. Extraction gets the total by reading every member table
    #: once more (~30 us a member), which a display that shows no total need not cost. Optional: a
    #: progress object without it is given the total.
    shows_total: bool

    def start(self, total_bytes: int, description: str) -> None: ...

    def advance(self, nbytes: int, current: str = "") -> None: ...

    def note(self, message: str) -> None: ...

    def stop(self) -> None: ...


class NoProgress:
    """No bar (library use, pipes, ``-q``); notes still reach stderr because they report failures."""

    shows_total = False

    def start(self, total_bytes: int, description: str) -> None:
        pass

    def advance(self, nbytes: int, current: str = "") -> None:
        pass

    def note(self, message: str) -> None:
        print(printable(message), file=sys.stderr, flush=True)

    def stop(self) -> None:
        pass
