"""Read a shipped ``bytegru`` ONNX export back into a torch :class:`~model.ByteGRU` (to continue training it).

Why this exists: the training checkpoint of a shipped model is a work file that a fresh machine does not
have, but the ONNX graph in the package holds every weight. ONNX's GRU stores its gates in the order
(update z, reset r, candidate h) and torch's in (r, z, n), and both keep input and recurrent biases
apart, so the rows are reordered here; the result is checked against onnxruntime by the caller.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from model import ByteGRU, ModelConfig


def _zrh_to_rzn(a: np.ndarray, hidden: int) -> np.ndarray:
    z, r, h = a[:hidden], a[hidden:2 * hidden], a[2 * hidden:]
    return np.concatenate([r, z, h], axis=0)


def load_onnx_weights(path: Path) -> ByteGRU:
    """A ByteGRU whose weights are those of the ONNX graph at ``path``."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    grus = [n for n in graph.node if n.op_type == "GRU"]
    embed = init["model.embed.weight"]
    w0 = init[grus[0].input[1]]
    hidden = w0.shape[1] // 3
    model = ByteGRU(ModelConfig(embed=embed.shape[1], hidden=hidden, layers=len(grus)))
    sd = model.state_dict()
    sd["embed.weight"] = torch.from_numpy(embed.copy())
    for layer, node in enumerate(grus):
        W, R, B = (init[node.input[i]][0] for i in (1, 2, 3))
        sd[f"gru.weight_ih_l{layer}"] = torch.from_numpy(_zrh_to_rzn(W, hidden).copy())
        sd[f"gru.weight_hh_l{layer}"] = torch.from_numpy(_zrh_to_rzn(R, hidden).copy())
        sd[f"gru.bias_ih_l{layer}"] = torch.from_numpy(_zrh_to_rzn(B[:3 * hidden], hidden).copy())
        sd[f"gru.bias_hh_l{layer}"] = torch.from_numpy(_zrh_to_rzn(B[3 * hidden:], hidden).copy())
    mm = [n for n in graph.node if n.op_type == "MatMul"][0]
    sd["head.weight"] = torch.from_numpy(init[mm.input[1]].T.copy())
    sd["head.bias"] = torch.from_numpy(init["model.head.bias"].copy())
    model.load_state_dict(sd)
    return model
