"""PPMd must never commit a payload it cannot decode (pyppmd stops early on some inputs)."""
from __future__ import annotations

import os
import subprocess
import sys
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


def test_stream_shorter_than_its_claimed_size_does_not_corrupt_memory() -> None:
    """pyppmd 1.3's decoder thread corrupts the heap when it runs out of input, and the process aborts
    later, in free (a hostile header claims more bytes than the stream holds). Run in a child process
    with glibc's heap checks on, so a regression fails this test instead of killing the suite."""
    child = r"""
import random
from lmar.errors import LmarError
from lmar.registry import get_registry
c = get_registry().create("ppmd", None)
rnd = random.Random(1)
for i in range(300):
    payload = c.compress(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 600))))
    if i % 2:
        payload = bytes(b ^ 0x20 for b in payload)
    try:
        c.decompress(payload, rnd.randint(1, 5000))
    except LmarError:
        pass
import gc
gc.collect()
print("ok")
"""
    env = {**os.environ, "MALLOC_CHECK_": "3"}
    r = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stdout[-300:], r.stderr[-300:])
