"""Block coding for schemes ``cm2``-``cm6``: the network stepped in lockstep, each step by :func:`.mixer_step.code_step`.

New members use only the live scheme (``lm_codec.ENCODE_SCHEMES``); the codec refuses to encode the
older ones, which still decode here. Tools may encode any of them, with its own layout or another, to
measure (``tools/lm/tune_cm2.py``, ``tools/lm/build_prior.py``).

Why the loop is in Python: one network call and one compiled call per byte position serve every
segment (or half of them, see :func:`_walk`), so the interpreter's cost per step is shared by many
bytes. Encoder and decoder run :func:`_walk` with the same plan, the same batch shapes and the same
padding of finished segments; only the direction flag differs.
"""
from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lmar.errors import CodecError

from . import bitcoder
from .mixer_layout import Layout, layout
from .mixer_step import code_step
from .mixer_tables import MixerTables
from .network import PAD_BYTE, Network
from .payload import SCHEME_FORMATS, Payload
from .prior import PRIOR_SCHEMES, Prior
from .segments import SegmentPlan

#: Payload format per compiled scheme (the header says which scheme wrote a payload, so a mislabeled one
#: fails early); every scheme but the legacy numpy ``cm1``.
FORMATS = {scheme: fmt for scheme, fmt in SCHEME_FORMATS.items() if scheme != "cm1"}


#: Below this many segments a block runs as one lane: with fewer, handing work between threads costs
#: more than it hides.
MIN_LANES_SEGMENTS = 16
#: The same for a network whose rows do not depend on the batch they are stepped in (the integer one,
#: ``batch_exact``): any lane split gives the same bits, so this is a speed choice only. Measured with
#: graph 2 on 60 KB (2 cores, nothing else running), two lanes against one, seconds: 2 segments 9.2 vs 3.8,
#: 6: 5.1 vs 3.3, 16: 3.5 vs 2.4, 24: 2.5 vs 2.0, 32: 1.6 vs 1.9, 48: 1.7 vs 2.1. Below ~30 segments the
#: per-step hand-off between threads (a submit, a wake-up, two half-size network calls and two mixer
#: calls) costs more than the overlap hides. (It was 2 until 2026-12-03: blocks of 2-16 MiB ran ~1.5-2.4 x
#: slower than one lane.)
MIN_LANES_EXACT = 32


#: Steps a batch-exact network computes ahead of the mixer per hand-off when encoding (:func:`_walk_ahead`).
AHEAD_STEPS = 64


class _Lane:
    """Segments [lo, hi) stepped by the network as one batch; the per-segment tables are views."""

    def __init__(self, lo: int, hi: int, net: Network | None, state: MixerTables, starts: np.ndarray) -> None:
        self.lo, self.hi, self.net = lo, hi, net
        n = hi - lo
        make_stepper = getattr(net, "lane_stepper", None)  # graph 2 of the integer network: bound buffers
        self.stepper = make_stepper(n) if make_stepper is not None else None
        self.prev = self.stepper.prev if self.stepper is not None else np.full(
            n, net.bos if net is not None else 256, dtype=np.int64)
        self.hidden = net.zero_state(n) if net is not None and self.stepper is None else None
        self.starts = starts[lo:hi]
        self.tables = state.args(lo, hi)
        self._flat = (np.zeros((n, 256), dtype=np.float32), np.zeros((n, 1), dtype=np.float32))

    def think(self) -> tuple[np.ndarray, np.ndarray]:
        """One network step: (logits, top-layer hidden state) for every segment of the lane."""
        if self.net is None:
            return self._flat
        if self.stepper is not None:
            return self.stepper.step()
        logits, self.hidden = self.net.step(self.prev, self.hidden)
        convert = getattr(self.net, "mixer_inputs", None)  # the integer network's; recorders lack it
        if convert is not None:
            return convert(logits, self.hidden)
        return (np.ascontiguousarray(logits, dtype=np.float32),
                np.ascontiguousarray(self.hidden[-1], dtype=np.float32))

    def live(self, live: int) -> int:
        return min(max(live - self.lo, 0), self.hi - self.lo)


def _state(plan: SegmentPlan, net: Network | None, scheme: str, prior: Prior | None,
           lay: Layout | None = None) -> MixerTables:
    """A block's tables: cold, or started from the network's mixer prior when the scheme has one."""
    hidden_units = int(net.zero_state(1).shape[-1]) if net is not None else 1
    state = MixerTables(plan.count, plan.size, hidden_units, lay if lay is not None else layout(scheme))
    if scheme in PRIOR_SCHEMES:
        if prior is None:
            raise CodecError(f"lm: scheme {scheme} starts from a mixer prior and none was given")
        prior.apply(state)
    return state


def _with_room(stream: np.ndarray, coder: np.ndarray, need: int, grow: int) -> np.ndarray:
    """``stream``, or a copy ``len + grow`` bytes longer when fewer than ``need`` bytes follow the coder's
    position: the encoder writes at most 16 bytes per coded byte (and a flush)."""
    if len(stream) - coder[bitcoder.POS] >= need:
        return stream
    return np.concatenate([stream, np.zeros(len(stream) + grow, dtype=np.uint8)])


def _walk(plan: SegmentPlan, net: Network | None, decode: bool, src: np.ndarray, stream: np.ndarray,
          coder: np.ndarray, state: MixerTables, one_lane: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Code every step; return (reconstruction buffer, coder stream, possibly grown when encoding).

    Why two lanes: the network (onnxruntime) and the compiled mixer both release the GIL, so while the
    mixer codes one half of the segments the network can already step the other half; the mixer still
    visits every segment in the same order (lane 0, then lane 1) at every step, so the bitstream does not
    depend on the overlap, only on the lane split, which is a function of the plan.
    """
    S = plan.count
    buf = np.zeros(plan.size, dtype=np.uint8)
    starts = plan.starts.astype(np.int64)
    exact = bool(getattr(net, "batch_exact", False))
    half = S // 2 if S >= (MIN_LANES_EXACT if exact else MIN_LANES_SEGMENTS) and not one_lane else S
    lanes = [_Lane(0, half, net, state, starts)] + ([_Lane(half, S, net, state, starts)] if half < S else [])
    if not decode and exact and len(lanes) == 1 and lanes[0].stepper is not None and AHEAD_STEPS > 0:
        return _walk_ahead(plan, lanes[0], net, src, buf, stream, coder)
    direction = 1 if decode else 0
    live = S

    lives = plan.live_counts()

    def code(lane: _Lane, t: int, out: tuple[np.ndarray, np.ndarray]) -> None:
        nonlocal stream
        n = lane.live(live)
        if not decode:
            stream = _with_room(stream, coder, 16 * n + 64, 16 * S + 64)
        code_step(direction, n, t, out[0], out[1], lane.starts, src, buf, coder, stream, *lane.tables)
        lane.prev[:n] = buf[lane.starts[:n] + t]
        lane.prev[n:] = PAD_BYTE

    if len(lanes) == 1:
        for t in range(plan.steps):
            live = lives[t]
            code(lanes[0], t, lanes[0].think())
        return buf, stream
    with ThreadPoolExecutor(1, thread_name_prefix="lmar-lm-net") as pool:
        pending = pool.submit(lanes[0].think)
        for t in range(plan.steps):
            live = lives[t]
            out0 = pending.result()
            pending = pool.submit(lanes[1].think)
            code(lanes[0], t, out0)
            out1 = pending.result()
            if t + 1 < plan.steps:
                pending = pool.submit(lanes[0].think)
            if lanes[1].live(live):
                code(lanes[1], t, out1)
    return buf, stream


def _walk_ahead(plan: SegmentPlan, lane: _Lane, net: Network, src: np.ndarray, buf: np.ndarray,
                stream: np.ndarray, coder: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Encoding with a batch-exact network, one lane: the network runs ahead of the mixer in a second thread.

    Why it can: when encoding, the network's input at step t is the data itself (the byte at t - 1 of each
    live segment, or the pad byte), not what the mixer decides, and a batch-exact network's outputs depend
    only on its inputs. So a thread steps it ``AHEAD_STEPS`` steps at a time into one of two buffers while
    the mixer codes the other: one hand-off per chunk instead of per step, and network and mixer on two
    cores. The mixer sees exactly the outputs the one-lane walk would give it, in the same order, so the
    payload is the same bytes (tests compare). Decoding cannot: there the next input is the decoded byte.
    """
    S = plan.count
    starts = lane.starts
    stepper = lane.stepper
    k = AHEAD_STEPS
    hidden = net.zero_state(1).shape[-1]
    chunks = [(np.empty((k, S, 256), dtype=np.float32), np.empty((k, S, hidden), dtype=np.float32)) for _ in range(2)]
    lives = plan.live_counts()

    def produce(t0: int, which: int) -> None:
        logits, hid = chunks[which]
        for j in range(min(k, plan.steps - t0)):
            t = t0 + j
            if t:
                n = lives[t - 1]
                stepper.prev[:n] = src[starts[:n] + t - 1]
                stepper.prev[n:] = PAD_BYTE
            logits[j], hid[j] = stepper.step()

    with ThreadPoolExecutor(1, thread_name_prefix="lmar-lm-ahead") as pool:
        pending = pool.submit(produce, 0, 0)
        for c, t0 in enumerate(range(0, plan.steps, k)):
            pending.result()
            if t0 + k < plan.steps:
                pending = pool.submit(produce, t0 + k, (c + 1) % 2)
            logits, hid = chunks[c % 2]
            stream = _with_room(stream, coder, (16 * S + 64) * k, (16 * S + 64) * k)  # the whole chunk's
            for j in range(min(k, plan.steps - t0)):
                code_step(0, lives[t0 + j], t0 + j, logits[j], hid[j], starts, src, buf, coder, stream,
                          *lane.tables)
    return buf, stream


def encode_block(data: bytes, plan: SegmentPlan, net: Network | None, fingerprint: int, scheme: str,
                 prior: Prior | None = None, learnt: list[MixerTables] | None = None, *,
                 lay: Layout | None = None, one_lane: bool = False) -> bytes:
    """Code one block; the payload is marked with ``scheme``'s format.

    For tools only: ``learnt``, when given, receives the block's tables after coding (how a prior is
    built); ``lay`` replaces the scheme's layout (how rates are tuned: the payload then belongs to no
    scheme); ``one_lane`` steps every segment in one network call (so a recorded network replays).
    """
    src = np.frombuffer(data, dtype=np.uint8).copy()  # writable: one compiled signature for both directions
    coder = bitcoder.new_state()
    stream = np.zeros(len(data) // 2 + 1024, dtype=np.uint8)
    if plan.count:
        state = _state(plan, net, scheme, prior, lay)
        buf, stream = _walk(plan, net, False, src, stream, coder, state, one_lane)
        if learnt is not None:
            learnt.append(state)
        if buf.tobytes() != data:  # cheap self-check of the reconstruction logic
            raise CodecError("lm: internal error: encoder reconstruction differs from its input")
        if len(stream) - coder[bitcoder.POS] < 8:
            stream = np.concatenate([stream, np.zeros(8, dtype=np.uint8)])
        n = bitcoder.flush(coder, stream)
        body = stream[:n].tobytes()
    else:
        body = b""
    return Payload(FORMATS[scheme], plan.count, zlib.crc32(data), fingerprint, body).pack()


def decode_block(payload: bytes, plan: SegmentPlan, net: Network | None, fingerprint: int,
                 scheme: str, prior: Prior | None = None) -> bytes:
    p = Payload.unpack(payload, FORMATS[scheme])
    if p.segments != plan.count:
        raise CodecError(f"lm: payload has {p.segments} segments, expected {plan.count} for this size")
    if plan.count == 0:
        return b""
    if len(p.body) < 4:
        raise CodecError("lm: coder stream shorter than 4 bytes (truncated payload)")
    stream = np.frombuffer(p.body, dtype=np.uint8).copy()
    coder = bitcoder.new_state()
    bitcoder.start_decoder(coder, stream)
    buf, _ = _walk(plan, net, True, np.zeros(0, dtype=np.uint8), stream, coder, _state(plan, net, scheme, prior))
    out = buf.tobytes()
    intact = zlib.crc32(out) == p.crc32
    if not intact and p.fingerprint != fingerprint:
        # Coded under another numerics profile: the predictions diverged, and whatever that did to the
        # coder (a wrong checksum, or running out of input), the bytes go back as decoded so that the
        # archive's checksum fails and the core names what differs with mismatch_hint().
        return out
    # A whole stream is consumed to its last byte: the decoder reads exactly what the encoder wrote. A
    # stream cut short by a byte the flush happened to write as zero still decodes; it is damaged anyway.
    if intact and coder[bitcoder.POS] != len(stream):
        raise CodecError(f"lm: coder stream is {len(stream)} bytes but its decoding used {coder[bitcoder.POS]} "
                         "(truncated or padded payload)")
    if coder[bitcoder.POS] > len(stream) + 4 and not intact:
        raise CodecError("lm: coder stream ended early (truncated payload)")
    if not intact:
        raise CodecError("lm: decoded block fails its checksum (the payload is damaged)")
    return out
