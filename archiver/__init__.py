"""lmar: an archiver that compresses each file with whichever codec makes it smallest.

The public Python API lives in :mod:`lmar.archive` (``lmar.open``); codecs reach the core only through
:mod:`lmar.registry`.
"""
from __future__ import annotations

__version__ = "0.2.0"

from .errors import LmarError  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402

__all__ = ["__version__", "LmarError", "hookimpl", "open"]


def open(path, mode: str = "r", **kwargs):  # noqa: A001 - mirrors tarfile.open
    """Open an archive for reading (``"r"``) or writing (``"w"``); see :mod:`lmar.archive`."""
    from .archive import open_archive

    return open_archive(path, mode, **kwargs)
