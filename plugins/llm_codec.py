"""Pretrained causal language models as codecs (``llm-<model>``) and the ``lmar model`` commands.

The work lives in :mod:`lmar.plugins.llmcore`; this module only wires it into lmar through the hooks, so
a missing model or library degrades to "codec unavailable", never to a broken archiver.
"""
from __future__ import annotations

import lmar


@lmar.hookimpl
def register_codecs(register):  # type: ignore[no-untyped-def]
    from lmar.plugins.llmcore.codec import codec_classes

    for cls in codec_classes():
        register(cls)


@lmar.hookimpl
def missing_codec_hint(name, params):  # type: ignore[no-untyped-def]
    from lmar.plugins.llmcore.codec import missing_hint

    return missing_hint(name, params)


@lmar.hookimpl
def register_commands(subparsers):  # type: ignore[no-untyped-def]
    from lmar.plugins.llmcore.commands import add_model_commands

    add_model_commands(subparsers)
