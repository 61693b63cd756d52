"""Media codecs vs the usual baselines, side by side, every round trip verified.

    python tools/bench_media.py [--corpus ../shared/corpus]

Images (``image/*.ppm``): raw, our ``image`` codec, PNG of the same pixels (Pillow, optimize=True),
``xz -9e``. Audio (``audio/*.wav``): raw, our ``audio`` codec, ``flac -8`` of the same file, ``xz -9e``.
Our payloads are decoded and compared byte for byte with the input (times are CPU seconds of this
process, all threads; wall time depends on machine load); PNG and FLAC outputs are decoded and
their pixels / samples compared too, so every column is a lossless size. Pillow and the ``flac`` command
are benchmark-only requirements.
"""
from __future__ import annotations

import argparse
import glob
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from lmar.plugins.audio_codec import AudioCodec
from lmar.plugins.image_codec import ImageCodec
from lmar.plugins.media import image_layout, wav


def xz_size(data: bytes) -> int:
    if shutil.which("xz"):
        return len(subprocess.run(["xz", "-9e", "-c"], input=data, capture_output=True, check=True).stdout)
    import lzma

    return len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))


def png_size(data: bytes) -> int:
    from PIL import Image

    pix, _ = image_layout.split(data, image_layout.find_layout(data))
    buf = io.BytesIO()
    Image.fromarray(pix).save(buf, "PNG", optimize=True)
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    assert np.array_equal(back, pix), "PNG round trip differs"
    return len(buf.getvalue())


def flac_size(path: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out, dec = os.path.join(tmp, "a.flac"), os.path.join(tmp, "a.wav")
        subprocess.run(["flac", "-8", "-s", "-f", "-o", out, path], check=True, capture_output=True)
        subprocess.run(["flac", "-d", "-s", "-f", "-o", dec, out], check=True, capture_output=True)
        a, b = open(path, "rb").read(), open(dec, "rb").read()
        xa, _ = wav.split(a, wav.parse_wav(a))
        xb, _ = wav.split(b, wav.parse_wav(b))
        assert np.array_equal(xa, xb), "FLAC round trip differs"
        return os.path.getsize(out)


def ours(codec, data: bytes) -> tuple[int, float, float]:  # type: ignore[no-untyped-def]
    """(payload size, compress CPU s, decompress CPU s); CPU time, as wall time swings with machine load."""
    t0 = time.process_time()
    payload = codec.compress(data)
    t1 = time.process_time()
    back = type(codec)().decompress(payload, len(data))
    t2 = time.process_time()
    if back != data:
        raise SystemExit("round trip FAILED: output differs from input")
    return len(payload), t1 - t0, t2 - t1


def table(title: str, base: str, files: list[str], codec, baseline):  # type: ignore[no-untyped-def]
    """Print one table; returns the totals (raw, ours, baseline, xz)."""
    print(f"\n{title}")
    print(f"{'file':28s} {'raw':>9s} {'ours':>9s} {base:>9s} {'xz -9e':>9s} {'ours/' + base:>10s} {'ours/xz':>8s}"
          f" {'enc cpu s':>9s} {'dec cpu s':>9s}")
    tot = [0, 0, 0, 0]
    for path in files:
        data = open(path, "rb").read()
        n, tc, td = ours(codec, data)
        b, x = baseline(path, data), xz_size(data)
        for i, v in enumerate((len(data), n, b, x)):
            tot[i] += v
        print(f"{os.path.basename(path):28s} {len(data):9d} {n:9d} {b:9d} {x:9d} {n / b:10.3f} {n / x:8.3f}"
              f" {tc:9.2f} {td:9.2f}")
    print(f"{'TOTAL':28s} {tot[0]:9d} {tot[1]:9d} {tot[2]:9d} {tot[3]:9d} {tot[1] / tot[2]:10.3f}"
          f" {tot[1] / tot[3]:8.3f}")
    return tot[0], tot[1], tot[2], tot[3]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--corpus", default=os.path.join(here, "..", "shared", "corpus"))
    args = ap.parse_args()
    images = sorted(glob.glob(os.path.join(args.corpus, "image", "*.ppm")))
    sounds = sorted(glob.glob(os.path.join(args.corpus, "audio", "*.wav")))
    ok = True
    if images:
        _, o, p, x = table("images (image codec vs PNG optimize=True vs xz -9e)", "png", images, ImageCodec(),
                           lambda path, data: png_size(data))
        ok &= o <= 0.85 * p and o < x
        print(f"target: >=15% smaller than PNG and smaller than xz: {'met' if o <= 0.85 * p and o < x else 'MISSED'}")
    if sounds:
        _, o, f, x = table("audio (audio codec vs flac -8 vs xz -9e)", "flac", sounds, AudioCodec(),
                           lambda path, data: flac_size(path))
        ok &= o < f and o < x
        print(f"target: smaller than flac -8 and xz -9e: {'met' if o < f and o < x else 'MISSED'}")
    print("\nall round trips byte-exact")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
