"""Core of the ``lm`` codec: a byte language model mixed with adaptive context statistics.

Split into small modules so each concern can be read (and trusted) on its own:

* :mod:`.model_files` finds the shipped ONNX model and proves it is the exact file a payload needs;
* :mod:`.runtime` owns the onnxruntime sessions and the numerics profile of this machine; :mod:`.intnet`
  is the numpy reference of the integer network (``bytegru-v3i``) and hands its outputs to the mixer;
* :mod:`.network` is what a block coder needs from a network, :mod:`.segments` plans a block's lockstep
  segments, :mod:`.fixedpoint` builds the integer lookup tables (squash/stretch/exp) portably,
  :mod:`.payload` frames a block's coded bytes (every scheme);
* the compiled schemes ``cm2``-``cm6``: :mod:`.mixer_step` is the compiled (numba) context mixer that
  codes one lockstep step of every segment per call, :mod:`.mixer_layout` each scheme's frozen table
  layout and rates, :mod:`.mixer_tables` the tables built from a layout, :mod:`.prior` the learnt tables
  a scheme may start from, :mod:`.bitcoder` the binary arithmetic coder, and :mod:`.block_coder` the
  block loop (network step, then compiled step) shared by encoder and decoder. New members use ``cm6``
  (cm4's layout started from the integer network's mixer prior); ``cm2``-``cm5`` only decode;
* :mod:`.legacy`: frozen decode-only schemes with their own code (``cm1``, lmar 0.1), imported only when
  such a member is decoded.
"""
