"""Build a network's mixer prior (``plugins/models/<model>.<scheme>.prior.npz``) for a scheme that has one.

What it does: codes a fixed sample of held-out training text (the first ``--per-source`` bytes of each
source's ``.valid`` tail, which the network never trained on, so the mixer learns to trust it as much as
on unseen text) with the codec's own block coder and segment plan, starting cold, and saves how far the
mixer's tables moved (see :mod:`lmar.plugins.lmcore.prior`). The model card gets the prior's sha256.

    .venv/bin/python tools/lm/build_prior.py --model bytegru-v3 --per-source 200000

A shipped prior is never overwritten: members record its sha256, so a new prior needs a new model or
scheme name. The evaluation files in ``shared/corpus`` are never read.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from lmar.plugins.lm_codec import DEFAULT_MODEL, LmCodec
from lmar.plugins.lmcore import block_coder, mixer_layout, mixer_tables, model_files, prior, runtime
from lmar.plugins.lmcore.segments import plan_segments

ROOT = Path(__file__).resolve().parents[2]
#: Sources, in this order, from ``build_corpus.py``: every register the network was trained on.
SOURCES = ("brown", "kjv", "fortunes", "devil", "gcide", "pydoc", "html", "urls", "c", "man", "htmltext",
           "linuxdoc")


def warmup_text(corpus: Path, per_source: int) -> bytes:
    return b"".join((corpus / f"{name}.valid").read_bytes()[:per_source] for name in SOURCES)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--scheme", default=prior.PRIOR_SCHEMES[-1], choices=prior.PRIOR_SCHEMES)
    ap.add_argument("--corpus", type=Path, default=ROOT / "work-data" / "corpus")
    ap.add_argument("--per-source", type=int, default=40_000, help="bytes of each source's held-out tail")
    args = ap.parse_args(argv)

    card = model_files.require_model(args.model, None)
    out = prior.prior_path(card, args.scheme)
    if out.exists():
        print(f"build_prior: {out} exists; a shipped prior is never replaced (members record its sha256)",
              file=sys.stderr)
        return 2
    data = warmup_text(args.corpus, args.per_source)
    params = LmCodec.default_params
    plan = plan_segments(len(data), int(params["min_segment"]), int(params["max_segments"]))
    net = runtime.step_model(card, model_files.file_sha256(card.path))
    lay = mixer_layout.layout(args.scheme)
    hidden = int(net.zero_state(1).shape[-1])
    cold = mixer_tables.MixerTables(plan.count, plan.size, hidden, lay)
    none = np.zeros(0, dtype=np.int64)
    zero = prior.Prior("", {name: getattr(cold, name).shape for name in prior.TABLES},
                       {name: (none, none) for name in prior.TABLES})  # starts cold
    learnt: list[mixer_tables.MixerTables] = []
    t0 = time.monotonic()
    coded = len(block_coder.encode_block(data, plan, net, 0, args.scheme, zero, learnt))
    sha = prior.save_prior(out, learnt[0], cold)
    card_path = card.path.with_suffix(".json")
    raw = json.loads(card_path.read_text())
    raw.setdefault(model_files.PRIORS_KEY, {})[args.scheme] = {
        "file": out.name, "sha256": sha, "bytes": out.stat().st_size,
        "built_from": f"first {args.per_source:,d} bytes of the held-out tail of each of "
                      f"{', '.join(SOURCES)} (work-data/corpus from tools/lm/build_corpus.py)",
        "warmup_bytes": len(data), "warmup_coded_bytes": coded,
        "command": " ".join(["tools/lm/build_prior.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    card_path.write_text(json.dumps(raw, indent=2) + "\n")
    print(f"{out.name}: {out.stat().st_size:,d} bytes, sha256 {sha[:12]}...; warm-up {len(data):,d} -> "
          f"{coded:,d} bytes in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
