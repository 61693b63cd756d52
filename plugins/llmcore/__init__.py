"""Pretrained causal language models as lossless codecs.

Why a subpackage: importing a model (transformers, torch, ONNX export) and coding with it (ONNX Runtime,
the range coder) share a model store and a tokenizer but have very different dependencies. Nothing here
imports torch or transformers at module level, so the codec runs with only the base install.

- :mod:`.tokenizer` -- lossless byte-level BPE (any bytes, never special tokens, escape for the rest)
- :mod:`.export`    -- load a GGUF / Hugging Face model, export the KV-cache step graph to ONNX
- :mod:`.store`     -- the model store under ``$LMAR_HOME/models/<id>/`` and the import pipeline
- :mod:`.runtime`   -- ONNX Runtime session with a sliding-window KV cache over a batch of segments
- :mod:`.coding`    -- segments in lockstep through one range coder stream
- :mod:`.commands`  -- ``lmar model import|list|remove``
"""
