"""plugins/ort_runtime.py: the ONNX Runtime helper both LM codecs use (CPU flags, provider, sessions, cache).

The profiles each codec records are part of headers already written, so their fields, order and spelling
are pinned here; the numbers come from this machine and are not.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lmar.errors import CodecError, CodecUnavailable
from lmar.plugins import ort_runtime

MODELS = Path(ort_runtime.__file__).parent / "models"


def test_not_a_codec_plugin() -> None:
    """A helper module: nothing in the `lmar` entry point group names it."""
    from importlib.metadata import entry_points

    assert all("ort_runtime" not in ep.value for ep in entry_points(group="lmar"))


def test_cpu_flags_keep_the_requested_order_and_prefer_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort_runtime, "_proc_cpu_flags", lambda: {"avx2", "sse4_1", "avx_vnni"})
    monkeypatch.setattr(ort_runtime, "_detected_cpu_features", lambda: {"AVX2": True, "AVX512F": False})
    # sse4_1 and avx_vnni have no numpy answer here: /proc/cpuinfo decides, since it agrees with numpy on avx2
    # and avx512f
    assert ort_runtime.cpu_flags(("sse4_1", "avx2", "avx_vnni", "avx512f", "neon")) == ["sse4_1", "avx2", "avx_vnni"]
    assert ort_runtime.cpu_flags(()) == []


def test_cpu_flags_distrust_cpuinfo_that_describes_another_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under qemu-user /proc/cpuinfo is the host's (here AVX-512 and AVX-VNNI) while the CPU is a Nehalem."""
    monkeypatch.setattr(ort_runtime, "_proc_cpu_flags", lambda: {"sse4_2", "avx", "avx2", "avx512f", "avx_vnni"})
    monkeypatch.setattr(ort_runtime, "_detected_cpu_features", lambda: {"SSE42": True, "AVX": False, "AVX2": False,
                                                                       "AVX512F": False})
    assert ort_runtime.cpu_flags(("sse4_2", "avx", "avx2", "avx512f", "avx_vnni")) == ["sse4_2"]


def test_profiles_keep_their_recorded_shape() -> None:
    """lm: cpu_flags a comma-joined string, then intra_op_threads; llm: a list. Field order as written so far."""
    from lmar.plugins.llmcore import runtime as llm_runtime
    from lmar.plugins.lmcore import runtime as lm_runtime

    lm = lm_runtime.numerics_profile(ort_runtime.CPU)
    assert list(lm) == ["provider", "onnxruntime", "numpy", "machine", "cpu_flags", "intra_op_threads"]
    assert isinstance(lm["cpu_flags"], str) and lm["intra_op_threads"] == 1
    llm = llm_runtime.numerics_profile()
    assert list(llm) == ["provider", "onnxruntime", "numpy", "machine", "cpu_flags"]
    assert llm["provider"] == ort_runtime.CPU and isinstance(llm["cpu_flags"], list)
    # the same detection: every lm flag the llm codec also records agrees
    shared = set(lm_runtime._SIMD_FLAGS) & set(llm_runtime._FLAG_NAMES)
    assert [f for f in lm["cpu_flags"].split(",") if f in shared] == [f for f in llm["cpu_flags"] if f in shared]


def test_choose_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ort_runtime.choose_provider("cpu") == ort_runtime.CPU
    assert ort_runtime.choose_provider(" CPU ") == ort_runtime.CPU
    with pytest.raises(CodecUnavailable, match="LMAR_DEVICE='tpu'"):
        ort_runtime.choose_provider("tpu")
    monkeypatch.setattr(ort_runtime, "ort", lambda: type("Ort", (), {"get_available_providers": staticmethod(
        lambda: [ort_runtime.CPU])}))
    assert ort_runtime.choose_provider("auto") == ort_runtime.CPU
    with pytest.raises(CodecUnavailable, match="--device cuda"):
        ort_runtime.choose_provider("cuda")
    monkeypatch.setattr(ort_runtime, "ort", lambda: type("Ort", (), {"get_available_providers": staticmethod(
        lambda: [ort_runtime.CUDA, ort_runtime.CPU])}))
    assert ort_runtime.choose_provider("auto") == ort_runtime.CUDA == ort_runtime.choose_provider("cuda")


def test_create_session_applies_settings_and_words_errors(tmp_path: Path) -> None:
    model = MODELS / "bytegru-v3i.onnx"
    if not model.is_file():
        pytest.skip("shipped model missing")
    sess = ort_runtime.create_session(model, ort_runtime.CPU, ort_runtime.SessionSettings(
        threads=1, graph_optimization="basic", deterministic=True, log_severity=3))
    assert sess.get_providers()[0] == ort_runtime.CPU
    opts = sess.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1 and opts.use_deterministic_compute
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph\nsecond line")
    with pytest.raises(CodecUnavailable, match=r"^cannot load language model .*bad\.onnx") as err:
        ort_runtime.create_session(bad, ort_runtime.CPU, ort_runtime.SessionSettings())
    assert "\n" not in str(err.value)
    with pytest.raises(CodecError, match="cannot load model graph"):
        ort_runtime.create_session(bad, ort_runtime.CPU, ort_runtime.SessionSettings(), "model graph", CodecError)


def test_session_cache_is_lru_and_loads_once() -> None:
    made: list[str] = []

    def maker(k: str):  # type: ignore[no-untyped-def]
        return lambda: made.append(k) or k.upper()

    cache = ort_runtime.SessionCache(maxsize=2)
    assert cache.get("a", maker("a")) == "A" and cache.get("a", maker("a")) == "A"
    cache.get("b", maker("b"))
    cache.get("a", maker("a"))  # a is now the most recent
    cache.get("c", maker("c"))  # evicts b
    cache.get("b", maker("b"))
    assert made == ["a", "b", "c", "b"] and len(cache) == 2
    cache.clear()
    assert len(cache) == 0

    slow = ort_runtime.SessionCache()
    count = []
    threads = [threading.Thread(target=lambda: slow.get("k", lambda: count.append(1) or object())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(count) == 1


def test_lm_sessions_are_shared_per_file_and_provider() -> None:
    from lmar.plugins.lmcore import runtime

    model = MODELS / "bytegru-v3i.onnx"
    if not model.is_file():
        pytest.skip("shipped model missing")
    a = runtime._session(str(model), "x", ort_runtime.CPU)
    assert runtime._session(str(model), "x", ort_runtime.CPU) is a
    assert runtime._session(str(model), "y", ort_runtime.CPU) is not a
    opts = a.get_session_options()
    assert opts.intra_op_num_threads == runtime.INTRA_OP_THREADS and opts.use_deterministic_compute
