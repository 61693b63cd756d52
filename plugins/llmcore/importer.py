"""The import pipeline behind ``lmar model import``: source -> step graph -> checks -> card -> store.

Steps: resolve the source (:mod:`.sources`), load it with transformers, keep its tokenizer, export the
KV-cache step graph (:mod:`.export`), check it against the source model (:mod:`.checks`), optionally
quantise and check again, then hash it and install it under its id (:mod:`.store`).

Why a callback for progress: the pipeline is a library call (tests and tools run it silently); what the
user sees, a spinner or nothing, belongs to the command (:mod:`.commands`). Each step's name is passed to
``progress`` as it starts; nothing here prints.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from lmar.errors import LmarError

from . import checks, sources, store
from .store import DEFAULT_CONTEXT, ONNX, TOKENIZER, sha256_file

#: called with each step's description as the step starts
Progress = Callable[[str], None]


def _silent(step: str) -> None:
    pass


def import_model(source: str, name: str | None = None, context: int = DEFAULT_CONTEXT, license: str | None = None,
                 quantize: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Fetch/load ``source``, export the step graph, check it against the source model, store it.

    ``quantize="int8"`` stores the int8-weight graph instead (codec name suffixed ``-int8``, its own id).
    Returns the stored card (with ``path``); a model already in the store under the same id is returned
    as it is.
    """
    from . import export
    from . import quantize as quant

    if quantize is not None and quantize not in quant.SCHEMES:
        raise LmarError(f"unknown quantisation '{quantize}' (known: {', '.join(quant.SCHEMES)})")
    log = progress or _silent
    with store.staging() as work:
        res = sources.resolve(source, work, log)
        model, hf_tok = export.load_hf_model(res.model_dir, res.gguf_file, log)
        shape = export.Shape.from_config(model.config)
        out = work / "out"
        out.mkdir()
        tok = _save_tokenizer(hf_tok, out, shape.vocab_size, log)
        log(f"exporting ONNX step graph ({shape.layers} layers, fp32)")
        export.export_onnx(model, shape, out / ONNX)
        log("checking the ONNX graph against the source model")
        diff = checks.check_export(model, shape, tok, out / ONNX)
        extra: dict[str, Any] = {}
        if quantize:
            log(f"quantising the weights ({quantize})")
            fp32_id = sha256_file(out / ONNX)
            quant.quantize(out / ONNX, work / "quantized.onnx", quantize)
            os.replace(work / "quantized.onnx", out / ONNX)
            log("checking the quantised graph against the source model")
            qdiff, kl = checks.check_quantized(model, shape, tok, out / ONNX)
            extra = {"quantization": quant.SCHEMES[quantize], "quantized_from": fp32_id,
                     "quantized_max_abs_logit_diff": qdiff, "quantized_kl_nats": kl}
        log("hashing")
        model_id = sha256_file(out / ONNX)
        codec_name = "llm-" + (name or res.name) + (f"-{quantize}" if quantize else "")
        for other in store.list_cards():
            if other["id"] == model_id:
                return other
            if other.get("codec_name") == codec_name:
                raise LmarError(f"codec name {codec_name} is taken by model {other['id'][:12]}; pass --name")
        card = {
            "id": model_id, "codec_name": codec_name, "source": res.source,
            "import_source": str(Path(source).expanduser().resolve()) if Path(source).expanduser().exists() else source,
            "license": license or res.license, "architecture": "llama",
            "parameters": export.count_parameters(model), "vocab_size": shape.vocab_size,
            "context_length": min(int(context), shape.max_position), "max_position": shape.max_position,
            "layers": shape.layers, "heads": shape.heads, "kv_heads": shape.kv_heads, "head_dim": shape.head_dim,
            "hidden": shape.hidden, "rope_theta": shape.rope_theta,
            "start_id": tok.start_id, "escape_id": tok.escape_id, "escaped_bytes": len(tok.missing_bytes()),
            "onnx_bytes": (out / ONNX).stat().st_size, "tokenizer_sha256": sha256_file(out / TOKENIZER),
            "export_max_abs_logit_diff": float(diff), **extra, "conversion": export.conversion_versions(),
            "imported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        card = store.install(out, card)
        log(f"stored {codec_name} ({model_id[:12]})")
    return card


def _save_tokenizer(hf_tok: Any, out: Path, vocab_size: int, log: Progress) -> Any:
    """Keep the model's ``tokenizer.json`` in ``out`` and load it as the lossless :class:`ByteBPE`."""
    from .tokenizer import ByteBPE

    log("saving tokenizer")
    hf_tok.save_pretrained(str(out / "hf-tokenizer"))
    tj = out / "hf-tokenizer" / TOKENIZER
    if not tj.is_file():
        raise LmarError("the model's tokenizer has no tokenizer.json (only byte-level BPE fast tokenizers work)")
    shutil.copy(tj, out / TOKENIZER)
    shutil.rmtree(out / "hf-tokenizer")
    return ByteBPE.from_file(out / TOKENIZER, vocab_size)
