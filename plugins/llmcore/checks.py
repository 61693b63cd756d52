"""Numeric checks of an exported step graph against the model it came from, before it enters the store.

Why check at import: an archive records the graph's sha256, and every later decode trusts that graph;
a conversion bug (a wrong rotary layout, a saturating int8 weight) would otherwise show up only as poor
compression, or not at all. The check runs the graph through the same :class:`WindowRunner` the codec
uses, on a short English sample, and compares with the source model's own logits.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lmar.errors import LmarError

#: an fp32 graph must agree with the source model to this many logit units (tiny models: ~1e-5)
EXPORT_MAX_DIFF = 1e-2
#: a quantised graph may cost at most this many extra nats per token on the check sample (KL divergence;
#: int8 SmolLM2: 0.07, with saturating 8-bit weights it codes 2.6x worse)
QUANT_MAX_KL = 0.25

SAMPLE = (b"The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times; "
          b"and then, as the rabbit ran into the hole, Alice followed it without a thought.")


def check_export(model: Any, shape: Any, tok: Any, onnx_path: Path) -> float:
    """Max |logit| difference between the fp32 step graph and the source model; raises past the limit."""
    diff = compare(model, shape, tok, onnx_path)[0]
    if not diff < EXPORT_MAX_DIFF:
        raise LmarError(f"exported graph disagrees with the source model (max |logit diff| {diff:.3g})")
    return diff


def check_quantized(model: Any, shape: Any, tok: Any, onnx_path: Path) -> tuple[float, float]:
    """(max |logit diff|, KL nats/token) of a quantised graph; raises when the KL is past the limit."""
    qdiff, kl = compare(model, shape, tok, onnx_path)
    if not kl < QUANT_MAX_KL:
        raise LmarError(f"quantised graph is too far from the source model (KL {kl:.3g} nats/token)")
    return qdiff, kl


def compare(model: Any, shape: Any, tok: Any, onnx_path: Path) -> tuple[float, float]:
    """(max |logit diff|, mean KL(source || graph) in nats per token) on a short English sample.

    Why KL for quantised graphs: int8 weights move single logits by several units without changing the
    distribution much; what coding pays is the KL divergence (extra nats per token).
    """
    import numpy as np

    from .export import reference_logits
    from .runtime import WindowRunner, session

    ids = [tok.start_id] + [i for i in tok.encode(SAMPLE) if i < tok.vocab_size][:40]
    ref = reference_logits(model, ids).astype(np.float64)
    runner = WindowRunner(session(onnx_path, cache=False), dataclasses.asdict(shape), batch=1, window=len(ids) + 1, sink=0)
    got = np.stack([runner.step(np.array([i]))[0] for i in ids]).astype(np.float64)

    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    lp, lq = log_softmax(ref), log_softmax(got)
    kl = float((np.exp(lp) * (lp - lq)).sum(axis=1).mean())
    return float(np.abs(got - ref).max()), kl
