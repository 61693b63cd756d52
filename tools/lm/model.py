"""Byte-level GRU language model shipped with lmar.

Size (~0.41M parameters): training runs on a shared 2-core CPU where one thread gets a few GFLOP/s, so
a compute-optimal model for ~1.5 CPU-hours is small; it is also ~2.6x cheaper per coded byte than 1M.

Why a GRU: on a 2-core CPU a small recurrent model learns byte statistics much faster than a byte
transformer and its one-step inference graph (embed -> GRU -> linear) costs about a millisecond for a
batch of segments, which is what an arithmetic-coding codec needs (one call per coded byte position).

Input vocabulary is 257: bytes 0..255 plus ``BOS`` (256), fed as the first input of every independent
segment so the model learns to predict a segment's first byte from a zero state. Outputs are 256
unnormalised natural-log scores for the next byte.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

BOS = 256
VOCAB_IN = 257
VOCAB_OUT = 256


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network; stored in checkpoints and the model card so exports can be rebuilt."""

    embed: int = 32
    hidden: int = 192
    layers: int = 2

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class ByteGRU(nn.Module):
    """Embedding -> multi-layer GRU -> linear head over the 256 byte values."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(VOCAB_IN, config.embed)
        self.gru = nn.GRU(config.embed, config.hidden, num_layers=config.layers, batch_first=False)
        self.head = nn.Linear(config.hidden, VOCAB_OUT)

    def forward(self, tokens: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run a whole chunk: ``tokens`` int64 [T, B] -> (logits [T, B, 256], state [L, B, H]).

        Time-major so training and the exported one-step graph use the same GRU layout.
        """
        x = self.embed(tokens)
        y, state_out = self.gru(x, state)
        return self.head(y), state_out

    def zero_state(self, batch: int) -> torch.Tensor:
        """The state every segment starts from (the codec codes segments independently)."""
        return torch.zeros(self.config.layers, batch, self.config.hidden)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class ByteGRUStep(nn.Module):
    """One step of :class:`ByteGRU` with the signature of the exported ONNX graph.

    ``byte`` int64 [B], ``state`` float32 [L, B, H] -> ``logits`` [B, 256], ``state_out`` [L, B, H].
    """

    def __init__(self, model: ByteGRU) -> None:
        super().__init__()
        self.model = model

    def forward(self, byte: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, state_out = self.model(byte.unsqueeze(0), state)
        return logits.squeeze(0), state_out


def build(config: ModelConfig | None = None, seed: int = 0) -> ByteGRU:
    """A freshly initialised model; the seed makes the placeholder export reproducible."""
    torch.manual_seed(seed)
    return ByteGRU(config or ModelConfig())
