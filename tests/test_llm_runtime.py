"""llm runtime: the KV cache read through IO binding, in host memory or in the provider's (the CUDA path,
run here on the CPU provider), gives the same logits and payloads; GPU checks skip without a GPU."""
from __future__ import annotations

import importlib.util
import random

import numpy as np
import pytest

from test_llm_codec import SAMPLE, codec, needs_import, tiny_home  # noqa: F401  (fixtures)


def test_cache_write_graph_is_valid_onnx_and_scatters_exactly() -> None:
    from lmar.plugins.llmcore import cache_graph

    if importlib.util.find_spec("onnx"):
        import onnx

        for graph in (cache_graph.model_bytes(), cache_graph.zeros_bytes(), cache_graph.pad_bytes()):
            onnx.checker.check_model(onnx.load_from_string(graph), full_check=True)
    rng = np.random.default_rng(2)
    k = rng.standard_normal((2, 3, 2, 8, 4), dtype=np.float32)
    ku = rng.standard_normal((2, 3, 2, 3, 4), dtype=np.float32)
    slots = np.array([5, 0, 7])
    ko, vo = cache_graph.session("CPUExecutionProvider").run(
        None, {"k": k, "v": -k, "k_upd": ku, "v_upd": -ku, "slots": slots})
    want = k.copy()
    want[:, :, :, slots, :] = ku
    assert np.array_equal(ko, want) and np.array_equal(vo, -want)


@needs_import
@pytest.mark.parametrize("grow", [False, True])
def test_device_cache_path_matches_host_cache_bit_for_bit(codec, grow: bool, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Same logits at every step (window slides, sink re-rotated, cache grows 2 -> 12 by Pad on the device's
    side) and the same cache contents."""
    from lmar.plugins.llmcore.runtime import WindowRunner

    monkeypatch.setattr(WindowRunner, "GROW_FROM", 2)
    sess = codec._runner_factory()(1, False).sess
    runners = [WindowRunner(sess, codec.card, 3, 12, 4, grow, device_cache=d) for d in (False, True)]
    rng = np.random.default_rng(3)
    caps = []
    for _ in range(40):
        ids = rng.integers(2, 50, 3)
        a, b = (r.step(ids) for r in runners)
        assert np.array_equal(a, b)
        caps.append(runners[1].capacity)
    assert caps[:9] == ([2, 2, 4, 4, 8, 8, 8, 8, 12] if grow else [12] * 9)
    for x, y in zip(runners[0].cache.host(), runners[1].cache.host()):
        assert np.array_equal(x, y)


@needs_import
@pytest.mark.parametrize("device_cache", [False, True])
def test_repeated_runner_starts_every_row_from_the_one_segment_context(codec, device_cache: bool,
                                                                        monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Format 3's prime: a one-segment runner's context (slid window, re-rotated sink, grown cache, the slot
    still to write) copied into every row continues as if each row had run that context itself."""
    from lmar.plugins.llmcore.runtime import WindowRunner

    monkeypatch.setattr(WindowRunner, "GROW_FROM", 2)
    sess = codec._runner_factory()(1, False).sess
    ids = np.random.default_rng(4).integers(2, 50, 20)
    one = WindowRunner(sess, codec.card, 1, 12, 4, True, device_cache=device_cache)
    ref = WindowRunner(sess, codec.card, 3, 12, 4, True, device_cache=device_cache)
    for x in ids[:-1]:
        one.step(np.array([x]))
        ref.step(np.full(3, x))
    rep = one.repeated(3)
    assert (rep.t, rep.capacity, rep.B) == (ref.t, ref.capacity, 3)
    nxt = np.array([ids[-1], 7, 9])
    a, b = rep.step(nxt), ref.step(nxt)
    assert np.allclose(a, b, atol=1e-4)  # batch 1 vs 3 may round differently; the values are the same
    for x, y in zip(rep.cache.host(), ref.cache.host()):
        assert np.allclose(x, y, atol=1e-4)
    with pytest.raises(Exception):
        rep.repeated(2)


@needs_import
def test_payload_same_with_device_cache(codec, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from lmar.plugins.llmcore import runtime

    data = SAMPLE * 2 + random.Random(4).randbytes(200)
    host = codec.compress(data)
    real = runtime.WindowRunner.__init__

    def device_init(self, *a, **kw):  # type: ignore[no-untyped-def]
        kw["device_cache"] = True
        real(self, *a, **kw)

    monkeypatch.setattr(runtime.WindowRunner, "__init__", device_init)
    assert codec.compress(data) == host and codec.decompress(host, len(data)) == data


def _have_cuda() -> bool:
    try:
        import onnxruntime

        return "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    except ImportError:
        return False


@needs_import
@pytest.mark.skipif(not _have_cuda(), reason="no CUDA execution provider (onnxruntime-gpu and a GPU)")
def test_cuda_roundtrip_with_cache_on_the_device(codec) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from lmar.plugins.llmcore import coding, store
    from lmar.plugins.llmcore.runtime import WindowRunner, session

    sess = session(Path(codec.card["path"]) / store.ONNX, provider="CUDAExecutionProvider", cache=False)
    p = codec.params

    def make(batch: int, grow: bool) -> WindowRunner:
        return WindowRunner(sess, codec.card, batch, p["context"], p["sink"], grow, device="cuda")

    data = SAMPLE * 3
    payload = coding.encode(data, codec.tokenizer(), make, 3, 200)
    assert coding.decode(payload, len(data), codec.tokenizer(), make, 3) == data
