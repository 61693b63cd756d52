"""A small random Llama, imported as an llm codec (fp32 and int8 graphs), for the cross-CPU llm check.

Why not SmolLM2: its 135M parameters step at well under a token per second under QEMU's TCG, so a few KB
of text would take hours per emulated CPU. What the cross-CPU question depends on is the graph's kind of
arithmetic (float MatMul/attention/RMSNorm/RoPE/SiLU/softmax in fp32; int8 weight GEMMs plus the same float
ops in int8), not the parameter count, so a small model with the same architecture and importer shows it.
It is bigger than the test suite's (hidden 32, 2 layers, 316 tokens) where that costs little: a byte-level
BPE vocabulary trained on real text (``tokenizers``, like SmolLM2's), hidden 128, 4 layers, GQA 4:2 heads,
a 256-token context, so the softmax and the matrix products sum over realistic lengths, and a few hundred
training steps on real text, so its next-token distributions are peaked like a real model's.

Needs the ``import`` extra (torch, transformers) in the running Python; run from the repository root.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
#: Training text for the tokenizer: not the files the check codes.
TOKENIZER_TEXT = ("text/alice29.txt", "text/lcet10.txt")
SPECIALS = ["<|endoftext|>", "<|escape|>"]


@dataclass(frozen=True)
class ModelConfig:
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 384
    vocab: int = 4096
    context: int = 256
    seed: int = 0
    #: AdamW steps on real text (8 x 128 tokens each); 0 keeps the random weights (embeddings x8)
    train_steps: int = 150

    @property
    def name(self) -> str:
        """Codec names are ``llm-<name>`` and ``llm-<name>-int8``."""
        return f"tiny-h{self.hidden}-l{self.layers}-v{self.vocab}-s{self.train_steps}"

    def words(self) -> str:
        return (f"random Llama, hidden {self.hidden}, {self.layers} layers, {self.heads} heads ({self.kv_heads} KV), "
                f"MLP {self.intermediate}, byte-level BPE vocabulary {self.vocab}, context {self.context}, "
                f"seed {self.seed}, "
                + (f"trained {self.train_steps} steps x 8 x 128 tokens on {' + '.join(TOKENIZER_TEXT)}"
                   if self.train_steps else "untrained (embeddings x8)"))


def _write_source(cfg: ModelConfig, src: Path) -> None:
    """A Hugging Face model directory: a tokenizer trained on real text and a model briefly trained on the
    same text, so its next-token distributions are peaked like a real LLM's (a random model's are nearly
    flat, which would make rounding differences look likelier than they are); with ``train_steps`` 0,
    random weights with the embeddings sharpened x8 as in the tests."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    src.mkdir(parents=True, exist_ok=True)
    tok = ByteLevelBPETokenizer(add_prefix_space=False)
    texts = [(CORPUS / t).read_text(encoding="latin-1") for t in TOKENIZER_TEXT]
    tok.train_from_iterator(texts, vocab_size=cfg.vocab, min_frequency=2, special_tokens=SPECIALS,
                            show_progress=False)
    tok.save(str(src / "tokenizer.json"))
    (src / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": SPECIALS[0]}))
    vocab = tok.get_vocab_size()
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=vocab, hidden_size=cfg.hidden, intermediate_size=cfg.intermediate, num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads, num_key_value_heads=cfg.kv_heads, max_position_embeddings=2 * cfg.context,
        tie_word_embeddings=True))
    if cfg.train_steps:
        ids = torch.tensor([i for t in texts for i in tok.encode(t).ids])
        _train(model, ids, cfg.train_steps)
    else:
        with torch.no_grad():
            model.model.embed_tokens.weight.mul_(8.0)
    model.save_pretrained(src)


def _train(model: Any, ids: Any, steps: int, batch: int = 8, length: int = 128) -> None:
    """A few hundred AdamW steps of next-token prediction (a few minutes on a busy 2-core machine)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.01)
    model.train()
    for step in range(steps):
        starts = torch.randint(0, len(ids) - length - 1, (batch,), generator=gen)
        x = torch.stack([ids[s:s + length] for s in starts])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"[portability] training step {step}: loss {loss.item():.3f} nats/token", flush=True)
    model.eval()


def ensure_models(cfg: ModelConfig, work: Path) -> tuple[Path, dict[str, dict]]:
    """Import the model (fp32 and int8 graphs) into ``work/llm-home/<name>`` unless already there.

    Returns (LMAR_HOME, {"fp32": card, "int8": card}). The import runs in this process with the
    repository's lmar (the working tree), once per configuration.
    """
    home = work / "llm-home" / cfg.name
    stamp = home / "models.json"
    if stamp.is_file():
        saved = json.loads(stamp.read_text())
        if saved.get("config") == asdict(cfg) and all(Path(c["path"]).is_dir() for c in saved["cards"].values()):
            return home, saved["cards"]
    os.environ["LMAR_HOME"] = str(home)
    from lmar.plugins.llmcore.importer import import_model

    src = work / "llm-src" / cfg.name
    _write_source(cfg, src)
    cards = {"fp32": import_model(str(src), name=cfg.name, context=cfg.context),
             "int8": import_model(str(src), name=cfg.name, context=cfg.context, quantize="int8")}
    stamp.write_text(json.dumps({"config": asdict(cfg), "cards": cards}, indent=1))
    return home, cards
