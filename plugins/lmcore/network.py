"""What the block coders need from a byte network, and what they feed a segment that has finished.

A neutral module: the live block coder (:mod:`.block_coder`) and tools that record or replay a network
(``tools/lm/tune_cm2.py``) share these two names without importing any scheme.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

#: Input fed for a segment that has finished (its outputs are never used). Part of every bitstream: a
#: float network's rows may depend on the other rows of their batch.
PAD_BYTE = 0


class Network(Protocol):
    """One step of a byte network over a batch of segments (:class:`.runtime.StepModel` is one)."""

    bos: int

    def zero_state(self, batch: int) -> np.ndarray: ...

    def step(self, prev: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
