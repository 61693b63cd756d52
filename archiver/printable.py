"""Names and messages made safe to print on one terminal line.

Why: a file name may hold a newline, a tab, an escape sequence or bytes that are not UTF-8 (which
``os.fsdecode`` turns into lone surrogates). Printed raw, a newline splits one error into two lines (a
script reading ``lmar: <path>: <reason>`` sees half of it), an escape sequence drives the terminal, and a
lone surrogate cannot be encoded at all. GNU tar and ``ls -b`` print such characters as C escapes; so
does lmar, in every message and listing line. JSON output is not affected (JSON escapes on its own).
"""
from __future__ import annotations

_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f", "\v": "\\v", "\a": "\\a"}


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _NAMED:
        return _NAMED[ch]
    if code < 0x20 or 0x7F <= code < 0xA0:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode keeps it (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:  # any other lone surrogate
        return f"\\u{code:04x}"
    return ch


def printable(text: str) -> str:
    """``text`` with control characters and undecodable bytes as backslash escapes (``new\\nline``,
    ``bad\\xff``); everything else, other scripts included, unchanged."""
    if text.isprintable():
        return text
    return "".join(_escape(ch) for ch in text)
