"""The pluggy hooks a plugin may implement.

A plugin is any module exposed through the ``lmar`` entry point group; it implements one or more of these
hooks with ``@lmar.hookimpl``. The built-in codecs in ``lmar.plugins`` use exactly this path. Every hook is
optional; ``register_codecs`` is the one a codec plugin needs.
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


@hookspec(firstresult=True)
def missing_codec_hint(name, params):  # type: ignore[no-untyped-def]
    """Explain a codec ``name`` this plugin would provide but does not here (e.g. ``llm-*`` with no model).

    ``params`` are what the member recorded. Return a short phrase ("it needs model 3f2a…; run `lmar model
    import SOURCE`") or ``None`` for a name that is not yours. The core never reads codec params itself, so
    this is how a message about a missing codec can name what to install.
    """
