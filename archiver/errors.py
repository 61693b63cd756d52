"""Exceptions that reach the user as a one-line message instead of a traceback."""
from __future__ import annotations


class LmarError(Exception):
    """Any failure the user can act on; the CLI prints ``lmar: <message>`` and exits non-zero."""


class FormatError(LmarError):
    """The archive bytes are not a valid lmar archive (corrupt, truncated or hostile)."""


class CodecError(LmarError):
    """A codec failed to compress or decompress, or refused its input."""


class CodecUnavailable(CodecError):
    """The codec an archive member needs is not installed or cannot run here (e.g. its model is missing)."""


class ChecksumError(LmarError):
    """Decoded bytes do not match the checksum recorded when the member was written."""


class UnsafeMemberError(LmarError):
    """A member would escape the extraction directory or create something unsafe (device, setuid...)."""
