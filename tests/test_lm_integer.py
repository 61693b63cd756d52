"""The integer network of scheme ``cm6``: ONNX Runtime agrees bit for bit with the numpy reference, no
kernel can saturate, the graph is integer only, and cm6 members are portable (fixture decodes and
re-encodes to the same bytes on any machine)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lmar.errors import CodecError
from lmar.plugins.lmcore import intnet, model_files
from lm_fixtures import FIXTURE_PARAMS, fixture_input, fixture_payload

INT_MODEL = "bytegru-v3i2"  # the default: graph 2 (tools/lm/export_int_onnx_g2.py)
GRAPH1_MODEL = "bytegru-v3i"  # the same integers in graph 1, what the first cm6 members name
MODELS = (GRAPH1_MODEL, INT_MODEL)
SHIPPED = model_files.SHIPPED_DIR / f"{INT_MODEL}.onnx"  # package data (test_lm_codec checks it is there)
CORPUS_TEXT = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "text" / "alice29.txt"
INT16_MAX = 32767


def _path(model: str) -> Path:
    return model_files.SHIPPED_DIR / f"{model}.onnx"


@pytest.fixture(scope="module", params=MODELS)
def model(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def params(model: str) -> intnet.IntParams:
    pytest.importorskip("onnx")
    return intnet.load_onnx(_path(model))


def _session(threads: int, model: str = INT_MODEL):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(str(_path(model)), so, providers=["CPUExecutionProvider"])


def _run(sess, byte: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits [B, 256], state_out) from either graph; graph 2's mixer inputs are checked on the way:
    float32 logits / 16 and a hidden input the mixer reads back as (h + 256) >> 9."""
    names = [o.name for o in sess.get_outputs()]
    if "mix_logits" not in names:
        return tuple(sess.run(["logits", "state_out"], {"byte": byte, "state": state}))
    lo, so, ml, mh = sess.run(["logits", "state_out", "mix_logits", "mix_hidden"], {"byte": byte, "state": state})
    lg, hid = intnet.mixer_inputs(lo[0], so)
    assert np.array_equal(ml[0], lg)
    assert np.array_equal(intnet.hidden_units(mh[0]), intnet.hidden_units(hid))
    assert np.array_equal(intnet.hidden_units(hid), (so[-1].astype(np.int64) + 256) >> 9)
    return lo[0], so


def test_both_graphs_hold_the_same_integers() -> None:
    pytest.importorskip("onnx")
    a, b = (intnet.load_onnx(_path(m)) for m in MODELS)
    assert a.same_integers(b)
    c = intnet.load_onnx(_path(GRAPH1_MODEL))
    c.c_out = c.c_out.copy()
    c.c_out[7] += 1
    assert not a.same_integers(c)


# -- the saturation proof ---------------------------------------------------------------------------
def test_no_pair_of_products_can_saturate_int16() -> None:
    """ONNX Runtime's AVX2 u8 x s8 GEMM (vpmaddubsw) adds two adjacent u8*s8 products in int16 with
    saturation (VNNI and NEON accumulate in int32 and cannot). With operands in [1, 255] and weights in
    [-64, 63], |a1*w1 + a2*w2| <= 2 * 255 * 64 = 32640 < 32767: no pair saturates on any path."""
    assert intnet.pair_sum_bound() == 2 * 255 * 64 == 32640 <= INT16_MAX
    # Every Q15 state the network can hold (and beyond: all of int16) maps to an operand in [1, 255].
    h = np.arange(-40000, 40001, dtype=np.int64)
    ops = intnet.operand(h)
    assert ops.min() == intnet.A_MIN == 1 and ops.max() == intnet.A_MAX == 255


def test_shipped_weights_respect_the_bound(params: intnet.IntParams) -> None:
    mats = {"w_hh": params.w_hh, "w_ih": params.w_ih[1:], "w_out": [params.w_out]}
    for name, ws in mats.items():
        for w in ws:
            assert w.dtype == np.int8 and intnet.W_MIN <= int(w.min()) and int(w.max()) <= intnet.W_MAX, name
            # The worst adjacent pair along the reduction axis (whatever pairing a kernel uses), with the
            # operand at its extreme 255 on both: what vpmaddubsw would form.
            a = np.abs(w.astype(np.int64))
            worst = int((intnet.A_MAX * (a[:-1] + a[1:])).max())
            assert worst <= INT16_MAX, (name, worst)


@pytest.mark.parametrize("model_name", MODELS)
def test_graph_is_integer_only(model_name: str) -> None:
    """Every operator is integer; graph 2's only float values are its two mixer outputs, each a Cast of
    an integer tensor times a power of two (exact in float32 for the values the mixer reads)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, numpy_helper

    m = onnx.load(str(_path(model_name)))
    allowed = {"Gather", "MatMulInteger", "Cast", "Add", "Sub", "Mul", "Clip", "Split", "Concat", "Squeeze", "Div",
               "BitShift", "Identity"}
    assert {n.op_type for n in m.graph.node} <= allowed
    ints = {TensorProto.INT8, TensorProto.UINT8, TensorProto.INT32, TensorProto.UINT32, TensorProto.INT64,
            TensorProto.UINT64}
    mixer_outputs = {"mix_logits", "mix_hidden"}
    float_inits = {}
    for i in m.graph.initializer:
        if i.data_type not in ints:
            float_inits[i.name] = float(numpy_helper.to_array(i))
    float_casts = set()
    for n in m.graph.node:
        if n.op_type == "Cast" and n.attribute[0].i not in ints:
            float_casts.add(n.output[0])
        if n.op_type == "MatMulInteger":  # zero point 128 on the uint8 operand, int8 weights
            assert len(n.input) == 3
    for n in m.graph.node:  # a float tensor is used only by Mul(cast, 2^-k) making a mixer output
        for name in n.input:
            if name in float_casts or name in float_inits:
                assert n.op_type == "Mul" and n.output[0] in mixer_outputs, n.name
    assert all(np.log2(v) == int(np.log2(v)) for v in float_inits.values())
    assert len(float_casts) == len(float_inits) == (2 if model_name == INT_MODEL else 0)
    for v in m.graph.input:
        assert v.type.tensor_type.elem_type in ints
    for v in m.graph.output:
        assert v.type.tensor_type.elem_type in ints or v.name in mixer_outputs


# -- ONNX Runtime == reference ------------------------------------------------------------------------
@pytest.mark.parametrize("threads", [1, 2])
def test_onnxruntime_matches_reference_on_random_inputs(model: str, params: intnet.IntParams, threads: int) -> None:
    sess = _session(threads, model)
    rng = np.random.default_rng(threads)
    for b in (1, 3, 17, 64):
        byte = rng.integers(0, 257, b).astype(np.int64)
        state = rng.integers(-32768, 32769, (params.layers, b, params.hidden)).astype(np.int32)
        state[:, 0] = 32768  # extremes: every operand at 255 / at 1
        if b > 1:
            state[:, 1] = -32768
        lo, so = _run(sess, byte, state)
        lr, sr = intnet.step(params, byte, state)
        assert np.array_equal(lo, lr) and np.array_equal(so, sr), b
        assert np.abs(so).max() <= intnet.ONE


def test_onnxruntime_matches_reference_on_text(model: str, params: intnet.IntParams) -> None:
    text = CORPUS_TEXT.read_bytes()[:8 * 300] if CORPUS_TEXT.is_file() else (b"The quick brown fox. " * 200)[:2400]
    segs = np.frombuffer(text, np.uint8).reshape(8, -1).astype(np.int64)
    sess = _session(1, model)
    state = np.zeros((params.layers, 8, params.hidden), np.int32)
    ref = state.copy()
    prev = np.full(8, 256, np.int64)
    for t in range(segs.shape[1]):
        lo, state = _run(sess, prev, state)
        lr, ref = intnet.step(params, prev, ref)
        assert np.array_equal(lo, lr) and np.array_equal(state, ref), t
        prev = segs[:, t]


def test_mixer_reads_back_the_exact_integers() -> None:
    rng = np.random.default_rng(3)
    logits = rng.integers(-200000, 200000, (5, 256)).astype(np.int32)
    state = rng.integers(-32768, 32769, (2, 5, 192)).astype(np.int32)
    lg, hid = intnet.mixer_inputs(logits, state)
    assert lg.dtype == np.float32 and hid.dtype == np.float32
    assert np.array_equal(np.floor(lg.astype(np.float64) * 16 + 0.5).astype(np.int64), logits)
    k = np.floor(hid.astype(np.float64) * 64 + 0.5).astype(np.int64)
    assert np.array_equal(k, (state[-1].astype(np.int64) + 256) >> 9) and np.abs(k).max() <= 64


# -- the cm6 scheme ------------------------------------------------------------------------------------
def _codec(**params):
    from lmar.plugins.lm_codec import LmCodec

    return LmCodec(**params)


def test_cm6_is_the_default_and_records_a_portable_profile() -> None:
    from lmar.plugins.lm_codec import LmCodec

    c = _codec()
    assert c.params["scheme"] == "cm6" and c.params["model"] == INT_MODEL and LmCodec.version == 6
    info = c.header_info()
    assert info == {"model": INT_MODEL, "numerics": "portable"}
    hint = c.mismatch_hint(info)
    assert "portable" in hint and "damaged" in hint and "\n" not in hint
    # The payload fingerprint is the same on every machine (no CPU flags or provider in it).
    from lmar.plugins.lmcore import runtime

    assert c._fingerprint() == runtime.profile_fingerprint({"numerics": "portable"})


def test_scheme_and_network_numerics_must_agree() -> None:
    with pytest.raises(CodecError, match="integer network"):
        _codec(scheme="cm6", model="bytegru-v3")
    with pytest.raises(CodecError, match="float network"):
        _codec(scheme="cm5", model=INT_MODEL)
    assert _codec(scheme="cm5").params["model"] == "bytegru-v3"  # older schemes keep their float network


@pytest.mark.parametrize("model_name", MODELS)
def test_cm6_fixture_decodes_and_reencodes_to_the_same_bytes(model_name: str) -> None:
    """A cm6 payload is a function of the data alone: decoding it and coding the data again give the
    same bytes here as on the machine that wrote it (40 segments, two lanes), with either graph."""
    data = fixture_input()
    payload = fixture_payload("cm6")
    c = _codec(**FIXTURE_PARAMS, scheme="cm6", model=model_name)
    assert c.decompress(payload, len(data)) == data
    assert c.compress(data) == payload


def test_both_graphs_code_the_same_bits_in_one_segment() -> None:
    """One segment (the common case, no lanes) through graph 2's bound stepper and graph 1's plain step."""
    data = fixture_input()[:3000]
    one, two = (_codec(model=m).compress(data) for m in MODELS)
    assert one == two
    assert _codec(model=GRAPH1_MODEL).decompress(two, len(data)) == data
    assert _codec(model=INT_MODEL).decompress(one, len(data)) == data


def test_cm6_damaged_payload_is_reported_as_damage() -> None:
    data = fixture_input()[:1200]
    c = _codec(min_segment=200)
    payload = bytearray(c.compress(data))
    payload[len(payload) // 2] ^= 0x10
    with pytest.raises(CodecError):
        c.decompress(bytes(payload), len(data))


def test_cm6_bits_do_not_depend_on_the_lane_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """The integer network's rows ignore their batch, so cm6 may overlap network and mixer at any segment
    count (block_coder.MIN_LANES_EXACT is a speed choice) and the stream equals the one-lane stream."""
    from lmar.plugins.lmcore import block_coder

    data = fixture_input()[:2000]
    c = _codec(min_segment=300, max_segments=6)
    assert 2 <= c._plan(len(data)).count < block_coder.MIN_LANES_SEGMENTS
    monkeypatch.setattr(block_coder, "MIN_LANES_EXACT", 2)
    two = c.compress(data)
    monkeypatch.setattr(block_coder, "MIN_LANES_EXACT", 10**9)
    assert c.compress(data) == two
    assert c.decompress(two, len(data)) == data


def test_int32_intermediates_of_the_graph_cannot_overflow(params: intnet.IntParams) -> None:
    """The graph keeps the cell in int32 (tools/lm/export_int_onnx.check_bounds proves it at export; this
    re-derives it from the shipped integers): every rescaled pre-activation is below 2^29, r * hn plus its
    lift below 2^31, and (2^15 - z) * (n - h) plus the half within int32 (z >= 1 from the table)."""
    H = params.hidden

    def bound(w: np.ndarray, m: np.ndarray, c: np.ndarray) -> int:
        return int((((127 * np.abs(w.astype(np.int64)).sum(axis=0) * m + np.abs(c)) >> intnet.SHIFT) + 1).max())

    mats = [(params.w_hh[i], params.m_hh[i], params.c_hh[i]) for i in range(params.layers)]
    mats += [(params.w_ih[i], params.m_ih[i], params.c_ih[i]) for i in range(1, params.layers)]
    assert max(bound(*t) for t in [*mats, (params.w_out, params.m_out, params.c_out)]) < 1 << 29
    for i in range(params.layers):
        hn = bound(params.w_hh[i][:, 2 * H:], params.m_hh[i][2 * H:], params.c_hh[i][2 * H:])
        assert intnet.ONE * hn + (1 << 30) + (1 << 14) < 1 << 31
    assert 1 <= int(params.sig.min()) and int(params.sig.max()) < intnet.ONE
    assert (intnet.ONE - 1) * 2 * intnet.ONE + (1 << 14) < 1 << 31
    # Graph 2 forms z * (h - n) + 2^14 (z < 2^15, |h - n| <= 2^16) and (r * hn + 2^14 + 2^30) >= 0.
    assert int(params.sig.max()) * 2 * intnet.ONE + (1 << 14) < 1 << 31


@pytest.mark.parametrize("segments", [1, 5])
def test_network_ahead_of_the_mixer_codes_the_same_bits(monkeypatch: pytest.MonkeyPatch, segments: int) -> None:
    """Encoding steps the integer network ahead of the mixer in a second thread (its inputs are the data);
    the payload equals the step-by-step one, chunk boundaries included (AHEAD_STEPS 7 cuts mid-segment)."""
    from lmar.plugins.lmcore import block_coder

    data = fixture_input()[:1500]
    c = _codec(min_segment=len(data) // segments, max_segments=segments)
    assert c._plan(len(data)).count == segments
    monkeypatch.setattr(block_coder, "AHEAD_STEPS", 7)
    ahead = c.compress(data)
    monkeypatch.setattr(block_coder, "AHEAD_STEPS", 0)
    assert c.compress(data) == ahead
    assert c.decompress(ahead, len(data)) == data
