"""What is measured: the files under the paths given, walked as ``create`` walks them (:mod:`lmar.walk`).

Why the archiver's walker: one exclude rule (:func:`lmar.walk.matches_any`) and one notion of what a file
is for every command, so ``lmar bench DIR --exclude PAT`` measures what ``lmar create`` would store.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import LmarError
from ..members import DIR, FILE
from ..walk import Skipped, Walker


@dataclass(frozen=True)
class BenchFile:
    """A file to measure. ``modality`` is its top-level folder under the path it was found through.

    ``name`` is the path relative to that given path (short, for tables); ``path`` is where to read it.
    """

    path: str
    name: str
    modality: str
    raw_bytes: int


def collect_files(paths: Sequence[str], excludes: Sequence[str] = ()) -> tuple[list[BenchFile], list[Skipped]]:
    """Regular files under ``paths`` in archive order (sorted walk), each once; raises for a missing path.

    A file's modality is its top-level folder under the directory given; a file with no such folder
    (given directly, or at the top of the directory) takes the name of the folder it lies in, so
    ``lmar bench corpus/text`` still reports a ``text`` modality. ``excludes`` are globs matched against
    the path relative to the directory given and against the file name. A path given is followed if it is
    a symbolic link; links inside a tree are not measured (``create`` stores them as links).
    """
    files: list[BenchFile] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise LmarError(f"{given}: no such file or directory")
        if root.is_dir():
            base, found = root.resolve().name, Walker(excludes).visit(given, "", follow=True)
        else:
            base, found = root.resolve().parent.name, Walker(excludes).visit(given, root.name, follow=True)
        for item in found:
            if isinstance(item, Skipped):
                skipped.append(item)
                continue
            if item.info.type != FILE:
                if item.info.type != DIR:
                    skipped.append(Skipped(item.fs_path, f"a {item.info.type}, not a regular file", is_error=False))
                continue
            real = os.path.realpath(item.fs_path)
            if real in seen:
                continue
            seen.add(real)
            rel = Path(item.info.path)
            modality = rel.parts[0] if len(rel.parts) > 1 else (base or "/")
            files.append(BenchFile(item.fs_path, rel.as_posix(), modality, item.info.size))
    return files, skipped
