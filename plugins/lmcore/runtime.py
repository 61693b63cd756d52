"""The byte model's onnxruntime settings and steppers, and the numerics profile its members record.

Why fixed settings: a payload decodes only if the decoder sees bit-identical logits. Thread count, graph
rewrites and non-deterministic kernels can all change float results, so they are pinned here, once, for
both directions. What cannot be pinned (ORT build, CPU SIMD level, provider) is recorded as a profile so a
failed decode can say what differs. Sessions, their cache and CPU flag detection are shared with the
``llm`` codecs (:mod:`lmar.plugins.ort_runtime`); the values chosen here are this codec's own.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Mapping

import numpy as np

from lmar.errors import CodecUnavailable

from .. import ort_runtime
from .model_files import ModelCard

DEVICE_ENV = "LMAR_DEVICE"
#: Pinned, whatever OMP_NUM_THREADS or the machine says: results must not depend on the thread count.
INTRA_OP_THREADS = 1
#: The CPU flags a profile records (spelled as /proc/cpuinfo spells them; the order is part of the profile).
_SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "amx_tile", "neon", "asimd", "sve")
#: Basic graph rewrites and deterministic kernels, one thread: extended/layout fusions pick kernels by CPU.
SETTINGS = ort_runtime.SessionSettings(threads=INTRA_OP_THREADS, graph_optimization="basic", deterministic=True)
_SESSIONS = ort_runtime.SessionCache(maxsize=8)


def requested_device() -> str:
    """``LMAR_DEVICE`` as given (auto, cpu or cuda; checked by :func:`choose_provider`)."""
    return os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"


def choose_provider() -> str:
    """The execution provider for this process, following ``LMAR_DEVICE``."""
    return ort_runtime.choose_provider(requested_device(), DEVICE_ENV)


def _session(path: str, sha256: str, provider: str) -> Any:
    """The cached session of one model file (``sha256`` keys it, so a replaced file gets a new session)."""
    return _SESSIONS.get((path, sha256, provider),
                         lambda: ort_runtime.create_session(path, provider, SETTINGS, "language model"))


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

    def mixer_inputs(self, logits: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What the compiled mixer reads: float32 logits [B, 256] and the top layer's hidden state [B, H]."""
        return (np.ascontiguousarray(logits, dtype=np.float32), np.ascontiguousarray(state[-1], dtype=np.float32))


class IntStepModel(StepModel):
    """The integer network (scheme ``cm6``): int32 Q15 state, int32 logits in 1/16 nats.

    Every operator of its graph is integer (see :mod:`.intnet`), so its outputs are the same on every
    CPU, thread count and execution provider; :meth:`mixer_inputs` hands the mixer exact integers' values.
    It runs on the CPU provider whatever ``LMAR_DEVICE`` says: a step of this small graph costs less than
    a round trip to a GPU, and the CUDA provider's integer kernels have not been checked against the
    reference (no GPU in the sessions that built it).
    """

    #: A row's outputs do not depend on the other rows of its batch (integer arithmetic, row by row).
    batch_exact = True

    def __init__(self, card: ModelCard, sha256: str) -> None:
        self.card = card
        self.session = _session(str(card.path), sha256, "CPUExecutionProvider")
        self.provider = "CPUExecutionProvider"
        #: Graph 2 (``tools/lm/export_int_onnx_g2.py``) makes the mixer's inputs itself.
        self.makes_mixer_inputs = "mix_logits" in {o.name for o in self.session.get_outputs()}

    def lane_stepper(self, batch: int) -> "BoundStepper | None":
        """A stepper for one lane of ``batch`` segments with its buffers bound once, or None (graph 1)."""
        return BoundStepper(self, batch) if self.makes_mixer_inputs else None

    def zero_state(self, batch: int) -> np.ndarray:
        return np.zeros((self.card.layers, batch, self.card.hidden), dtype=np.int32)

    def step(self, prev: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer logits [B, 256] (graph 2 gives them a leading axis of 1) and the next state."""
        logits, state_out = self.session.run(["logits", "state_out"], {"byte": prev, "state": state})
        return (logits[0] if logits.ndim == 3 else logits), state_out

    def mixer_inputs(self, logits: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from .intnet import mixer_inputs

        return mixer_inputs(logits, state)


class BoundStepper:
    """One lane's steps of an integer graph that makes the mixer's inputs (graph 2), through IO binding.

    Why: at batch 1 (every block below ``min_segment``) a step costs per-call and per-node overhead, not
    arithmetic. Two bindings are made once, state A -> B and B -> A, over arrays this object owns, and the
    steps alternate between them: a step builds no feeds and no outputs and binds nothing. The lane writes
    the previous bytes into :attr:`prev` (bound: ORT reads it in place) and gets views of the mixer's
    inputs, valid until the next :meth:`step`. One stepper per lane: lanes step in two threads.
    """

    def __init__(self, model: IntStepModel, batch: int) -> None:
        rt = ort_runtime.ort()
        card = model.card
        self._session = model.session
        self.prev = np.full(batch, card.bos, dtype=np.int64)
        self._logits = np.zeros((1, batch, 256), dtype=np.float32)
        self._hidden = np.zeros((1, batch, card.hidden), dtype=np.float32)
        states = [rt.OrtValue.ortvalue_from_numpy(model.zero_state(batch)) for _ in range(2)]
        prev_value = rt.OrtValue.ortvalue_from_numpy(self.prev)  # wraps self.prev's memory
        self._bindings = []
        for i in range(2):
            io = self._session.io_binding()
            io.bind_ortvalue_input("byte", prev_value)
            io.bind_ortvalue_input("state", states[i])
            io.bind_ortvalue_output("state_out", states[1 - i])
            for name, arr in (("mix_logits", self._logits), ("mix_hidden", self._hidden)):
                io.bind_output(name, "cpu", 0, arr.dtype, arr.shape, arr.ctypes.data)
            self._bindings.append(io)
        self._keep = (states, prev_value)  # the bound tensors live as long as the bindings
        self._turn = 0

    def step(self) -> tuple[np.ndarray, np.ndarray]:
        """One step from :attr:`prev`: (logits / 16 [B, 256], top state / 2^15 [B, H]) as float32."""
        io = self._bindings[self._turn]
        self._turn ^= 1
        self._session.run_with_iobinding(io)
        return self._logits[0], self._hidden[0]


def step_model(card: ModelCard, sha256: str) -> StepModel:
    """The stepper for ``card``'s numerics (an integer graph or a float one)."""
    return IntStepModel(card, sha256) if card.numerics == INTEGER else StepModel(card, sha256)


def _cpu_flags() -> list[str]:
    """The SIMD flags of the CPU running this process (see :func:`ort_runtime.cpu_flags`)."""
    return ort_runtime.cpu_flags(_SIMD_FLAGS)


def host_cpu_name() -> str:
    """The CPU model LLVM detects (what numba compiles the mixer for); '' when llvmlite is missing."""
    try:
        import llvmlite.binding as llvm

        return str(llvm.get_host_cpu_name())
    except Exception:  # an old or broken llvmlite: the name is only a hint in error messages
        return ""


@lru_cache(maxsize=4)
def _profile(provider: str) -> tuple[tuple[str, Any], ...]:
    prof = ort_runtime.machine_profile(provider, _SIMD_FLAGS)
    prof["cpu_flags"] = ",".join(prof["cpu_flags"])  # a string: how lm members have always recorded it
    return (*prof.items(), ("intra_op_threads", INTRA_OP_THREADS))


def numerics_profile(provider: str | None = None) -> dict[str, Any]:
    """What can make this machine's logits differ from another's; recorded with every lm member."""
    try:
        prov = provider or choose_provider()
    except CodecUnavailable:
        prov = "unavailable"
    return dict(_profile(prov))


#: Card value of ``numerics`` for an integer network, and the profile its members record instead of the
#: machine's: an integer network computes the same on every machine, so there is nothing to compare.
INTEGER = "integer"
PORTABLE = "portable"


def portable_profile() -> dict[str, Any]:
    """The numerics profile of a member coded with the integer network (scheme cm6): the same everywhere."""
    return {"numerics": PORTABLE}


def describe_mismatch(recorded: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> str:
    """One line naming each profile field that differs between the encoder's machine and this one."""
    if recorded.get("numerics") == PORTABLE:
        return ("integer network (portable numerics, identical on every machine): the data itself is damaged, "
                "or a file of the model differs from the one it was coded with")
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
    cpu = host_cpu_name()
    return ("encoded with a different numerics profile: " + "; ".join(diffs)
            + (f" (this CPU: {cpu})" if cpu else "") + ". Decode it on a machine like the encoder's")


def profile_fingerprint(profile: Mapping[str, Any]) -> int:
    """A 32-bit digest of a profile, stored in each payload so decode errors can tell 'other machine'."""
    import zlib

    text = ";".join(f"{k}={profile[k]}" for k in sorted(profile))
    return zlib.crc32(text.encode())
