#!/usr/bin/env bash
# `make demo`: archive real files with the shipped default model, then list, test, extract and compare.
# Uses ../shared/corpus/ when present, else files of this repository. Compares the size with xz -9e.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in"
if [ -d "$here/../shared/corpus/text" ]; then
  cp "$here/../shared/corpus/text/"{alice29.txt,cp.html,fields.c,grammar.lsp,xargs.1} "$work/in/"
  cp "$here/../shared/corpus/binary/random_org_10k.bin" "$work/in/" 2>/dev/null || true
else
  cp "$here/README.md" "$here/formats/SPEC.md" "$here/archiver/"*.py "$work/in/"
fi
cd "$work"
echo "== lmar codecs"
lmar codecs
echo
echo "== lmar create demo.lmar in/   (auto: small files coded together in solid blocks, every codec tried per block, the smallest kept)"
lmar create demo.lmar in -v
echo
echo "== lmar list -l demo.lmar"
lmar list -l demo.lmar
echo
echo "== lmar test demo.lmar"
lmar test demo.lmar
echo
echo "== lmar extract demo.lmar -C out"
lmar extract demo.lmar -C out
diff -r in out/in && echo "extracted tree is identical to the input"
echo
raw=$(cat in/* | wc -c)
arc=$(stat -c %s demo.lmar)
if command -v xz >/dev/null; then
  xzs=$(tar -cf - in | xz -9e -c | wc -c)
  echo "input: $raw bytes   lmar: $arc bytes ($(( arc * 1000 / raw ))‰)   tar|xz -9e: $xzs bytes ($(( xzs * 1000 / raw ))‰)"
else
  echo "input: $raw bytes   lmar: $arc bytes"
fi
