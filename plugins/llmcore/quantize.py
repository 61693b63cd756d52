"""int8 weight quantisation of an exported step graph (ONNX Runtime dynamic quantisation).

Why: on a CPU the step is bound by the weight GEMMs once the batch is large; int8 weights make them ~1.7x
faster and the model file 2.6x smaller. Why *dynamic*: activations are quantised per call from their own
min/max, so no calibration data is needed and the result is a plain function of the inputs; encoder and
decoder run the same graph on the same batch, so they still agree bit for bit.

Why 7-bit weights (``reduce_range``): x86 CPUs without VNNI multiply u8 x s8 with ``vpmaddubsw``, which
saturates pairs of products at 16 bits; 7-bit weights keep every pair in range, so AVX2 and VNNI kernels
compute the same integers (the float parts still have to match, see the numerics profile).

The quantised graph is a different file, so it has its own model id and codec name (``...-int8``); the
fp32 model it came from keeps its id and keeps decoding its archives.
"""
from __future__ import annotations

from pathlib import Path

from lmar.errors import LmarError

#: name -> recorded description; the only scheme so far
SCHEMES = {"int8": "onnxruntime quantize_dynamic: MatMul weights int8 per output channel, 7-bit (reduce_range)"}


def quantize(src: Path, dst: Path, scheme: str = "int8") -> None:
    """Write the quantised version of the step graph ``src`` to ``dst``."""
    if scheme not in SCHEMES:
        raise LmarError(f"unknown quantisation '{scheme}' (known: {', '.join(SCHEMES)})")
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise LmarError(f"quantisation needs onnxruntime's quantization tools and onnx: {exc}") from None
    import logging

    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # it warns that no pre-processing was run; none is needed
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         op_types_to_quantize=["MatMul"])
    finally:
        logging.getLogger().setLevel(quiet)
