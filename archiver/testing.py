"""The codec contract as a test any plugin runs in its own suite: ``lmar.testing.check_codec(MyCodec)``.

Why ship it: an archive outlives the plugin author's attention. What lmar relies on from every codec is
checked here, the same way for the built-ins and for third-party packages:

- **round trip**: ``decompress(compress(x), len(x)) == x`` for empty, tiny, text, binary, repetitive and
  all-byte-values inputs (those the codec ``accepts``), decoded by a *fresh* instance built from the
  parameters as the archive records them (msgpack), never by the instance that encoded;
- **determinism**: two instances code the same input to the same payload (archives are byte-identical);
- **parameters**: ``params`` and ``header_info()`` survive a msgpack round trip unchanged, ``read_params``
  leaves the parameters of today's ``version`` as they are, and the class declares a stable lower-case
  ``name`` and an integer ``version``;
- **hostile payloads**: truncated, bit-flipped, random and empty payloads, and a decompression bomb (a
  payload of megabytes of zeros announced as a few bytes), either raise :class:`~lmar.errors.CodecError` or
  return at most ``size + 1`` bytes, within a time and (Python-traced) memory bound.

Failures raise ``AssertionError`` naming the codec, the check and the input, so the function works under
pytest, unittest or a plain script. It imports nothing from an archive: a codec is judged as a codec.
"""
from __future__ import annotations

import random
import re
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from lmar.formats import records

from .codec import Codec
from .errors import CodecError

__all__ = ["ContractLimits", "check_codec", "standard_samples"]

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ContractLimits:
    """Bounds for the hostile-payload checks; raise them for a slow codec (an LM decodes ~20 KB/s)."""

    #: Seconds one hostile decode may take.
    seconds_per_decode: float = 5.0
    #: Python-traced bytes one hostile decode may allocate beyond its output bound (``tracemalloc`` peak).
    traced_bytes: int = 64 << 20
    #: How many bit-flipped and random payloads to try (seeded: the same ones every run).
    mutations: int = 24
    #: Raw size of the decompression bomb (zeros); announced as :attr:`bomb_claimed` bytes.
    bomb_raw: int = 8 << 20
    bomb_claimed: int = 64


@dataclass
class _Report:
    """What was checked, for an assertion message that says how far the codec got."""

    codec: str
    done: list[str] = field(default_factory=list)

    def fail(self, check: str, detail: str) -> None:
        so_far = f" (passed: {', '.join(self.done)})" if self.done else ""
        raise AssertionError(f"codec {self.codec}: {check}: {detail}{so_far}")


def standard_samples(seed: int = 1) -> dict[str, bytes]:
    """Inputs every general-purpose codec must round-trip: small enough for a slow codec."""
    rnd = random.Random(seed)
    text = ("The archive chooses a codec for every file it stores. Line %d of a small text.\n" * 40) % tuple(range(40))
    return {
        "empty": b"",
        "one byte": b"x",
        "text": text.encode(),
        "binary": rnd.randbytes(3000),
        "zeros": bytes(20000),
        "all byte values": bytes(range(256)) * 4,
    }


def check_codec(codec_cls: type[Codec], samples: Mapping[str, bytes] | None = None,
                params: Mapping[str, Any] | None = None, limits: ContractLimits = ContractLimits(),
                seed: int = 1) -> list[str]:
    """Assert that ``codec_cls`` keeps lmar's codec contract; returns the names of the checks passed.

    ``samples`` replace :func:`standard_samples` (a whole-file codec gives files it accepts: a small WAV,
    an image); ``params`` are passed to the constructor (default: the class's defaults).
    """
    report = _Report(getattr(codec_cls, "name", "") or codec_cls.__qualname__)
    _check_declarations(codec_cls, report)
    ok, why = codec_cls.availability()
    if not ok:
        report.fail("availability", f"cannot run here ({why}); skip the check where it is unavailable")
    encoder = codec_cls(**dict(params or {}))
    recorded = _check_params(encoder, report)
    samples = dict(standard_samples(seed) if samples is None else samples)
    accepted = {label: data for label, data in samples.items() if _accepts(encoder, data, report, label)}
    if not any(accepted.values()):
        report.fail("samples", "accepts none of the non-empty samples; pass samples this codec codes")
    payloads: dict[str, bytes] = {}
    for label, data in accepted.items():
        payloads[label] = _round_trip(codec_cls, encoder, recorded, label, data, report)
    report.done.append("round trip")
    for label, data in accepted.items():
        again = codec_cls(**recorded).compress(data)
        if bytes(again) != payloads[label]:
            report.fail("determinism", f"two instances coded the {label} sample to different payloads")
    report.done.append("determinism")
    _check_hostile(codec_cls, recorded, accepted, payloads, limits, seed, report)
    report.done.append("hostile payloads")
    return report.done


def _check_declarations(codec_cls: type[Codec], report: _Report) -> None:
    if not (isinstance(codec_cls, type) and issubclass(codec_cls, Codec)):
        report.fail("declaration", "is not a subclass of lmar.codec.Codec")
    if not NAME_PATTERN.match(codec_cls.name or ""):
        report.fail("declaration", f"name {codec_cls.name!r} is not a stable lower-case id ({NAME_PATTERN.pattern})")
    if not isinstance(codec_cls.version, int) or isinstance(codec_cls.version, bool) or codec_cls.version < 1:
        report.fail("declaration", f"version {codec_cls.version!r} is not a positive integer")
    report.done.append("declarations")


def _check_params(encoder: Codec, report: _Report) -> dict[str, Any]:
    """The parameters as an archive records and reads them back, for building decoders; they and
    ``header_info()`` must come back unchanged."""
    recorded = _read_back("params", encoder.params, report)
    _read_back("header_info()", encoder.header_info(), report)
    try:
        current = type(encoder).read_params(recorded, type(encoder).version)
    except Exception as exc:
        report.fail("parameters", f"read_params raised {type(exc).__name__} on today's parameters: {exc}")
    if current != recorded:
        report.fail("parameters", f"read_params changes a member of today's version: {recorded!r} -> {current!r}")
    report.done.append("parameters")
    return recorded


def _read_back(what: str, value: Any, report: _Report) -> Any:
    """``value`` through the archive's own msgpack packing (string map keys only, bounded)."""
    try:
        back = records.unpack(records.pack(value), what)
    except Exception as exc:
        report.fail("parameters", f"{what} do not survive the archive's msgpack: {type(exc).__name__}: {exc}")
    if back != value:
        report.fail("parameters", f"{what} change in a msgpack round trip: {value!r} -> {back!r}")
    return back


def _accepts(encoder: Codec, data: bytes, report: _Report, label: str) -> bool:
    try:
        return bool(encoder.accepts(data))
    except Exception as exc:
        report.fail("accepts", f"raised {type(exc).__name__} on the {label} sample: {exc}")
    return False


def _round_trip(codec_cls: type[Codec], encoder: Codec, recorded: dict[str, Any], label: str, data: bytes,
                report: _Report) -> bytes:
    try:
        payload = bytes(encoder.compress(data))
    except Exception as exc:
        report.fail("round trip", f"compress raised {type(exc).__name__} on the {label} sample: {exc}")
    decoder = codec_cls(**codec_cls.read_params(recorded, codec_cls.version))  # as extraction builds it
    try:
        back = bytes(decoder.decompress(payload, len(data)))
    except Exception as exc:
        report.fail("round trip", f"decompress raised {type(exc).__name__} on the {label} sample: {exc}")
    if back != data:
        report.fail("round trip", f"the {label} sample ({len(data)} bytes) decoded to {len(back)} different bytes")
    return payload


def _hostile_cases(codec_cls: type[Codec], recorded: dict[str, Any], accepted: Mapping[str, bytes],
                   payloads: Mapping[str, bytes], limits: ContractLimits, seed: int
                   ) -> list[tuple[str, bytes, int]]:
    """(label, payload, announced size): damaged real payloads, noise, nothing, and a bomb."""
    rnd = random.Random(seed)
    cases: list[tuple[str, bytes, int]] = []
    for label, payload in payloads.items():
        size = len(accepted[label])
        if not payload:
            continue
        cases.append((f"{label} payload truncated to half", payload[: len(payload) // 2], size))
        cases.append((f"{label} payload less its last byte", payload[:-1], size))
        cases.append((f"{label} payload announced 1 byte short", payload, max(size - 1, 0)))
        for _ in range(max(1, limits.mutations // max(len(payloads), 1))):
            pos = rnd.randrange(len(payload))
            bad = bytearray(payload)
            bad[pos] ^= 1 << rnd.randrange(8)
            cases.append((f"{label} payload with bit flipped at byte {pos}", bytes(bad), size))
    for n in (0, 1, 7, 64, 1000):
        cases.append((f"{n} random bytes announced as 100", rnd.randbytes(n), 100))
    cases.append(("empty payload announced as 100 bytes", b"", 100))
    bomb_source = bytes(limits.bomb_raw)
    try:
        encoder = codec_cls(**recorded)
        if encoder.accepts(bomb_source):
            bomb = bytes(encoder.compress(bomb_source))
            cases.append((f"bomb ({limits.bomb_raw} zero bytes announced as {limits.bomb_claimed})", bomb,
                          limits.bomb_claimed))
    except Exception:
        pass  # a codec that cannot code the bomb's raw bytes cannot be fed one of its own making
    return cases


def _check_hostile(codec_cls: type[Codec], recorded: dict[str, Any], accepted: Mapping[str, bytes],
                   payloads: Mapping[str, bytes], limits: ContractLimits, seed: int, report: _Report) -> None:
    for label, payload, size in _hostile_cases(codec_cls, recorded, accepted, payloads, limits, seed):
        decoder = codec_cls(**recorded)
        result, seconds, peak = _measured(lambda: decoder.decompress(payload, size))
        if isinstance(result, BaseException) and not isinstance(result, CodecError):
            report.fail("hostile payloads", f"{label}: raised {type(result).__name__} ({result}), not CodecError")
        if not isinstance(result, BaseException) and len(result) > size + 1:
            report.fail("hostile payloads", f"{label}: produced {len(result)} bytes, over the announced "
                                            f"{size} + 1 (decode with a bound: decompressobj(max_length=size+1))")
        if seconds > limits.seconds_per_decode:
            report.fail("hostile payloads", f"{label}: took {seconds:.1f} s (limit {limits.seconds_per_decode} s)")
        if peak > limits.traced_bytes + 8 * (size + 1):
            report.fail("hostile payloads", f"{label}: allocated {peak >> 20} MiB (limit {limits.traced_bytes >> 20} MiB)")


def _measured(call: Callable[[], Any]) -> tuple[Any, float, int]:
    """(result or the exception raised, seconds, traced peak bytes) of ``call``."""
    started_tracing = not tracemalloc.is_tracing()
    if started_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    try:
        result: Any = call()
    except Exception as exc:
        result = exc
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base
    if started_tracing:
        tracemalloc.stop()
    return result, seconds, peak


def check_codecs(codec_classes: Sequence[type[Codec]], **kwargs: Any) -> dict[str, list[str]]:
    """:func:`check_codec` on each class; the checks passed, by codec name."""
    return {cls.name: check_codec(cls, **kwargs) for cls in codec_classes}
