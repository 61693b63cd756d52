"""ONNX Runtime step session plus a sliding-window KV cache over a batch of segments.

Why the cache is written outside the graph: the step graph returns only the current token's keys/values,
and the runtime writes them into preallocated ``[L, B, K, W, D]`` buffers that the graph reads through IO
binding (host memory on the CPU provider, the provider's memory on CUDA: :mod:`.kv_cache`), so nothing of
size ``W`` is copied per step. The window keeps ``sink`` attention-sink slots (the first tokens of each
segment, which Llama-style models lean on) and a ring of ``W - sink`` recent tokens. Ring keys are rotated at their absolute positions
(only differences matter to RoPE); once the window slides, the sink keys are re-rotated each step so they
appear just before the oldest ring token, the layout seen in training.

Everything that decides a probability is computed the same way by encoder and decoder: same graph, same
batch shape, same float64 rotary angles, same numpy ops. Sessions, their cache and the CPU flags of the
numerics profile come from :mod:`lmar.plugins.ort_runtime` (shared with the byte model's ``lm`` codec).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from lmar.errors import CodecError

from .. import ort_runtime
from .kv_cache import DeviceCache, HostCache

_MASK_EMPTY = np.float32(-1e9)
_SESSIONS = ort_runtime.SessionCache()

#: CPU features that change which float kernels ONNX Runtime picks (and so its exact results); the order
#: is the order members record them in.
_FLAG_NAMES = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
               "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "neon", "asimd", "sve")


def cpu_flags() -> list[str]:
    """Which of :data:`_FLAG_NAMES` this CPU has (detected as the lm codec does: :func:`ort_runtime.cpu_flags`)."""
    return ort_runtime.cpu_flags(_FLAG_NAMES)


def numerics_profile() -> dict[str, Any]:
    """What determines the float results: provider, ORT and numpy versions, CPU architecture and flags.

    Always the CPU provider: the llm codecs have not been checked on CUDA, whose kernels differ.
    """
    return ort_runtime.machine_profile(ort_runtime.CPU, _FLAG_NAMES)


def _settings(threads: int | None) -> ort_runtime.SessionSettings:
    """ORT's default graph rewrites (the bitstreams written so far depend on them) and, unlike the byte
    model, several threads (``LMAR_LLM_THREADS``, default all cores): payloads do not depend on the
    thread count (tests/test_llm_codec.py checks 1 vs 2 threads on the int8 graph). Idle worker threads
    sleep instead of spinning (``LMAR_LLM_SPIN=1`` to spin): with other processes on the cores (lmar's
    own -j workers, or anything else) spinning threads steal the time the busy ones need (measured: 100
    vs 147 tokens/s at load 4 on 2 cores). Scheduling only; the results are the same."""
    return ort_runtime.SessionSettings(threads=threads or ort_runtime.env_threads("LMAR_LLM_THREADS"),
                                       spinning=os.environ.get("LMAR_LLM_SPIN", "0"), log_severity=3)


def session(onnx_path: Path, threads: int | None = None, cache: bool = True,
            provider: str = ort_runtime.CPU) -> Any:
    """An InferenceSession (CPU unless ``provider`` says otherwise: the codec itself only runs on the CPU,
    tools/llm/gpu_check.py on CUDA), cached per path, thread count and provider (loading ~500 MB of
    weights takes seconds)."""
    settings = _settings(threads)

    def make() -> Any:
        return ort_runtime.create_session(onnx_path, provider, settings, "model graph", CodecError)

    if not cache:
        return make()
    return _SESSIONS.get((str(onnx_path), threads, provider), make)


def forget_sessions() -> None:
    """Drop cached sessions (after a model is removed, or in tests)."""
    _SESSIONS.clear()


def rotary(positions: np.ndarray, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [len(positions), D] in float32, angles reduced modulo 2*pi in float64 (precise at any position)."""
    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    ang = np.mod(np.outer(positions.astype(np.float64), inv), 2.0 * np.pi)
    ang = np.concatenate([ang, ang], axis=-1)
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def _rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    rot = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return (x * cos + rot * sin).astype(np.float32)


class WindowRunner:
    """Runs the step graph for ``batch`` segments in lockstep with a ``window``-slot cache.

    ``grow``: start with a small cache and double it (up to ``window``) as the segments lengthen, instead
    of attending over ``window`` mostly-empty masked slots from the first token. Attention reads the whole
    cache every step, so this halves its cost on segments shorter than the window. The capacity is a
    function of the position only, so encoder and decoder run the same shapes; it changes the float
    results (another reduction length), which is why payload format 1 runs with ``grow=False``.

    ``device``: where the cache lives (:mod:`.kv_cache`): "cpu" keeps it in numpy arrays that ORT reads in
    place, "cuda" in the provider's memory; ``device_cache=True`` runs the device path on the CPU too
    (tests). The graph is fed through IO binding either way: token ids, cos/sin and the mask in, logits and
    the current token's keys/values out; the cache inputs are bound by pointer, never copied.
    A slot's write is deferred to the start of the next step (nothing reads the cache in between), so
    the new token's keys and the re-rotated sink keys go to the cache in one write.
    """

    #: first cache capacity when growing (slots)
    GROW_FROM = 32

    def __init__(self, sess: Any, shape: dict[str, Any], batch: int, window: int, sink: int = 4,
                 grow: bool = False, device: str = "cpu", device_cache: bool | None = None) -> None:
        if window < 2 or not 0 <= sink < window:
            raise CodecError(f"bad window {window} / sink {sink}")
        self.sess = sess
        self._made = (shape, device, device_cache)
        L, K, D = int(shape["layers"]), int(shape["kv_heads"]), int(shape["head_dim"])
        self.L, self.K, self.D, self.theta = L, K, D, float(shape["rope_theta"])
        self.B, self.W, self.S = batch, window, sink
        self.grow = grow
        cap = min(window, self.GROW_FROM) if grow else window
        if device_cache or (device_cache is None and device != "cpu"):
            provider = sess.get_providers()[0]
            self.cache: HostCache | DeviceCache = DeviceCache(L, batch, K, cap, D, device, provider)
        else:
            self.cache = HostCache(L, batch, K, cap, D)
        self.sink_raw = np.zeros((L, batch, K, max(sink, 1), D), np.float32)
        self.sink_v = np.zeros_like(self.sink_raw)
        self.mask = np.full((batch, cap), _MASK_EMPTY, np.float32)
        self.t = 0
        self.names = [f"past_{kv}_{i}" for i in range(L) for kv in ("k", "v")]
        self.binding = sess.io_binding()
        for out in ("logits", "new_k", "new_v"):
            self.binding.bind_output(out, "cpu")
        self._pending: tuple[int, np.ndarray, np.ndarray] | None = None

    @property
    def capacity(self) -> int:
        return self.cache.capacity

    def repeated(self, batch: int) -> "WindowRunner":
        """A runner for ``batch`` segments that each stand where this one-segment runner stands: its
        context (cache, sink keys, mask, position, the slot still to write) copied into every row.

        Why: payload format 3 runs the block's first tokens once, at batch 1, and starts every segment
        with them in its context (a segment's cold start costs the most bits). Encoder and decoder both
        prime at batch 1 and copy, so both see the same floats.
        """
        if self.B != 1:
            raise CodecError("only a one-segment runner can be repeated")
        shape, device, device_cache = self._made
        r = WindowRunner(self.sess, shape, batch, self.W, self.S, self.grow, device=device, device_cache=device_cache)
        if r.cache.capacity < self.cache.capacity:
            r.cache.grow(self.cache.capacity)
        k, v = self.cache.host()
        r.cache.write(np.arange(self.cache.capacity), np.repeat(k, batch, axis=1), np.repeat(v, batch, axis=1))
        r.mask = np.repeat(self.mask, batch, axis=0)
        r.sink_raw = np.repeat(self.sink_raw, batch, axis=1)
        r.sink_v = np.repeat(self.sink_v, batch, axis=1)
        r.t = self.t
        if self._pending is not None:
            slot, pk, pv = self._pending
            r._pending = (slot, np.repeat(pk, batch, axis=1), np.repeat(pv, batch, axis=1))
        return r

    def _ensure_capacity(self, t: int) -> None:
        """Double the cache until slot ``t`` fits (only while ``t < W``: slots fill in order until then)."""
        cap = self.cache.capacity
        if t < cap or cap >= self.W:
            return
        old = cap
        while cap <= t:
            cap = min(self.W, 2 * cap)
        self.cache.grow(cap)
        mask = np.full((self.B, cap), _MASK_EMPTY, np.float32)
        mask[:, :old] = self.mask
        self.mask = mask

    def _slot(self, t: int) -> int:
        if t < self.S:
            return t
        return self.S + (t - self.S) % (self.W - self.S)

    def _write_cache(self, t: int) -> None:
        """The previous step's slot and, once the window has slid, the sink keys re-placed just before the
        oldest ring entry (values unchanged), in one write."""
        slots, ks, vs = [], [], []
        if self._pending is not None:
            slot, k, v = self._pending
            slots.append(slot)
            ks.append(k[:, :, :, None, :])
            vs.append(v[:, :, :, None, :])
            self._pending = None
        if self.S and t > self.W:
            scos, ssin = rotary(np.arange(self.S) + (t - self.W), self.D, self.theta)
            slots.extend(range(self.S))
            ks.append(_rotate(self.sink_raw[:, :, :, : self.S, :], scos, ssin))
            vs.append(self.sink_v[:, :, :, : self.S, :])  # rewritten unchanged: one write holds k and v
        if not slots:
            return
        self.cache.write(np.array(slots), np.concatenate(ks, axis=3), np.concatenate(vs, axis=3))

    def step(self, input_ids: np.ndarray) -> np.ndarray:
        """Feed one token per segment (position ``self.t``); return logits [B, V] for the next token."""
        t = self.t
        if self.grow:
            self._ensure_capacity(t)
        self._write_cache(t)
        cos, sin = rotary(np.array([t]), self.D, self.theta)
        b = self.binding
        b.bind_cpu_input("input_ids", np.ascontiguousarray(input_ids, np.int64))
        b.bind_cpu_input("cos", np.repeat(cos, self.B, axis=0))
        b.bind_cpu_input("sin", np.repeat(sin, self.B, axis=0))
        b.bind_cpu_input("mask", self.mask)
        kp, vp = self.cache.pointers()
        layer = (self.B, self.K, self.cache.capacity, self.D)
        nbytes = 4 * self.B * self.K * self.cache.capacity * self.D
        for i in range(self.L):
            b.bind_input(self.names[2 * i], self.cache.device, 0, np.float32, layer, kp + i * nbytes)
            b.bind_input(self.names[2 * i + 1], self.cache.device, 0, np.float32, layer, vp + i * nbytes)
        self.sess.run_with_iobinding(b)
        logits, new_k, new_v = b.copy_outputs_to_cpu()
        slot = self._slot(t)
        if t < self.S:
            self.sink_raw[:, :, :, t, :] = new_k
            self.sink_v[:, :, :, t, :] = new_v
        self._pending = (slot, _rotate(new_k, cos[0], sin[0]), new_v)
        self.mask[:, slot] = 0.0
        self.t = t + 1
        return logits
