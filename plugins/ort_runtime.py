"""ONNX Runtime for the LM codecs (``lm`` and ``llm-*``): CPU flags, execution provider, sessions, their cache.

Why one module: both codecs need bit-identical float results at encode and decode, so both pin the same
kinds of session settings and record the same kind of numerics profile (what cannot be pinned: ORT and
numpy versions, CPU architecture and SIMD flags, provider). Two copies of that logic had drifted (two
ways of reading the CPU flags, two session caches). Each codec still chooses its own *values* here
(thread count, graph optimisation level, which flags it records), because those values are part of the
bitstreams and headers already written. This is a helper module, not a codec plugin: it registers nothing.

onnxruntime is imported lazily: listing codecs must not pay for it.
"""
from __future__ import annotations

import os
import platform
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Sequence

from lmar.errors import CodecUnavailable

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")

#: numpy's names for the SIMD flags it detects at run time (see :func:`cpu_flags`).
_NUMPY_FLAG_NAMES = {"sse4_1": "SSE41", "sse4_2": "SSE42", "avx": "AVX", "avx2": "AVX2", "fma": "FMA3",
                     "f16c": "F16C", "avx512f": "AVX512F", "avx512bw": "AVX512BW", "avx512vl": "AVX512VL",
                     "avx512_vnni": "AVX512VNNI", "avx512_bf16": "AVX512BF16", "asimd": "ASIMD", "sve": "SVE"}


def ort() -> Any:
    """The onnxruntime module, imported on first use."""
    import onnxruntime

    return onnxruntime


# -- CPU flags and the numerics profile ------------------------------------------------------------------
def _proc_cpu_flags() -> set[str]:
    """The flags line of /proc/cpuinfo (``Features`` on ARM); empty where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _detected_cpu_features() -> Mapping[str, bool]:
    """numpy's run-time SIMD detection: it asks the CPU (CPUID on x86, the kernel's hwcaps on ARM)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        try:
            from numpy.core._multiarray_umath import __cpu_features__  # numpy 1.x
        except ImportError:
            return {}
    return __cpu_features__


def cpu_flags(names: Sequence[str]) -> list[str]:
    """Which of ``names`` (spelled as /proc/cpuinfo spells them) the CPU running this process has, in order.

    Why not /proc/cpuinfo alone: under emulation (qemu-user) it describes the host, not the CPU the code
    runs on, so a member made on an AVX-512 machine and decoded under ``-cpu Nehalem`` had the same
    fingerprint and was called damaged. Where numpy detects a flag its answer wins; on real hardware
    both agree, so the flags (and the fingerprints of earlier members) are unchanged there. Flags numpy
    has no name for come from /proc/cpuinfo, and only when it tells the truth about the others.
    """
    proc, seen = _proc_cpu_flags(), _detected_cpu_features()
    # /proc/cpuinfo is trusted for the flags numpy cannot name (avx_vnni, amx_*) only where it agrees with
    # numpy on every flag both can name: under qemu-user it describes the host, and they disagree.
    checkable = [(f, n) for f, n in _NUMPY_FLAG_NAMES.items() if n in seen]
    proc_is_this_cpu = all((f in proc) == bool(seen[n]) for f, n in checkable)
    flags = []
    for flag in names:
        name = _NUMPY_FLAG_NAMES.get(flag)
        if bool(seen[name]) if name in seen else (flag in proc and proc_is_this_cpu):
            flags.append(flag)
    return flags


def machine_profile(provider: str, flag_names: Sequence[str]) -> dict[str, Any]:
    """What decides float results besides the graph and the settings, in the order headers record it:
    provider, ORT and numpy versions, CPU architecture, CPU flags (a list; a codec may re-spell it)."""
    import numpy as np

    return {"provider": provider, "onnxruntime": ort().__version__, "numpy": np.__version__,
            "machine": platform.machine(), "cpu_flags": cpu_flags(flag_names)}


def float_binding(recorded: Mapping[str, Any]) -> str:
    """The machines a float-numerics member decodes on, in words, from the profile it recorded."""
    flags = recorded.get("cpu_flags")
    if isinstance(flags, str):  # lm records "sse4_2,avx,avx2,fma"; llm a list
        flags = [f for f in flags.split(",") if f]
    words = f"{recorded.get('machine') or 'unknown'} CPUs"
    if isinstance(flags, (list, tuple)) and flags:
        words += " with " + ", ".join(str(f) for f in flags)
    provider = recorded.get("provider")
    if isinstance(provider, str) and provider and provider != CPU:
        words += f" on {provider}"
    return words + " (float numerics)"


# -- execution provider ------------------------------------------------------------------------------------
def choose_provider(device: str, env: str = "LMAR_DEVICE") -> str:
    """The provider for ``device``: CUDA when requested (``cuda``) or allowed (``auto``) and present, else CPU.

    ``env`` only words the error: it names the setting the device came from.
    """
    dev = device.strip().lower() or "auto"
    if dev not in DEVICES:
        raise CodecUnavailable(f"{env}={dev!r}: expected auto, cpu or cuda")
    if dev == "cpu":
        return CPU
    cuda_ok = CUDA in ort().get_available_providers()
    if dev == "cuda" and not cuda_ok:
        raise CodecUnavailable(
            "--device cuda: onnxruntime has no CUDA execution provider here (install onnxruntime-gpu "
            "with a matching CUDA runtime, or use --device cpu)"
        )
    return CUDA if cuda_ok else CPU


# -- sessions ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionSettings:
    """The session options a codec pins; each changes (or may change) float results, so none is left default
    by accident. ``None`` leaves ORT's own default, which is what some existing bitstreams were made with."""

    #: intra-op threads (inter-op is always 1, sequential execution)
    threads: int = 1
    #: graph rewrites: "basic" (ORT_ENABLE_BASIC) or None for ORT's default (all)
    graph_optimization: str | None = None
    #: ORT's deterministic kernels where it has a choice
    deterministic: bool = False
    #: idle worker threads spin ("1") or sleep ("0"): scheduling only, never the results
    spinning: str = "0"
    #: ORT's log severity (3: errors only), or None for its default
    log_severity: int | None = None


def create_session(path: str | Path, provider: str, settings: SessionSettings, label: str = "language model",
                   error: Callable[[str], Exception] = CodecUnavailable) -> Any:
    """An InferenceSession on ``provider`` (CUDA sessions keep the CPU provider as ORT's fallback).

    A file ORT cannot load raises ``error("cannot load <label> <path>: <first line of ORT's message>")``.
    """
    rt = ort()
    so = rt.SessionOptions()
    so.intra_op_num_threads = settings.threads
    so.inter_op_num_threads = 1
    so.execution_mode = rt.ExecutionMode.ORT_SEQUENTIAL
    if settings.graph_optimization == "basic":
        # Basic rewrites only: extended/layout fusions pick kernels by CPU and add numerics variation.
        so.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_BASIC
    elif settings.graph_optimization is not None:
        raise ValueError(f"unknown graph optimisation {settings.graph_optimization!r}")
    if settings.deterministic:
        so.use_deterministic_compute = True
    so.add_session_config_entry("session.intra_op.allow_spinning", settings.spinning)
    if settings.log_severity is not None:
        so.log_severity_level = settings.log_severity
    providers: list[Any] = [provider]
    if provider == CUDA:
        providers = [(provider, {"cudnn_conv_algo_search": "DEFAULT", "use_tf32": "0"}), CPU]
    try:
        return rt.InferenceSession(str(path), so, providers=providers)
    except Exception as exc:  # a damaged ONNX file, missing CUDA libraries, an older ORT's option set
        if provider == CUDA:
            try:
                return rt.InferenceSession(str(path), so, providers=[provider, CPU])
            except Exception:
                pass
        raise error(f"cannot load {label} {path}: {exc}".splitlines()[0]) from None


class SessionCache:
    """Sessions by key, least recently used dropped beyond ``maxsize`` (None: unbounded); thread-safe.

    Why cache: loading a graph costs from milliseconds (the byte model) to seconds (~500 MB of LLM weights),
    and every block of an archive asks for the same one. Creation runs under the lock, so two threads
    asking for one key load it once.
    """

    def __init__(self, maxsize: int | None = None) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            value = make()
            self._items[key] = value
            if self.maxsize is not None and len(self._items) > self.maxsize:
                self._items.popitem(last=False)
            return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def env_threads(var: str) -> int:
    """A thread count from environment variable ``var`` (0 or unset: this machine's core count)."""
    return int(os.environ.get(var, 0)) or (os.cpu_count() or 1)
