"""How long work reports progress without the archive layer knowing about screens."""
from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total_bytes: int, description: str) -> None: ...

    def advance(self, nbytes: int, current: str = "") -> None: ...

    def note(self, message: str) -> None: ...

    def stop(self) -> None: ...


class NoProgress:
    """The default: silent (library use, pipes, ``-q``)."""

    def start(self, total_bytes: int, description: str) -> None:
        pass

    def advance(self, nbytes: int, current: str = "") -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def stop(self) -> None:
        pass
