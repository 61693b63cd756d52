"""Code a block as independent segments, in lockstep, through one range coder stream.

Why segments: one step call per token is the cost, and a batch of segments costs little more per call
than one, so a block is cut into up to ``segments`` pieces coded side by side (each from a fresh context,
which costs ~100 bits at its start). Why one stream: a single range coder queue (:mod:`lmar.plugins.rangecoder`,
bit-compatible with constriction's ``RangeEncoder``, which wrote the first payloads), coded in
a fixed order (the active segments' tokens of step ``t`` in segment order, then their escaped bytes), keeps
the payload compact and the decoder's read order obvious.

Payload: format byte | varint segment count | varint byte length of every segment but the last | uint32
little-endian range coder words. The format byte fixes how probabilities are computed, so a payload
decodes the same way forever:

- ``1``: a full ``window``-slot cache from the first token; probabilities ``exp`` of float64 logits.
- ``2``: the cache grows with the segments (:class:`WindowRunner` ``grow``); probabilities
  ``exp`` in float32 (a third of the time of float64 over a 49152-wide vocabulary, and as exact: encoder
  and decoder compute the same values, and the range coder quantises them deterministically, in float32 as
  constriction did).
- ``3`` (written now): format 2's rows mixed with online token models learnt from the block
  (:mod:`.online`); the coder quantises the float64 mixture. Escaped bytes are coded as in format 2. A
  block of two or more segments is *primed*: the first :data:`PRIME_TOKENS` tokens of segment 0 are
  coded alone (a one-segment runner), then that runner's context is copied into every segment
  (:meth:`WindowRunner.repeated`) and all segments go on in lockstep, segment 0 from its next token,
  the others from their first, each after the shared prime.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from lmar.errors import CodecError
from lmar.plugins.rangecoder import Categorical, RangeCoderError, RangeDecoder, RangeEncoder

from .online import OnlineMixer
from .runtime import WindowRunner
from .tokenizer import ByteBPE

FORMAT = 3
FORMATS = (1, 2, 3)
#: Format 3: the first segment's first tokens, coded alone (batch 1) and then copied into every segment's
#: context, so no segment starts cold. SmolLM2 int8 on alice29 (64 segments): segments 2-64 cost 3.7 %
#: less bare, 2.3 % less with the online models; the 128 batch-1 steps cost ~4 s per block.
PRIME_TOKENS = 128
_UNIFORM_BYTE = None


def _uniform_byte() -> Categorical:
    """The table escaped bytes are coded with (constriction's ``Categorical(np.full(256, 1/256), perfect=False)``)."""
    global _UNIFORM_BYTE
    if _UNIFORM_BYTE is None:
        _UNIFORM_BYTE = Categorical(np.full(256, 1.0 / 256))
    return _UNIFORM_BYTE


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise CodecError("llm: truncated payload header")
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def split_points(data: bytes, segments: int, min_segment: int) -> list[int]:
    """Segment byte lengths: near-equal, each boundary moved just past a nearby newline or space."""
    n = len(data)
    count = max(1, min(segments, n // max(1, min_segment)))
    cuts = [0]
    for i in range(1, count):
        target = i * n // count
        window = data[target: target + 256]
        j = window.find(b"\n")
        if j < 0:
            j = window.find(b" ")
        cut = target + (j + 1 if j >= 0 else 0)
        if cut > cuts[-1]:
            cuts.append(cut)
    cuts.append(n)
    return [b - a for a, b in zip(cuts, cuts[1:]) if b > a] or [0]


def probabilities(logits: np.ndarray, fmt: int = FORMAT) -> np.ndarray:
    """Unnormalised probabilities; the range coder quantises them deterministically, none to zero."""
    if fmt == 1:
        z = logits.astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        return np.exp(z)
    z = logits - logits.max(axis=1, keepdims=True)
    return np.exp(z, out=z)


def _rows(logits: np.ndarray, active: list[int]) -> np.ndarray:
    return logits if len(active) == len(logits) else logits[active]


def coding_rows(logits: np.ndarray, active: list[int], fmt: int, mixer: OnlineMixer | None) -> np.ndarray:
    """The rows the range coder codes this step's tokens with (one per active segment)."""
    p = probabilities(_rows(logits, active), fmt)
    return mixer.mix_rows(p, active) if mixer is not None else p


def _mixer(fmt: int, segments: int, tok: ByteBPE) -> OnlineMixer | None:
    return OnlineMixer(segments, tok.vocab_size) if fmt >= 3 else None


Progress = Callable[[int], None]
#: ``make_runner(batch, grow)``
RunnerFactory = Callable[[int, bool], WindowRunner]


def _prime_length(fmt: int, segments: int) -> int:
    """How many of the first segment's tokens are coded alone, then copied into every segment's context."""
    return PRIME_TOKENS if fmt >= 3 and segments > 1 else 0


def encode(data: bytes, tok: ByteBPE, make_runner: RunnerFactory, segments: int,
           min_segment: int, progress: Progress | None = None, fmt: int = FORMAT) -> bytes:
    if fmt not in FORMATS:
        raise CodecError(f"llm: unknown payload format {fmt}")
    lengths = split_points(data, segments, min_segment)
    header = bytes([fmt]) + _varint(len(lengths)) + b"".join(_varint(n) for n in lengths[:-1])
    if not data:
        return header
    streams: list[list[int]] = []
    pos = 0
    for n in lengths:
        streams.append(tok.encode(data[pos: pos + n]))
        pos += n
    enc = RangeEncoder()
    esc_base, esc_id = tok.escape_base, tok.escape_id
    mixer = _mixer(fmt, len(streams), tok)

    def code(logits: np.ndarray, active: list[int], syms: list[int]) -> np.ndarray:
        ids = np.array([esc_id if s >= esc_base else s for s in syms], np.int32)
        enc.encode_rows(ids, coding_rows(logits, active, fmt, mixer))
        if mixer is not None:
            mixer.update(ids)
        raw = [s - esc_base for s in syms if s >= esc_base]
        if raw:
            enc.encode_table(np.array(raw, np.int64), _uniform_byte())
        if progress:
            progress(sum(len(tok.symbol_bytes(s)) for s in syms))
        return ids

    prime = min(_prime_length(fmt, len(streams)), len(streams[0]))
    if prime:
        one = make_runner(1, True)
        last = np.array([tok.start_id], np.int64)
        for t in range(prime):
            last = code(one.step(last), [0], [streams[0][t]]).astype(np.int64)
        runner = one.repeated(len(streams))
        inputs = np.full(len(streams), last[0], np.int64)
        streams[0] = streams[0][prime:]
    else:
        runner = make_runner(len(streams), fmt >= 2)
        inputs = np.full(len(streams), tok.start_id, np.int64)
    for t in range(max(len(s) for s in streams)):
        logits = runner.step(inputs)
        active = [i for i, s in enumerate(streams) if t < len(s)]
        inputs[active] = code(logits, active, [streams[i][t] for i in active])
    return header + enc.get_compressed().astype("<u4").tobytes()


def decode(payload: bytes, size: int, tok: ByteBPE, make_runner: RunnerFactory,
           max_segments: int, progress: Progress | None = None) -> bytes:
    if not payload or payload[0] not in FORMATS:
        raise CodecError("llm: unknown payload format")
    fmt = payload[0]
    count, pos = _read_varint(payload, 1)
    if count < 1 or count > max(1, min(size, max_segments)):  # bounds the batch (and memory) of a hostile payload
        raise CodecError("llm: bad segment count")
    lengths: list[int] = []
    for _ in range(count - 1):
        n, pos = _read_varint(payload, pos)
        lengths.append(n)
    if sum(lengths) > size:
        raise CodecError("llm: segment lengths exceed the block size")
    lengths.append(size - sum(lengths))
    if size == 0:
        return b""
    body = payload[pos:]
    if len(body) % 4:
        raise CodecError("llm: truncated range coder stream")
    dec = RangeDecoder(np.frombuffer(body, "<u4").astype(np.uint32))
    esc_id = tok.escape_id
    outs = [bytearray() for _ in lengths]
    mixer = _mixer(fmt, count, tok)

    def code(logits: np.ndarray, active: list[int]) -> np.ndarray:
        ids = dec.decode_rows(coding_rows(logits, active, fmt, mixer))
        if mixer is not None:
            mixer.update(ids)
        n_esc = int((ids == esc_id).sum())
        raw = iter(dec.decode_table(_uniform_byte(), n_esc).tolist() if n_esc else ())
        done = 0
        for i, s in zip(active, ids.tolist()):
            piece = bytes((next(raw),)) if s == esc_id else tok.symbol_bytes(s)
            outs[i] += piece
            done += len(piece)
            if len(outs[i]) > lengths[i]:
                raise CodecError("llm: decoded past the end of a segment (corrupt payload or numerics differ)")
        if progress:
            progress(done)
        return ids

    try:
        prime = _prime_length(fmt, count)
        if prime:
            one = make_runner(1, True)
            last = np.array([tok.start_id], np.int64)
            for _ in range(prime):
                if len(outs[0]) >= lengths[0]:
                    break
                last = code(one.step(last), [0]).astype(np.int64)
            runner = one.repeated(count)
            inputs = np.full(count, last[0], np.int64)
        else:
            runner = make_runner(count, fmt >= 2)
            inputs = np.full(count, tok.start_id, np.int64)
        while True:
            active = [i for i in range(count) if len(outs[i]) < lengths[i]]
            if not active:
                break
            inputs[active] = code(runner.step(inputs), active)
    except RangeCoderError as exc:
        raise CodecError(f"llm: cannot decode payload: {exc}") from None
    except CodecError:
        raise
    except Exception as exc:  # tokenizer errors on garbage input
        raise CodecError(f"llm: cannot decode payload: {exc}".splitlines()[0]) from None
    return b"".join(outs)

