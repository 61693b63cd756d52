"""llm codec in auto mode: the estimate is cheap and deterministic, and the time budget keeps the model away
from inputs it cannot code in time (tiny random Llama from test_llm_codec's fixtures; no download)."""
from __future__ import annotations

import random

import pytest

from lmar.selection import SelectOptions, choose
from test_llm_codec import SAMPLE, codec, needs_import, tiny_home  # noqa: F401  (fixtures)

TEXT = (SAMPLE * 40)[:20_000]


def _count_steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record (batch, step) of every model step the runtime takes."""
    from lmar.plugins.llmcore.runtime import WindowRunner

    calls: list[tuple[int, int]] = []
    real = WindowRunner.step

    def step(self, input_ids):  # type: ignore[no-untyped-def]
        calls.append((len(input_ids), self.t))
        return real(self, input_ids)

    monkeypatch.setattr(WindowRunner, "step", step)
    return calls


@needs_import
def test_estimate_runs_at_most_estimate_bytes_through_the_model(codec, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lmar.plugins.llmcore import estimate

    calls = _count_steps(monkeypatch)
    monkeypatch.setattr(type(codec), "compress", lambda self, data: pytest.fail("estimate ran a trial"))
    sample = TEXT + random.Random(3).randbytes(5000)
    ratio = codec.estimate(sample)
    pieces = estimate.pieces_of(sample)
    assert sum(len(p) for p in pieces) <= estimate.ESTIMATE_BYTES and len(pieces) == estimate.ESTIMATE_PIECES
    tokens = [len(codec.tokenizer().encode(p)) for p in pieces]
    assert {b for b, _ in calls} == {estimate.ESTIMATE_PIECES} and len(calls) == max(tokens)
    assert 0.0 < ratio < 2.0


@needs_import
def test_estimate_is_deterministic_and_tracks_the_real_ratio(codec) -> None:  # type: ignore[no-untyped-def]
    sample = TEXT
    a, b = codec.estimate(sample), codec.estimate(bytes(sample))
    assert a == b
    real = len(codec.compress(sample[:4096])) / 4096
    assert 0.5 * real < a < 2.0 * real
    noise = random.Random(5).randbytes(8000)
    assert codec.estimate(noise) > a  # random bytes cost more than text
    assert codec.estimate(sample[:2000]) is None  # small: a real trial costs the same


@needs_import
def test_selection_skips_llm_over_its_budget_without_running_it(codec, tiny_home, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lmar.registry import load_registry

    reg = load_registry()
    name = tiny_home["codec_name"]
    calls = _count_steps(monkeypatch)
    speed = reg.codecs[name].speed
    data = TEXT[:8000]
    assert len(data) / speed > 18.75  # the default level's budget for a file under 64 KiB
    got = choose(reg, data, len(data), SelectOptions(candidates=[name, "zlib"], level="default"))
    assert got.codec.name == "zlib" and got.candidates[name] == [None, "over time budget"]
    assert not calls
    # a budget that admits it: an estimate (no more steps than its pieces' tokens), then a full trial
    got = choose(reg, data, len(data), SelectOptions(candidates=[name, "zlib"], budget_s=len(data) / speed + 1))
    assert got.candidates[name][0] is not None and calls
