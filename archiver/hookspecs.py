"""The pluggy hooks a plugin may implement.

A plugin is any module exposed through the ``lmar`` entry point group; it implements one or more of these
hooks with ``@lmar.hookimpl``. The built-in codecs in ``lmar.plugins`` use exactly this path.
"""
from __future__ import annotations

import pluggy

PROJECT = "lmar"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_codecs(register):  # type: ignore[no-untyped-def]
    """Call ``register(CodecClass)`` for each :class:`lmar.codec.Codec` subclass the plugin provides."""


@hookspec
def register_commands(subparsers):  # type: ignore[no-untyped-def]
    """Add sub-commands to the ``lmar`` CLI (an ``argparse`` sub-parsers object).

    Each sub-parser must ``set_defaults(func=callable)``; the callable takes the parsed ``argparse.Namespace``
    and returns an exit code.
    """
