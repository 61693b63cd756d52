"""onnxruntime sessions for the byte model, and the numerics profile of this machine.

Why fixed settings: a payload decodes only if the decoder sees bit-identical logits. Thread count, graph
rewrites and non-deterministic kernels can all change float results, so they are pinned here, once, for
both directions. What cannot be pinned (ORT build, CPU SIMD level, provider) is recorded as a profile so a
failed decode can say what differs.
"""
from __future__ import annotations

import os
import platform
from functools import lru_cache
from typing import Any, Mapping

import numpy as np

from lmar.errors import CodecUnavailable

from .model_files import ModelCard

DEVICE_ENV = "LMAR_DEVICE"
#: Pinned, whatever OMP_NUM_THREADS or the machine says: results must not depend on the thread count.
INTRA_OP_THREADS = 1
_SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "amx_tile", "neon", "asimd", "sve")


def _ort():  # imported lazily: listing codecs must not pay for onnxruntime
    import onnxruntime

    return onnxruntime


def requested_device() -> str:
    dev = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
    if dev not in ("auto", "cpu", "cuda"):
        raise CodecUnavailable(f"{DEVICE_ENV}={dev!r}: expected auto, cpu or cuda")
    return dev


def choose_provider() -> str:
    """The execution provider for this process, following ``LMAR_DEVICE``."""
    dev = requested_device()
    if dev == "cpu":
        return "CPUExecutionProvider"
    cuda_ok = "CUDAExecutionProvider" in _ort().get_available_providers()
    if dev == "cuda" and not cuda_ok:
        raise CodecUnavailable(
            "--device cuda: onnxruntime has no CUDA execution provider here (install onnxruntime-gpu "
            "with a matching CUDA runtime, or use --device cpu)"
        )
    return "CUDAExecutionProvider" if cuda_ok else "CPUExecutionProvider"


@lru_cache(maxsize=8)
def _session(path: str, sha256: str, provider: str):
    ort = _ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = INTRA_OP_THREADS
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Basic rewrites only: extended/layout fusions pick kernels by CPU and would add numerics variation.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.use_deterministic_compute = True
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers: list[Any] = [provider]
    if provider == "CUDAExecutionProvider":
        providers = [(provider, {"cudnn_conv_algo_search": "DEFAULT", "use_tf32": "0"}), "CPUExecutionProvider"]
    try:
        return ort.InferenceSession(path, so, providers=providers)
    except Exception as exc:  # a damaged ONNX file, missing CUDA libraries, an older ORT's option set
        if provider == "CUDAExecutionProvider":
            try:
                return ort.InferenceSession(path, so, providers=[provider, "CPUExecutionProvider"])
            except Exception:
                pass
        raise CodecUnavailable(f"cannot load language model {path}: {exc}") from None


class StepModel:
    """One lockstep step of the byte model: (previous bytes [B], state [L,B,H]) -> (logits [B,256], state)."""

    def __init__(self, card: ModelCard, sha256: str) -> None:
        self.card = card
        wanted = choose_provider()
        self.session = _session(str(card.path), sha256, wanted)
        # What actually runs: onnxruntime may fall back to CPU when CUDA libraries fail to load.
        self.provider = self.session.get_providers()[0]

    @property
    def bos(self) -> int:
        return self.card.bos

    def zero_state(self, batch: int) -> np.ndarray:
        return np.zeros((self.card.layers, batch, self.card.hidden), dtype=np.float32)

    def step(self, prev: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, state_out = self.session.run(["logits", "state_out"], {"byte": prev, "state": state})
        return logits, state_out


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    have = set(line.split(":", 1)[1].split())
                    return [fl for fl in _SIMD_FLAGS if fl in have]
    except OSError:
        pass
    return []


@lru_cache(maxsize=4)
def _profile(provider: str) -> tuple[tuple[str, Any], ...]:
    return (
        ("provider", provider),
        ("onnxruntime", _ort().__version__),
        ("numpy", np.__version__),
        ("machine", platform.machine()),
        ("cpu_flags", ",".join(_cpu_flags())),
        ("intra_op_threads", INTRA_OP_THREADS),
    )


def numerics_profile(provider: str | None = None) -> dict[str, Any]:
    """What can make this machine's logits differ from another's; recorded with every lm member."""
    try:
        prov = provider or choose_provider()
    except CodecUnavailable:
        prov = "unavailable"
    return dict(_profile(prov))


def describe_mismatch(recorded: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> str:
    """One line naming each profile field that differs between the encoder's machine and this one."""
    here = dict(current or numerics_profile())
    diffs = []
    for key in sorted(recorded):  # fields an older writer did not record cannot be compared
        if key == "model":
            continue
        a, b = recorded.get(key), here.get(key)
        if a != b:
            diffs.append(f"{key} {a!r} -> {b!r}")
    if not diffs:
        return "numerics profile matches the encoder's; the data itself is probably damaged"
    return "encoded with a different numerics profile: " + "; ".join(diffs)


def profile_fingerprint(profile: Mapping[str, Any]) -> int:
    """A 32-bit digest of a profile, stored in each payload so decode errors can tell 'other machine'."""
    import zlib

    text = ";".join(f"{k}={profile[k]}" for k in sorted(profile))
    return zlib.crc32(text.encode())
