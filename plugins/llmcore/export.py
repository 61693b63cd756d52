"""Load a pretrained Llama-architecture model and export its one-token step graph to ONNX.

Why a hand-written step module instead of transformers' own export: coding needs exactly one graph that
the encoder and the decoder run identically, one token per segment per call, with the KV cache owned by
the caller (a sliding window that the runtime rewrites in place). Full-sequence and step-by-step forward
passes never agree bit for bit, so only the step graph exists.

Graph contract (``B`` segments, ``W`` cache slots, ``L`` layers, ``K`` kv heads, ``D`` head dim):

- inputs ``input_ids`` int64 [B]; ``cos``/``sin`` float32 [B, D] (rotary angles of the current position,
  computed by the runtime in float64); ``mask`` float32 [B, W] (0 for a filled slot, -1e9 for an empty
  one); ``past_k_i``/``past_v_i`` float32 [B, K, W, D] for each layer (keys already rotated).
- outputs ``logits`` float32 [B, V]; ``new_k``/``new_v`` float32 [L, B, K, D] for the current token, keys
  *not* rotated (the runtime rotates them, so it can re-place attention-sink keys as the window slides).

torch and transformers are imported lazily: only ``lmar model import`` needs them.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lmar.errors import LmarError

OPSET = 17


@dataclass(frozen=True)
class Shape:
    """What the runtime must know about the exported graph (stored in the model card)."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden: int
    vocab_size: int
    rope_theta: float
    max_position: int

    @classmethod
    def from_config(cls, cfg: Any) -> "Shape":
        if getattr(cfg, "model_type", "llama") != "llama":
            raise LmarError(f"only Llama-architecture models are supported, not {cfg.model_type}")
        if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False):
            raise LmarError("Llama variants with attention/MLP bias are not supported")
        rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
        rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
        if rope_type not in (None, "default"):
            raise LmarError(f"rotary scaling '{rope_type}' is not supported")
        theta = (rope.get("rope_theta") if isinstance(rope, dict) else None) or getattr(cfg, "rope_theta", 10000.0)
        heads = cfg.num_attention_heads
        return cls(
            layers=cfg.num_hidden_layers, heads=heads,
            kv_heads=getattr(cfg, "num_key_value_heads", None) or heads,
            head_dim=getattr(cfg, "head_dim", None) or cfg.hidden_size // heads,
            hidden=cfg.hidden_size, vocab_size=cfg.vocab_size, rope_theta=float(theta),
            max_position=int(getattr(cfg, "max_position_embeddings", 2048)),
        )


def build_step_module(model: Any, shape: Shape):  # -> torch.nn.Module
    """A Llama decoder step that reads the model's (fp32) weights; see the module docstring."""
    import torch
    from torch import nn

    class RMSNorm(nn.Module):
        def __init__(self, weight: torch.Tensor, eps: float) -> None:
            super().__init__()
            self.weight = nn.Parameter(weight.detach().float().clone(), requires_grad=False)
            self.eps = eps

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    def linear(w: torch.Tensor) -> nn.Linear:
        lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
        lin.weight = nn.Parameter(w.detach().float().clone(), requires_grad=False)
        return lin

    eps = float(getattr(model.config, "rms_norm_eps", 1e-6))
    inner = model.model
    H, K, D = shape.heads, shape.kv_heads, shape.head_dim
    G = H // K
    scale = 1.0 / math.sqrt(D)

    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rot * sin

    class Layer(nn.Module):
        def __init__(self, src: Any) -> None:
            super().__init__()
            a, m = src.self_attn, src.mlp
            self.ln1 = RMSNorm(src.input_layernorm.weight, eps)
            self.ln2 = RMSNorm(src.post_attention_layernorm.weight, eps)
            self.q, self.k, self.v, self.o = (linear(a.q_proj.weight), linear(a.k_proj.weight),
                                              linear(a.v_proj.weight), linear(a.o_proj.weight))
            self.gate, self.up, self.down = linear(m.gate_proj.weight), linear(m.up_proj.weight), linear(m.down_proj.weight)

        def forward(self, x, cos, sin, mask, pk, pv):  # type: ignore[no-untyped-def]
            B = x.shape[0]
            h = self.ln1(x)
            q = rotate(self.q(h).view(B, H, D), cos[:, None, :], sin[:, None, :]).view(B, K, G, D)
            k_raw = self.k(h).view(B, K, D)
            v = self.v(h).view(B, K, D)
            k = rotate(k_raw, cos[:, None, :], sin[:, None, :])
            s_past = torch.matmul(q, pk.transpose(-1, -2)) * scale + mask[:, None, None, :]  # [B,K,G,W]
            s_self = (q * k[:, :, None, :]).sum(-1, keepdim=True) * scale  # [B,K,G,1]
            p = torch.softmax(torch.cat([s_past, s_self], dim=-1), dim=-1)
            w = pk.shape[2]
            o = torch.matmul(p[..., :w], pv) + p[..., w:] * v[:, :, None, :]
            x = x + self.o(o.reshape(B, H * D))
            h = self.ln2(x)
            x = x + self.down(torch.nn.functional.silu(self.gate(h)) * self.up(h))
            return x, k_raw, v

    class Step(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            emb = inner.embed_tokens.weight.detach().float().clone()
            self.embed = nn.Parameter(emb, requires_grad=False)
            self.layers = nn.ModuleList(Layer(l) for l in inner.layers)
            self.norm = RMSNorm(inner.norm.weight, eps)
            tied = getattr(model.config, "tie_word_embeddings", False) or model.lm_head.weight is inner.embed_tokens.weight
            self.head = None if tied else nn.Parameter(model.lm_head.weight.detach().float().clone(), requires_grad=False)

        def forward(self, input_ids, cos, sin, mask, *past):  # type: ignore[no-untyped-def]
            x = self.embed[input_ids]
            ks, vs = [], []
            for i, layer in enumerate(self.layers):
                x, k, v = layer(x, cos, sin, mask, past[2 * i], past[2 * i + 1])
                ks.append(k)
                vs.append(v)
            h = self.norm(x)
            logits = torch.matmul(h, (self.embed if self.head is None else self.head).t())
            return logits, torch.stack(ks), torch.stack(vs)

    return Step().eval()


def export_onnx(model: Any, shape: Shape, path: Path) -> None:
    """Write the step graph (fp32, batch and window dynamic) to ``path`` as one self-contained file."""
    import torch

    step = build_step_module(model, shape)
    B, W = 2, 8
    names = ["input_ids", "cos", "sin", "mask"]
    args: list[Any] = [torch.zeros(B, dtype=torch.long), torch.ones(B, shape.head_dim), torch.zeros(B, shape.head_dim),
                       torch.zeros(B, W)]
    dyn: dict[str, dict[int, str]] = {"input_ids": {0: "batch"}, "cos": {0: "batch"}, "sin": {0: "batch"},
                                      "mask": {0: "batch", 1: "window"}}
    for i in range(shape.layers):
        for kv in ("k", "v"):
            n = f"past_{kv}_{i}"
            names.append(n)
            args.append(torch.zeros(B, shape.kv_heads, W, shape.head_dim))
            dyn[n] = {0: "batch", 2: "window"}
    outs = ["logits", "new_k", "new_v"]
    dyn.update({"logits": {0: "batch"}, "new_k": {1: "batch"}, "new_v": {1: "batch"}})
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is what we want here
        torch.onnx.export(step, tuple(args), str(path), input_names=names, output_names=outs, dynamic_axes=dyn,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)


def load_hf_model(model_dir: Path, gguf_file: str | None, log: Callable[[str], None]) -> tuple[Any, Any]:
    """(model in fp32 eval mode, tokenizer) from a Hugging Face directory or a GGUF file in ``model_dir``."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise LmarError(f"model import needs the 'import' extra (pip install 'lmar[import]'): {exc}") from None
    kw: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        log("loading tokenizer")
        tok = AutoTokenizer.from_pretrained(str(model_dir), **kw)
        log("loading and dequantising weights" if gguf_file else "loading weights")
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, **kw)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise LmarError(f"cannot load model from {model_dir}: {exc}".splitlines()[0]) from None
    # A GGUF-loaded model carries a quantisation config although its tensors are now plain fp32.
    if getattr(model.config, "quantization_config", None) is not None:
        try:
            del model.config.quantization_config
        except AttributeError:
            model.config.quantization_config = None
    model.eval()  # weights are fp32 already (dequantised on load); .float() is refused for GGUF-loaded models
    return model, tok


def reference_logits(model: Any, ids: list[int]):  # -> numpy array [T, V]
    """Full-sequence logits from the source model, to check the exported graph against."""
    import torch

    with torch.no_grad():
        out = model(torch.tensor([ids], dtype=torch.long), use_cache=False)
    return out.logits[0].float().numpy()


def count_parameters(model: Any) -> int:
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def conversion_versions() -> dict[str, str]:
    """Versions of everything that shaped the exported weights and graph (recorded in the card)."""
    from importlib import metadata

    out: dict[str, str] = {"opset": str(OPSET)}
    for dist in ("lmar", "torch", "transformers", "gguf", "onnx", "onnxruntime"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
