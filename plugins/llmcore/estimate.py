"""A cheap ratio estimate for selection: the model's cross-entropy on a few hundred tokens of the sample.

Why not a trial: selection asks every codec for an estimate on a sample of up to 256 KiB, and a real trial
of a 135M-parameter model on that much costs minutes (a 156 KB tree once took 3 min 40 s in auto mode).
Here at most :data:`ESTIMATE_BYTES` are run through the model, as :data:`ESTIMATE_PIECES` pieces taken
evenly across the sample and batched as segments (one step serves them all), so an estimate costs about
``ESTIMATE_BYTES / 3.6 / ESTIMATE_PIECES`` model steps (~140 for English with SmolLM2's 49k vocabulary:
2.1-2.9 s at load 6 on 2 cores for 1 KiB, about twice that for the 2 KiB used).

The ratio is the ideal code length (``-log2 p`` of each token, plus 8 bits for an escaped byte) over the
bytes of the tokens scored: all but each piece's first :data:`WARM_TOKENS` (see there), so it stands for
the steady rate of a real segment; the segments' cold starts and the range coder's rounding are left out
(a few percent on a block of several segments). The online models of payload format 3 (:mod:`.online`)
run on the pieces as they do on a block's segments (learning costs no model steps), after learning the
sample's first :data:`~.coding.PRIME_TOKENS` tokens as format 3's prime would give them (the model is not
primed: 128 more steps would double the estimate's cost), so a repetitive sample is estimated about as
the codec will code it. It is a pure function of the
bytes on a given machine (same graph, same batch shape, same float ops), so selection stays deterministic
whatever ``-j`` is; no range coder runs.
"""
from __future__ import annotations

import numpy as np

from .coding import PRIME_TOKENS, RunnerFactory, probabilities
from .online import OnlineMixer
from .tokenizer import ByteBPE

#: Most bytes one estimate runs through the model.
ESTIMATE_BYTES = 2048
#: How many evenly spaced pieces (batched as segments) those bytes are taken as.
ESTIMATE_PIECES = 4
#: The first tokens of each piece are run (they give the model its context) but not scored: a piece is
#: ~140 tokens, a real segment ~570 (2 KiB), so counting a piece's cold start overstates the cost (SmolLM2
#: int8, alice29's sample, 4 x 256 bytes: 1.62 bits/byte counting every token, 1.48 without the first 16;
#: 4 x 512 bytes: 1.33; 2-16 KB of it coded for real: 1.29-1.35).
WARM_TOKENS = 16
#: Samples up to this size get no estimate: a real trial of the whole sample costs about the same.
TRIAL_INSTEAD = 2 * ESTIMATE_BYTES


def pieces_of(sample: bytes, total: int = ESTIMATE_BYTES, count: int = ESTIMATE_PIECES) -> list[bytes]:
    """``count`` pieces of ``total // count`` bytes centred in equal stretches of ``sample``."""
    size = max(1, total // count)
    if len(sample) <= total:
        return [sample] if sample else []
    stretch = len(sample) // count
    out = []
    for i in range(count):
        start = i * stretch + max(0, (stretch - size) // 2)
        out.append(sample[start:start + size])
    return out


def estimate_ratio(sample: bytes, tok: ByteBPE, make_runner: RunnerFactory) -> float:
    """Ideal compressed/raw size of :func:`pieces_of` ``sample`` under the model (see the module doc)."""
    pieces = pieces_of(sample)
    if not pieces:
        return 1.0
    streams = [tok.encode(p) for p in pieces]
    runner = make_runner(len(streams), True)
    esc_base, esc_id = tok.escape_base, tok.escape_id
    inputs = np.full(len(streams), tok.start_id, np.int64)
    bits, scored = 0.0, 0
    mixer = OnlineMixer(len(streams) + 1, tok.vocab_size)
    head = tok.encode(sample[: 8 * PRIME_TOKENS])[:PRIME_TOKENS]
    mixer.learn(len(streams), [esc_id if s >= esc_base else s for s in head])
    for t in range(max(len(s) for s in streams)):
        logits = runner.step(inputs)
        active = [i for i, s in enumerate(streams) if t < len(s)]
        syms = [streams[i][t] for i in active]
        ids = np.array([esc_id if s >= esc_base else s for s in syms], np.int64)
        inputs[active] = ids
        p = probabilities(logits[active]).astype(np.float64)
        mixer.prepare(active)
        chosen = mixer.update(ids, (p[np.arange(len(active)), ids] / p.sum(axis=1)).tolist())
        if t < WARM_TOKENS and any(len(s) > 2 * WARM_TOKENS for s in streams):
            continue
        bits += float(-np.log2(np.maximum(chosen, 1e-300)).sum()) + 8.0 * sum(s >= esc_base for s in syms)
        scored += sum(len(tok.symbol_bytes(s)) for s in syms)
    return bits / 8.0 / max(scored, 1)
