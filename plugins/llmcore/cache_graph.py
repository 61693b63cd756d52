"""A tiny ONNX graph that writes cache slots where the cache lives (on the GPU, for the CUDA provider).

Why a graph: ONNX Runtime's Python API copies whole OrtValues between host and device, never a slice,
so writing one slot of a device-resident KV cache from Python would move the whole cache (gigabytes at
64 segments) every step. This graph runs on the cache's own provider: ``ScatterElements`` along the slot
axis copies the cache with ``n`` slots replaced, for keys and values in one run. It only copies (no
arithmetic), so the cache holds exactly the bytes the host computed, on any provider.

Why written by hand: the ``onnx`` package is an import-time extra, not a runtime dependency, and this
graphs are a few nodes; :func:`_model` encodes the protobuf directly (field numbers from onnx.proto3).
Two more one-node graphs make a zeroed cache (``ConstantOfShape``) and grow one (``Pad``) on the device,
so the cache never passes through host memory (at thousands of segments it would not fit there).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import ort_runtime
from .coding import _varint as unsigned_varint

_SESSIONS = ort_runtime.SessionCache()
_FLOAT, _INT64 = 1, 7  # TensorProto.DataType
_ATTR_INT, _ATTR_TENSOR = 2, 4  # AttributeProto.AttributeType


def _varint(n: int) -> bytes:
    """Protobuf's varint: a negative int64 is written as its two's complement in 64 bits."""
    return unsigned_varint(n & ((1 << 64) - 1))


def _len(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _int(field: int, n: int) -> bytes:
    return _varint(field << 3) + _varint(n)


def _str(field: int, s: str) -> bytes:
    return _len(field, s.encode())


def _value_info(name: str, elem: int, dims: list[str]) -> bytes:
    shape = b"".join(_len(1, _str(2, d)) for d in dims)  # TensorShapeProto.dim { dim_param }
    tensor_type = _int(1, elem) + _len(2, shape)
    return _str(1, name) + _len(2, _len(1, tensor_type))  # ValueInfoProto { name, type { tensor_type } }


def _node(op: str, inputs: list[str], outputs: list[str], attrs: bytes = b"") -> bytes:
    return (b"".join(_str(1, i) for i in inputs) + b"".join(_str(2, o) for o in outputs)
            + _str(3, outputs[0]) + _str(4, op) + attrs)


def _model(name: str, nodes: list[bytes], inputs: list[bytes], outputs: list[bytes]) -> bytes:
    graph = (b"".join(_len(1, n) for n in nodes) + _str(2, name)
             + b"".join(_len(11, i) for i in inputs) + b"".join(_len(12, o) for o in outputs))
    opset = _str(1, "") + _int(2, 13)
    return _int(1, 8) + _str(2, "lmar") + _len(7, graph) + _len(8, opset)  # ir_version 8, opset 13


_CACHE = ["l", "b", "h", "c", "d"]


def model_bytes() -> bytes:
    """The write graph: ``k_out, v_out = k, v`` with slots ``slots`` [n] replaced by ``k_upd, v_upd``."""
    upd = ["l", "b", "h", "n", "d"]
    shape5 = np.array([1, 1, 1, -1, 1], "<i8")
    tensor = _int(1, 5) + _int(2, _INT64) + _len(9, shape5.tobytes())  # TensorProto { dims, data_type, raw_data }
    value_attr = _str(1, "value") + _len(5, tensor) + _int(20, _ATTR_TENSOR)
    axis_attr = _str(1, "axis") + _int(3, 3) + _int(20, _ATTR_INT)
    nodes = [
        _node("Constant", [], ["shape5"], _len(5, value_attr)),
        _node("Reshape", ["slots", "shape5"], ["slots5"]),
        _node("Shape", ["k_upd"], ["upd_shape"]),
        _node("Expand", ["slots5", "upd_shape"], ["idx"]),
        _node("ScatterElements", ["k", "idx", "k_upd"], ["k_out"], _len(5, axis_attr)),
        _node("ScatterElements", ["v", "idx", "v_upd"], ["v_out"], _len(5, axis_attr)),
    ]
    inputs = [_value_info("k", _FLOAT, _CACHE), _value_info("v", _FLOAT, _CACHE), _value_info("k_upd", _FLOAT, upd),
              _value_info("v_upd", _FLOAT, upd), _value_info("slots", _INT64, ["n"])]
    outputs = [_value_info("k_out", _FLOAT, _CACHE), _value_info("v_out", _FLOAT, _CACHE)]
    return _model("kv_cache_write", nodes, inputs, outputs)


def zeros_bytes() -> bytes:
    """``zeros`` float32 of shape ``shape`` [5], made where the session runs (no host buffer of that size)."""
    return _model("kv_cache_zeros", [_node("ConstantOfShape", ["shape"], ["zeros"])],
                  [_value_info("shape", _INT64, ["five"])], [_value_info("zeros", _FLOAT, _CACHE)])


def pad_bytes() -> bytes:
    """``out = x`` zero-padded by ``pads`` [10] (ONNX Pad, constant mode): grows a cache where it lives."""
    return _model("kv_cache_pad", [_node("Pad", ["x", "pads"], ["out"])],
                  [_value_info("x", _FLOAT, _CACHE), _value_info("pads", _INT64, ["ten"])],
                  [_value_info("out", _FLOAT, _CACHE)])


_GRAPHS = {"write": model_bytes, "zeros": zeros_bytes, "pad": pad_bytes}


def session(provider: str, which: str = "write") -> Any:
    """The session of graph ``which`` ("write", "zeros", "pad") on ``provider`` (cached; no weights)."""
    def make() -> Any:
        rt = ort_runtime.ort()
        so = rt.SessionOptions()
        so.log_severity_level = 3
        so.intra_op_num_threads = 1
        return rt.InferenceSession(_GRAPHS[which](), so, providers=[provider])

    return _SESSIONS.get((provider, which), make)
