"""``lm``: a byte-level GRU mixed with adaptive context statistics, driven through binary arithmetic coding.

The plugin file only adapts :mod:`lmar.plugins.lmcore` to the codec contract; the schemes live there.
New members are coded with the live scheme (:data:`ENCODE_SCHEMES`); every older scheme only decodes,
and the frozen ones of :mod:`lmar.plugins.lmcore.legacy` are imported only when such a member is read.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import lmar
from lmar.codec import Codec
from lmar.errors import CodecError, CodecUnavailable
from lmar.plugins.lmcore import model_files, prior
from lmar.plugins.lmcore.payload import SCHEME_FORMATS

if TYPE_CHECKING:
    from lmar.plugins.lmcore.runtime import StepModel

#: The network new members are coded with. Older ones stay shipped: a member records the model it was
#: coded with (name and sha256) and decodes only with that exact file (bytegru-v1: lm versions 1-2;
#: bytegru-v2: versions 3-4; bytegru-v3 with its mixer prior: version 5; the integer bytegru-v3i with
#: its own prior: version 6). bytegru-v3i2 is bytegru-v3i's integers in a leaner graph (graph 2, ~30 %
#: fewer ONNX nodes, the mixer's inputs made in the graph): the same payload bits, the same prior file;
#: it only names a different file, so members made with either decode with either's file installed.
DEFAULT_MODEL = "bytegru-v3i2"
#: The network a scheme gets when the caller names none: cm6 needs an integer network, the older
#: schemes a float one (their members always record the model, so this only serves tools and tests).
FLOAT_MODEL = "bytegru-v3"
INTEGER_SCHEMES = ("cm6",)
#: Largest block this codec will decode; a corrupt header must not make it allocate without bound.
MAX_BLOCK = 1 << 30
#: Coding schemes this lmar decodes: ``cm1`` (numpy mixer, lmar <= 0.1 archives), ``cm2`` to ``cm6``
#: (compiled; cm3 has a larger mixer than cm2, cm4 adds character-class and line-shape contexts, cm5 is
#: cm4 starting every block from the network's mixer prior instead of cold tables, cm6 is cm5's
#: arithmetic driven by the integer network, whose outputs are the same on every machine).
SCHEMES = tuple(SCHEME_FORMATS)
#: Schemes new members may be coded with; the others only decode (their members came from older lmar).
ENCODE_SCHEMES = ("cm6",)
#: Schemes of :mod:`lmar.plugins.lmcore.legacy` (frozen, decode only, their own code; named here so that
#: choosing a decoder does not import the package).
LEGACY_SCHEMES = ("cm1",)


def _runtime():
    """The network's runtime (numpy, onnxruntime), imported on first use: every lmar command loads the
    plugins, and ``lmar list`` or a fast-level ``create`` should not pay for it."""
    from lmar.plugins.lmcore import runtime

    return runtime


def _blocks():
    """The compiled block coder, imported on first use: numba costs ~0.5 s, which ``lmar list`` should not pay."""
    from lmar.plugins.lmcore import block_coder

    return block_coder


def _legacy():
    """The frozen decode-only schemes, imported only when a member of one of them is decoded."""
    from lmar.plugins.lmcore import legacy

    return legacy


class LmCodec(Codec):
    name = "lm"
    kind = "lm"
    slow = True
    version = 6  # 6: scheme cm6; 5: cm5; 4: cm4; 3: cm3; 2: cm2; 1: cm1 (all still decode)
    description = "byte GRU (ONNX) + compiled context mixing, binary arithmetic coding of lockstep segments"
    block_size = 16 << 20
    # Per direction on 2 CPU cores (tools/bench_lm.py on 1 MB): cm4 26-30e3; cm5 17-22e3 a session later,
    # on a slower machine, and equal to cm4 measured side by side; cm6 ~0.8x cm5 side by side on a shared
    # machine (21-27e3 vs 27-35e3): its integer graph costs ~2.3x the float one in CPU per step. Segments of
    # 1 MiB (below) run fewer segments in lockstep: one segment costs ~1.55x the CPU per byte of eight
    # (256 KB of a source tree, one process: 32.7 vs 21.1 s), so the figure here is the one-segment one.
    speed = 13e3
    verify_by_default = True
    default_params = {"model": DEFAULT_MODEL, "model_sha256": "", "max_segments": 256, "min_segment": 1 << 20,
                      "scheme": "cm6", "prior_sha256": ""}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        scheme = self.params["scheme"]
        if scheme not in SCHEMES:
            raise CodecUnavailable(f"lm: coding scheme {scheme!r} is not supported by this lmar")
        if int(self.params["max_segments"]) < 1 or int(self.params["min_segment"]) < 1:
            raise CodecError("lm: max_segments and min_segment must be positive")
        if "model" not in params:
            self.params["model"] = DEFAULT_MODEL if scheme in INTEGER_SCHEMES else FLOAT_MODEL
        card = model_files.require_model(self.params["model"], self.params["model_sha256"] or None)
        if (card.numerics == _runtime().INTEGER) != (scheme in INTEGER_SCHEMES):
            need = "an integer" if scheme in INTEGER_SCHEMES else "a float"
            raise CodecError(f"lm: scheme {scheme} needs {need} network; '{card.name}' is {card.numerics}")
        if not self.params["model_sha256"]:
            self.params["model_sha256"] = model_files.file_sha256(card.path)
        self._card = card
        self._prior: prior.Prior | None = None
        if self.params["scheme"] in prior.PRIOR_SCHEMES:
            self._prior = prior.require_prior(card, self.params["scheme"], self.params["prior_sha256"] or None)
            self.params["prior_sha256"] = self._prior.sha256
        self._net: StepModel | None = None

    # -- discovery -------------------------------------------------------------------------------------
    @classmethod
    def availability(cls) -> tuple[bool, str]:
        try:
            card = model_files.require_model(DEFAULT_MODEL, None)
            if cls.default_params["scheme"] in prior.PRIOR_SCHEMES:
                prior.require_prior(card, cls.default_params["scheme"], None)
        except CodecUnavailable as exc:
            return False, str(exc)
        return True, ""

    @classmethod
    def info(cls) -> dict[str, Any]:
        path = model_files.find_model(DEFAULT_MODEL)
        if path is None:
            return {"model": DEFAULT_MODEL, "installed": False}
        info = {"model": DEFAULT_MODEL, "model_sha256": model_files.file_sha256(path),
                "model_bytes": path.stat().st_size, "scheme": cls.default_params["scheme"]}
        if cls.default_params["scheme"] in prior.PRIOR_SCHEMES:
            card = model_files.load_card(DEFAULT_MODEL)
            ppath = prior.prior_path(card, cls.default_params["scheme"])
            info["prior_sha256"] = model_files.file_sha256(ppath) if ppath.is_file() else "(not installed)"
        return info

    @classmethod
    def describe(cls, params: Mapping[str, Any] | None = None) -> str:
        if params is None:  # the listing: the default model as installed here
            path = model_files.find_model(DEFAULT_MODEL)
            sha = model_files.file_sha256(path) if path is not None else ""
            return f"model {DEFAULT_MODEL} {sha[:12]}".rstrip()
        model, sha = params.get("model"), params.get("model_sha256")
        words = [f"model {model}" if isinstance(model, str) and model else "its model"]
        if isinstance(sha, str) and sha:
            words.append(f"sha256 {sha[:12]}")
        return " ".join(words)

    # -- coding ----------------------------------------------------------------------------------------
    def _network(self) -> StepModel:
        if self._net is None:
            self._net = _runtime().step_model(self._card, self.params["model_sha256"])
        return self._net

    def _plan(self, size: int):
        from lmar.plugins.lmcore.segments import plan_segments

        return plan_segments(size, int(self.params["min_segment"]), int(self.params["max_segments"]))

    def _portable(self) -> bool:
        return self.params["scheme"] in INTEGER_SCHEMES

    def _fingerprint(self) -> int:
        if self._portable():  # the same on every machine: a failed checksum is always damage
            return _runtime().profile_fingerprint(_runtime().portable_profile())
        return _runtime().profile_fingerprint(_runtime().numerics_profile(self._network().provider))

    def compress(self, data: bytes) -> bytes:
        data = bytes(data)
        if len(data) > MAX_BLOCK:
            raise CodecError(f"lm: block of {len(data)} bytes exceeds {MAX_BLOCK}")
        scheme = self.params["scheme"]
        if scheme not in ENCODE_SCHEMES:
            raise CodecError(f"lm: scheme {scheme} only decodes (members of older lmar versions); new members "
                             f"use {'/'.join(ENCODE_SCHEMES)}")
        net = self._network() if data else None
        plan = self._plan(len(data))
        return _blocks().encode_block(data, plan, net, self._fingerprint(), self.params["scheme"], self._prior)

    def decompress(self, payload: bytes, size: int) -> bytes:
        if not 0 <= size <= MAX_BLOCK:
            raise CodecError(f"lm: block size {size} is out of range (0..{MAX_BLOCK})")
        net = self._network() if size else None
        plan = self._plan(size)
        if self.params["scheme"] in LEGACY_SCHEMES:
            return _legacy().decode_block(self.params["scheme"], bytes(payload), plan, net, self._fingerprint())
        return _blocks().decode_block(bytes(payload), plan, net, self._fingerprint(), self.params["scheme"],
                                   self._prior)

    def estimate(self, sample: bytes) -> float | None:
        """Code the whole sample (up to 256 KiB) for real in up to 32 segments (a few seconds on 2 cores).

        The mixer's gain over the network is not predictable from the network alone; a real run is. It
        codes the same sample the classical codecs estimate on, so the comparison is fair: with only the
        sample's first 4 or 64 KiB, auto mode trusted a misleading prefix (ptt5: white space) or missed
        where lm wins (urls.10K, kennedy.xls) because the rest of the sample was never seen.
        """
        sample = bytes(sample[: 256 << 10])
        if not sample:
            return None
        probe = type(self)(**{**self.params, "min_segment": 4096, "max_segments": 32})
        return len(probe.compress(sample)) / len(sample)

    def header_info(self) -> dict[str, Any]:
        if self._portable():
            return {"model": self.params["model"], **_runtime().portable_profile()}
        prof = _runtime().numerics_profile(self._network().provider)
        return {"model": self.params["model"], **prof}

    @classmethod
    def machine_binding(cls, recorded_info: Mapping[str, Any]) -> str:
        """Members of the integer network (cm6) decode anywhere; float ones (cm1-cm5) where they were coded."""
        if recorded_info.get("numerics") == _runtime().PORTABLE or "cpu_flags" not in recorded_info:
            return ""
        from lmar.plugins.ort_runtime import float_binding

        return float_binding(recorded_info)

    def mismatch_hint(self, recorded_info: Mapping[str, Any]) -> str:
        return _runtime().describe_mismatch(recorded_info, _runtime().numerics_profile())


@lmar.hookimpl
def register_codecs(register):
    register(LmCodec)
