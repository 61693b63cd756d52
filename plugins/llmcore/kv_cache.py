"""Where :class:`~.runtime.WindowRunner`'s KV cache lives, and how its slots are written.

The step graph reads the cache as ``past_k_<i>`` / ``past_v_<i>`` [B, K, C, D] per layer and returns only
the current token's keys/values; the runner rotates them on the host and writes them into a slot. Both
caches below keep keys and values as one ``[L, B, K, C, D]`` buffer each and bind every layer's input
*by pointer into that buffer* (ONNX Runtime IO binding), so a step never copies the cache to feed it:

- :class:`HostCache` (CPU provider): numpy arrays; ORT reads them in place, numpy writes the slots.
- :class:`DeviceCache` (CUDA, or any provider): OrtValues in the provider's memory; slots are written
  there by a small scatter graph (:mod:`.cache_graph`) into a second buffer, and the two swap. What still
  crosses to the device per step: the written slots (``[L, B, K, n, D]`` for keys and values, ``n`` = 1, or
  ``1 + sink`` once the window slides and the sink keys are re-rotated), token ids, rotary cos/sin and the
  mask; back: logits and the new keys/values. The cache itself never crosses: it is zeroed and grown
  (``ConstantOfShape``, ``Pad``) on the device too. The price of the scatter's second buffer: twice the
  cache's memory, and one device-side copy of the cache per step.

Both hold the same float32 values at every step (writes are copies of host-computed arrays), so the
graph sees the same inputs either way and payloads do not depend on which cache ran.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class HostCache:
    """Keys and values in host memory, read in place by the CPU provider."""

    device = "cpu"

    def __init__(self, L: int, B: int, K: int, cap: int, D: int) -> None:
        self.k = np.zeros((L, B, K, cap, D), np.float32)
        self.v = np.zeros((L, B, K, cap, D), np.float32)

    @property
    def capacity(self) -> int:
        return int(self.k.shape[3])

    def grow(self, cap: int) -> None:
        """Zero-padded to ``cap`` slots (masked until written)."""
        old = self.capacity
        for name in ("k", "v"):
            a = getattr(self, name)
            b = np.zeros(a.shape[:3] + (cap, a.shape[4]), np.float32)
            b[:, :, :, :old, :] = a
            setattr(self, name, b)

    def write(self, slots: np.ndarray, k_rows: np.ndarray, v_rows: np.ndarray) -> None:
        """Slots ``slots`` [n] := ``k_rows`` / ``v_rows`` [L, B, K, n, D]."""
        self.k[:, :, :, slots, :] = k_rows
        self.v[:, :, :, slots, :] = v_rows

    def pointers(self) -> tuple[int, int]:
        return int(self.k.ctypes.data), int(self.v.ctypes.data)

    def host(self) -> tuple[np.ndarray, np.ndarray]:
        return self.k, self.v


class DeviceCache:
    """Keys and values as OrtValues on ``device`` ("cuda", or "cpu" to run this path without a GPU)."""

    def __init__(self, L: int, B: int, K: int, cap: int, D: int, device: str, provider: str) -> None:
        from . import cache_graph
        from .. import ort_runtime

        self.device, self._ortvalue = device, ort_runtime.ort().OrtValue
        self._scatter = cache_graph.session(provider)
        self._zeros = cache_graph.session(provider, "zeros")
        self._pad = cache_graph.session(provider, "pad")
        self._shape = (L, B, K, cap, D)
        self.k, self.v = self._new(), self._new()
        for buf in (self.k, self.v):
            self._run(self._zeros, {"shape": np.array(self._shape, np.int64)}, buf, "zeros")
        self._spare: tuple[Any, Any] | None = None

    def _new(self) -> Any:
        """An uninitialised buffer of the current shape on the device."""
        return self._ortvalue.ortvalue_from_shape_and_type(list(self._shape), np.float32, self.device, 0)

    def _run(self, sess: Any, inputs: dict[str, Any], out: Any, out_name: str) -> None:
        b = sess.io_binding()
        for name, value in inputs.items():
            if isinstance(value, np.ndarray):
                b.bind_cpu_input(name, value)
            else:
                b.bind_ortvalue_input(name, value)
        b.bind_ortvalue_output(out_name, out)
        sess.run_with_iobinding(b)

    @property
    def capacity(self) -> int:
        return self._shape[3]

    def grow(self, cap: int) -> None:
        """Zero-padded to ``cap`` slots on the device (ONNX Pad), like :meth:`HostCache.grow`."""
        L, B, K, old, D = self._shape
        self._shape = (L, B, K, cap, D)
        pads = np.array([0, 0, 0, 0, 0, 0, 0, 0, cap - old, 0], np.int64)
        self._spare = None  # the old pair is dropped before the new one is made
        for name in ("k", "v"):
            out = self._new()
            self._run(self._pad, {"x": getattr(self, name), "pads": pads}, out, "out")
            setattr(self, name, out)

    def write(self, slots: np.ndarray, k_rows: np.ndarray, v_rows: np.ndarray) -> None:
        if self._spare is None:
            self._spare = (self._new(), self._new())
        b = self._scatter.io_binding()
        b.bind_ortvalue_input("k", self.k)
        b.bind_ortvalue_input("v", self.v)
        b.bind_cpu_input("k_upd", np.ascontiguousarray(k_rows, np.float32))
        b.bind_cpu_input("v_upd", np.ascontiguousarray(v_rows, np.float32))
        b.bind_cpu_input("slots", np.asarray(slots, np.int64))
        b.bind_ortvalue_output("k_out", self._spare[0])
        b.bind_ortvalue_output("v_out", self._spare[1])
        self._scatter.run_with_iobinding(b)
        (self.k, self.v), self._spare = self._spare, (self.k, self.v)

    def pointers(self) -> tuple[int, int]:
        return int(self.k.data_ptr()), int(self.v.data_ptr())

    def host(self) -> tuple[np.ndarray, np.ndarray]:
        """A host copy (tests, debugging)."""
        return self.k.numpy(), self.v.numpy()
