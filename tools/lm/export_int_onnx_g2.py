"""Graph 2 of the integer byte network: the same integers as graph 1 in 78 ONNX nodes instead of 112.

Why: at batch 1 (every lm block below ``min_segment``, i.e. almost all of them) a step of the integer
graph costs ONNX Runtime's per-node overhead, not arithmetic; graph 1 with its 112 nodes plus the numpy
conversion of its outputs for the mixer made scheme cm6 ~0.75 x the speed of cm5's float GRU. Graph 2
computes exactly what :func:`lmar.plugins.lmcore.intnet.step` computes (checked against it on random and
real inputs before it is written), with these rewrites, each exact:

* both layers' recurrent products in one batched ``MatMulInteger`` (the states are known at step start);
* signed floor shifts by wrapping: a value y with |y| < 2^63 cast to uint64 is y mod 2^64; its logical
  right shift by s is 2^(64-s) + floor(y / 2^s) for y < 0, and the cast to int32 drops that 2^(64-s)
  (a multiple of 2^32): so ``Cast(u64) -> BitShift -> Cast(i32)`` is floor(y / 2^s) for every y whose
  quotient fits int32, with no lift to add or take off; the accumulator rescale multiplies and adds in
  uint64 (a ring: the low 64 bits of acc * m + c are the same however the wrap happens);
* a non-negative int32 floor shift as ``Div`` (truncation equals floor there): the matmul operand and
  the candidate gate's ``(r * hn + 2^14) >> 15``, whose lift of 2^15 is taken off inside the layer's
  input constants (the embedding table's and ``c_ih``'s candidate columns);
* gate tables rotated by half their size and indexed with the signed clipped pre-activation (``Gather``
  reads a negative index from the end), so no index offset is added;
* the mixer's inputs made in the graph, as float32 values of exact integers: ``mix_logits`` = logits / 16
  and ``mix_hidden`` = top state / 2^15 (the mixer's ``floor(v * 64 + 0.5)`` then reads ``(h + 256) >> 9``,
  what graph 1 handed it through numpy).

Contract: inputs ``byte`` int64 [B], ``state`` int32 [L, B, H]; outputs ``state_out`` int32 [L, B, H],
``mix_logits`` float32 [1, B, 256], ``mix_hidden`` float32 [1, B, H], ``logits`` int32 [1, B, 256].
The model property ``lmar.intnet.graph`` = "2"; :func:`intnet.load_onnx` undoes the folded constants.

    .venv/bin/python tools/lm/export_int_onnx_g2.py --from bytegru-v3i --name bytegru-v3i2
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_int_onnx import add_output_args, checked_bytes, output_and_text  # noqa: E402

from lmar.plugins.lmcore import intnet  # noqa: E402
from lmar.plugins.lmcore.intnet import A_ZERO, LUT_HALF, ONE, SHIFT, IntParams  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "plugins" / "models"
OPSET = 17
GRAPH = "2"


def fold(p: IntParams) -> dict[str, np.ndarray]:
    """The constants graph 2 stores (:func:`intnet.load_onnx` inverts this)."""
    H, L = p.hidden, p.layers
    emb = p.emb.astype(np.int32).copy()
    emb[:, 2 * H:] -= ONE  # the 2^15 lift of the candidate's (r * hn + 2^14 + 2^30) // 2^15
    out = {"emb_table": emb,
           "lut_sigmoid_rot": np.roll(p.sig.astype(np.int32), -LUT_HALF),
           "lut_tanh_rot": np.roll(p.tanh.astype(np.int32), -LUT_HALF),
           "w_hh": np.stack(p.w_hh), "m_hh": np.stack(p.m_hh)[:, None, :].astype(np.int64).astype(np.uint64),
           "c_hh": np.stack(p.c_hh)[:, None, :].astype(np.int64).astype(np.uint64),
           "w_out": p.w_out, "m_out": p.m_out.astype(np.int64).astype(np.uint64),
           "c_out": p.c_out.astype(np.int64).astype(np.uint64)}
    for layer in range(1, L):
        c = p.c_ih[layer].astype(np.int64).copy()
        c[2 * H:] -= ONE << SHIFT
        out[f"w_ih{layer}"] = p.w_ih[layer]
        out[f"m_ih{layer}"] = p.m_ih[layer].astype(np.int64).astype(np.uint64)
        out[f"c_ih{layer}"] = c.astype(np.uint64)
    return out


def build(p: IntParams, name: str):
    from onnx import TensorProto, helper, numpy_helper

    I32, U8, U64, F32 = TensorProto.INT32, TensorProto.UINT8, TensorProto.UINT64, TensorProto.FLOAT
    L, H = p.layers, p.hidden
    nodes: list = []
    inits = [numpy_helper.from_array(v, k) for k, v in fold(p).items()]
    count = [0]

    def const(value, dtype) -> str:
        count[0] += 1
        inits.append(numpy_helper.from_array(np.array(value, dtype=dtype), f"k{count[0]}"))
        return f"k{count[0]}"

    def op(kind: str, *inputs: str, n_out: int = 1, **attrs):
        count[0] += 1
        outs = [f"{kind.lower()}{count[0]}_{i}" for i in range(n_out)]
        nodes.append(helper.make_node(kind, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def i32(v: int) -> str:
        return const(v, np.int32)

    split_gates = const([2 * H, H], np.int64)
    split_rz = const([H, H], np.int64)
    zp = const(A_ZERO, np.uint8)

    def operand(h: str) -> str:
        """uint8 clip((h + 128) >> 8, -127, 127) + 128: (h + 128 + 2^15) // 256 is non-negative for h >= -2^15."""
        q = op("Div", op("Add", h, i32(128 + A_ZERO * 256)), i32(256))
        return op("Cast", op("Clip", q, i32(A_ZERO - 127), i32(A_ZERO + 127)), to=U8)

    def floor_shift(y: str, bits: int, wrapped: bool = False) -> str:
        """floor(y / 2^bits) as int32 for a signed int32 y, or a uint64 holding a signed int64 modulo 2^64
        (``wrapped``), by the wrap."""
        y = y if wrapped else op("Cast", y, to=U64)
        return op("Cast", op("BitShift", y, const(bits, np.uint64), direction="RIGHT"), to=I32)

    def linear(a_u8: str, key: str) -> str:
        acc = op("Cast", op("MatMulInteger", a_u8, f"w_{key}", zp), to=U64)
        return floor_shift(op("Add", op("Mul", acc, f"m_{key}"), f"c_{key}"), SHIFT, wrapped=True)

    def cell(x: str, gh: str, h: str) -> str:
        xrz, xn = op("Split", x, split_gates, n_out=2, axis=-1)
        hrz, hn = op("Split", gh, split_gates, n_out=2, axis=-1)
        pre = op("Clip", op("Add", xrz, hrz), i32(-LUT_HALF), i32(LUT_HALF - 1))
        r, z = op("Split", op("Gather", "lut_sigmoid_rot", pre, axis=0), split_rz, n_out=2, axis=-1)
        # (r * hn + 2^14 + 2^30) // 2^15 = floor((r * hn + 2^14) / 2^15) + 2^15; x's candidate part holds -2^15.
        rh = op("Div", op("Add", op("Mul", r, hn), i32((1 << 30) + (1 << 14))), i32(1 << 15))
        n = op("Gather", "lut_tanh_rot", op("Clip", op("Add", xn, rh), i32(-LUT_HALF), i32(LUT_HALF - 1)), axis=0)
        # h + floor(((2^15 - z)(n - h) + 2^14) / 2^15) = n + floor((z (h - n) + 2^14) / 2^15) (the two
        # differ by (n - h) 2^15 inside the floor); z (h - n) fits int32: 1 <= z < 2^15, |h - n| <= 2^16.
        prod = op("Add", op("Mul", z, op("Sub", h, n)), i32(1 << 14))
        return op("Add", n, floor_shift(prod, 15))

    hs = op("Split", "state", n_out=L, axis=0) if L > 1 else ["state"]
    hs = [hs] if isinstance(hs, str) else hs
    gh_all = linear(operand("state"), "hh")  # [L, B, 3H]: every layer's recurrent side at once
    ghs = op("Split", gh_all, n_out=L, axis=0) if L > 1 else gh_all
    ghs = [ghs] if isinstance(ghs, str) else ghs
    x = op("Gather", "emb_table", "byte", axis=0)  # [B, 3H], broadcast against [1, B, 3H]
    outs: list[str] = []
    for layer in range(L):
        if layer:
            x = linear(operand(outs[-1]), f"ih{layer}")
        outs.append(cell(x, ghs[layer], hs[layer]))
    logits = linear(operand(outs[-1]), "out")  # [1, B, 256]
    nodes[-1].output[0] = "logits"
    logits = "logits"
    nodes.append(helper.make_node("Mul", [op("Cast", logits, to=F32), const(1 / 16, np.float32)], ["mix_logits"]))
    nodes.append(helper.make_node("Mul", [op("Cast", outs[-1], to=F32), const(2.0 ** -15, np.float32)],
                                  ["mix_hidden"]))
    nodes.append(helper.make_node("Concat", outs, ["state_out"], axis=0) if L > 1
                 else helper.make_node("Identity", outs, ["state_out"]))
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("byte", TensorProto.INT64, ["B"]),
         helper.make_tensor_value_info("state", I32, [L, "B", H])],
        [helper.make_tensor_value_info("state_out", I32, [L, "B", H]),
         helper.make_tensor_value_info("mix_logits", F32, [1, "B", 256]),
         helper.make_tensor_value_info("mix_hidden", F32, [1, "B", H]),
         helper.make_tensor_value_info("logits", I32, [1, "B", 256])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="lmar")
    model.ir_version = 8
    helper.set_model_props(model, {"lmar.intnet.graph": GRAPH})
    return model


def verify(path: Path, p: IntParams, text: bytes) -> None:
    """onnxruntime runs graph 2 to exactly the reference's integers: random states (extremes included),
    then real text; the mixer inputs are the values :func:`intnet.mixer_inputs` gives the mixer."""
    from lmar.plugins.lmcore import runtime

    sess = runtime._session(str(path), "verify-g2", "CPUExecutionProvider")
    names = ["state_out", "logits", "mix_logits", "mix_hidden"]

    def same(byte: np.ndarray, state: np.ndarray) -> np.ndarray:
        so, lo, ml, mh = sess.run(names, {"byte": byte, "state": state})
        lr, sr = intnet.step(p, byte, state)
        lg, hid = intnet.mixer_inputs(lr, sr)
        ok = (np.array_equal(so, sr) and np.array_equal(lo[0], lr) and np.array_equal(ml[0], lg)
              and np.array_equal(intnet.hidden_units(mh[0]), intnet.hidden_units(hid)))
        if not ok:
            raise SystemExit(f"export_int_onnx_g2: onnxruntime and the reference differ (batch {len(byte)})")
        return so

    rng = np.random.default_rng(0)
    for b in (1, 2, 5, 33):
        state = rng.integers(-ONE, ONE + 1, (p.layers, b, p.hidden)).astype(np.int32)
        state[:, 0] = ONE
        state[:, -1] = -ONE
        same(rng.integers(0, 257, b).astype(np.int64), state)
    segs = np.frombuffer(text[: 8 * 512], np.uint8).reshape(8, -1).astype(np.int64)
    state = np.zeros((p.layers, 8, p.hidden), np.int32)
    prev = np.full(8, 256, np.int64)
    for t in range(segs.shape[1]):
        state = same(prev, state)
        prev = segs[:, t]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="source", default="bytegru-v3i", help="the shipped integer model (graph 1)")
    add_output_args(ap)
    args = ap.parse_args(argv)
    target = output_and_text(args, "export_int_onnx_g2")
    if target is None:
        return 2
    out, text = target
    src = MODELS / f"{args.source}.onnx"
    p = intnet.load_onnx(src)
    model = build(p, args.name)

    def check(path: Path) -> None:
        verify(path, p, text)
        if not intnet.load_onnx(path).same_integers(p):
            raise SystemExit("export_int_onnx_g2: load_onnx does not read back the source's integers")

    blob = checked_bytes(model, check)
    out.write_bytes(blob)
    src_card = json.loads(src.with_suffix(".json").read_text())
    card = {**src_card, "name": args.name, "onnx_sha256": hashlib.sha256(blob).hexdigest(), "onnx_bytes": len(blob),
            "graph": {"version": int(GRAPH), "nodes": len(model.graph.node),
                      "same_integers_as": {"model": args.source, "onnx_sha256": src_card["onnx_sha256"]},
                      "outputs": "state_out, mix_logits (logits / 16), mix_hidden (top state / 2^15), logits",
                      "command": f"tools/lm/export_int_onnx_g2.py --from {args.source} --name {args.name}"}}
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"{out.name}: {len(blob):,d} bytes, {len(model.graph.node)} nodes, sha256 {card['onnx_sha256'][:12]}...; "
          f"onnxruntime == reference")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
