#!/usr/bin/env bash
# Regenerate lmar's published benchmark: measures every built-in codec and the command-line baselines on
# the development corpus, writes docs/bench/corpus.{md,json,png} and splices the Markdown into
# docs/BENCHMARKS.md between the "bench:begin"/"bench:end" markers. One command: `make bench` (or this
# script with the venv's bin/ on PATH).
#
#   tools/bench_corpus.sh [CORPUS_DIR] [more `lmar bench` options...]
#   e.g. tools/bench_corpus.sh --reuse docs/bench/corpus.json   # measure only what changed (a new codec)
#
# Only lmar's own codecs are measured (LMAR_LOAD_PLUGINS= loads no third-party plugin), so the figures do
# not depend on what else is installed. The chunked (paper) setting codes 32 evenly spread 2 kB chunks per
# file: LM codecs code one chunk per call at a few kB/s, and every chunk of an 11 MB corpus would take
# hours. Expect tens of minutes on 2 cores with an LM codec.
set -euo pipefail
cd "$(dirname "$0")/.."

corpus=../shared/corpus
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  corpus=$1
  shift
fi
out=docs/bench
if [ ! -d "$corpus" ]; then
  echo "bench_corpus: corpus directory '$corpus' not found" >&2
  exit 2
fi
mkdir -p "$out"
lmar=$(command -v lmar || echo .venv/bin/lmar)

LMAR_LOAD_PLUGINS= nice -n 10 "$lmar" bench "$corpus" --exclude MANIFEST.md --repeat 1 --chunk-size 2048 \
  --chunk-sample 32 --md "$out/corpus.md" --json "$out/corpus.json" --plot "$out/corpus.png" "$@"

python3 - "$out/corpus.md" docs/BENCHMARKS.md <<'EOF'
import sys
from pathlib import Path

generated, doc = Path(sys.argv[1]).read_text(), Path(sys.argv[2])
begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
text = doc.read_text()
if begin not in text or end not in text:
    sys.exit(f"bench_corpus: {doc} lacks the {begin} / {end} markers")
head, rest = text.split(begin, 1)
doc.write_text(head + begin + "\n" + generated + rest[rest.index(end):])
print(f"bench_corpus: updated {doc}")
EOF
