"""Core of the ``lm`` codec: a byte language model mixed with adaptive context statistics.

Split into small modules so each concern can be read (and trusted) on its own:

* :mod:`.model_files` finds the shipped ONNX model and proves it is the exact file a payload needs;
* :mod:`.runtime` owns the onnxruntime sessions and the numerics profile of this machine;
* :mod:`.fixedpoint` builds the integer lookup tables (squash/stretch/exp) in a platform-independent way;
* :mod:`.segments` plans the lockstep segments of a block;
* :mod:`.nnprob` turns model logits into integer distributions and bitwise node probabilities;
* :mod:`.counters`, :mod:`.match`, :mod:`.mixer` are the context-mixing pieces and :mod:`.predictor`
  assembles them;
* :mod:`.engine` drives model + predictor + range coder identically for encoding and decoding.
"""
