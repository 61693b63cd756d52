"""Content hashes of model files: the identity archives record, cached so repeated codec instances stay cheap."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=16)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: Path | str) -> str:
    """sha256 (hex) of a file, cached per (path, mtime, size)."""
    st = Path(path).stat()
    return _sha256(str(path), st.st_mtime_ns, st.st_size)
