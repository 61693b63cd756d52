"""Core of the ``lm`` codec: a byte language model mixed with adaptive context statistics.

Split into small modules so each concern can be read (and trusted) on its own:

* :mod:`.model_files` finds the shipped ONNX model and proves it is the exact file a payload needs;
* :mod:`.runtime` owns the onnxruntime sessions and the numerics profile of this machine;
* :mod:`.fixedpoint` builds the integer lookup tables (squash/stretch/exp) in a platform-independent way;
* :mod:`.segments` plans the lockstep segments of a block;
* :mod:`.nnprob` turns model logits into integer distributions and bitwise node probabilities;
* scheme ``cm2`` (the default): :mod:`.cm2` is the compiled (numba) context mixer that codes one
  lockstep step of every segment per call, :mod:`.bitcoder` its binary arithmetic coder, and
  :mod:`.cm2_block` the block loop (network step, then compiled step) shared by encoder and decoder;
* scheme ``cm1`` (archives of lmar 0.1, still decoded): :mod:`.counters`, :mod:`.match`, :mod:`.mixer` are
  its numpy context-mixing pieces, :mod:`.predictor` assembles them, :mod:`.engine` drives model +
  predictor + range coder (:mod:`.coding`) identically for encoding and decoding;
* :mod:`.payload` frames a block's coded bytes for both schemes.
"""
