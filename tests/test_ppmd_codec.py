"""PPMd must never commit a payload it cannot decode (pyppmd stops early on some inputs)."""
from __future__ import annotations

from pathlib import Path

import pytest

import lmar
from lmar.archive import CreateOptions
from lmar.selection import SelectOptions

WAV = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "audio" / "vosk_test.wav"


@pytest.mark.skipif(not WAV.exists(), reason="development corpus (../shared/corpus) not present")
@pytest.mark.parametrize("codec", ["ppmd", "auto"])
def test_ppmd_bad_decode_is_never_committed(tmp_path: Path, codec: str) -> None:
    out = tmp_path / "a.lmar"
    opts = CreateOptions(select=SelectOptions(codec=codec, candidates=["ppmd", "zstd", "store"] if codec == "auto"
                                              else None), jobs=1)
    with lmar.open(out, "w", options=opts) as ar:
        results = ar.add([str(WAV)])
    assert all(r.error is None for r in results)
    with lmar.open(out) as ar:
        (member,) = ar.getmembers()
        assert ar.read(member) == WAV.read_bytes()
