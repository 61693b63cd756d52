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
@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize("codec", ["ppmd", "auto"])
def test_ppmd_bad_decode_is_never_committed(tmp_path: Path, codec: str, verify: bool) -> None:
    """Not even with --no-verify (which is about language models): the codec checks its own stream."""
    out = tmp_path / "a.lmar"
    opts = CreateOptions(select=SelectOptions(codec=codec, candidates=["ppmd", "zstd", "store"] if codec == "auto"
                                              else None, verify=verify), jobs=1)
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


@pytest.mark.skipif(not WAV.exists(), reason="development corpus (../shared/corpus) not present")
@pytest.mark.parametrize("order", [6, 10])
def test_ppmd_refuses_an_input_it_cannot_round_trip(order: int) -> None:
    """The codec's own guarantee, whatever the archiver asks: a payload it returns decodes to the input.
    pyppmd 1.3 at order 6 cannot decode its stream of this WAV file, so compress must refuse it there."""
    import pyppmd

    from lmar.errors import CodecError
    from lmar.plugins.ppmd_codec import PpmdCodec

    data = WAV.read_bytes()
    enc = pyppmd.Ppmd7Encoder(order, 256 << 20)
    raw = enc.encode(data) + enc.flush(endmark=False)
    library_fails = PpmdCodec(order=order).decompress(raw, len(data)) != data
    codec = PpmdCodec(order=order)
    if library_fails:
        with pytest.raises(CodecError, match="cannot decode its own stream"):
            codec.compress(data)
    else:
        assert codec.decompress(codec.compress(data), len(data)) == data
    if order == 6:
        assert library_fails  # the known pyppmd 1.3 failure this guard exists for
