"""Lossless byte-level BPE: any byte string -> token ids -> the same bytes.

Why not the stock tokenizer: it rejects invalid UTF-8, normalises nothing but still turns text such as
``<|endoftext|>`` into a special token, and some vocabularies lack single-byte tokens (SmolLM2 has no token
for 21 byte values). Here the pre-split runs on the bytes decoded with ``surrogateescape`` (so invalid
UTF-8 survives as lone surrogates), each piece is mapped through the GPT-2 byte->unicode table and merged
with the model's own BPE ranks, and special (added) tokens are never produced. A byte the vocabulary
cannot express becomes an *escape*: the symbol ``ESCAPE_BASE + byte`` in the returned stream, which the
coder writes as the escape token id followed by the raw byte under a uniform 256-way distribution.

Tokenisation only has to be reproducible enough to compress well: the decoder never re-tokenises, it maps
decoded ids back to bytes, so a different pre-split regex engine changes the ratio, never correctness.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from lmar.errors import LmarError

try:  # the `regex` module knows \p{L}; plain `re` gets a close approximation (ratio only, not losslessness)
    import regex as _re

    _PAT = _re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
except ImportError:  # pragma: no cover - depends on the environment
    import re as _re

    _PAT = _re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


@lru_cache(maxsize=1)
def byte_to_unicode() -> tuple[str, ...]:
    """GPT-2's table: every byte maps to a printable, non-space unicode character."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table: dict[int, int] = {b: b for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = 256 + extra
            extra += 1
    return tuple(chr(table[b]) for b in range(256))


class ByteBPE:
    """Byte-level BPE over a Hugging Face ``tokenizer.json`` (vocab + merges + added tokens).

    ``encode`` returns ints: ``< vocab_size`` are token ids, ``ESCAPE_BASE + b`` (``ESCAPE_BASE`` equals
    the model's vocabulary size) stands for raw byte ``b`` that has to be escaped.
    """

    def __init__(self, vocab: dict[str, int], merges: Sequence[tuple[str, str]], special: dict[str, int],
                 vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self.special_ids = frozenset(special.values())
        self.token_to_id = {t: i for t, i in vocab.items() if i not in self.special_ids and i < vocab_size}
        self.ranks = {pair: r for r, pair in enumerate(merges)}
        b2u = byte_to_unicode()
        self.b2u = b2u
        u2b = {u: b for b, u in enumerate(b2u)}
        # bytes of each id; None for ids that are never produced from text (special, unmapped, padding)
        self.id_bytes: list[bytes | None] = [None] * vocab_size
        for tok, i in self.token_to_id.items():
            if all(c in u2b for c in tok):
                self.id_bytes[i] = bytes(u2b[c] for c in tok)
        self.start_id, self.escape_id = self._pick_control_ids(special)
        self._cache: dict[bytes, tuple[int, ...]] = {}

    # -- construction ------------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, vocab_size: int | None = None) -> "ByteBPE":
        try:
            tj = json.loads(Path(path).read_text(encoding="utf-8"))
            model = tj["model"]
        except (OSError, ValueError, KeyError) as exc:
            raise LmarError(f"cannot read tokenizer {path}: {exc}") from None
        if model.get("type") != "BPE":
            raise LmarError(f"tokenizer {path}: only byte-level BPE is supported, not {model.get('type')}")
        merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        special = {a["content"]: int(a["id"]) for a in tj.get("added_tokens", [])}
        vocab = {t: int(i) for t, i in model["vocab"].items()}
        size = vocab_size or max([*vocab.values(), *special.values()]) + 1
        return cls(vocab, merges, special, size)  # type: ignore[arg-type]

    def _pick_control_ids(self, special: dict[str, int]) -> tuple[int, int]:
        """Start-of-segment input and escape symbol: added tokens, which text never produces.

        The start id is ``<|endoftext|>`` when present (documents follow it in pre-training); the escape is
        the highest other special id, so no real text token is sacrificed.
        """
        ids = sorted(i for i in special.values() if i < self.vocab_size)
        if not ids:
            raise LmarError("tokenizer has no special token to use as segment start and escape")
        start = special.get("<|endoftext|>", ids[0])
        others = [i for i in ids if i != start]
        return start, (others[-1] if others else start)

    # -- encoding ----------------------------------------------------------------------------------------
    @property
    def escape_base(self) -> int:
        return self.vocab_size

    def pieces(self, data: bytes) -> list[bytes]:
        """Pre-split like GPT-2 (words, numbers, punctuation runs, spaces); always covers ``data`` exactly."""
        text = data.decode("utf-8", "surrogateescape")
        parts = _PAT.findall(text)
        if "".join(parts) != text:  # defensive: an approximate regex must never drop bytes
            parts = [text]
        return [p.encode("utf-8", "surrogateescape") for p in parts]

    def encode(self, data: bytes) -> list[int]:
        out: list[int] = []
        cache = self._cache
        for piece in self.pieces(data):
            ids = cache.get(piece)
            if ids is None:
                ids = self._bpe(piece)
                if len(cache) < 200_000:
                    cache[piece] = ids
            out.extend(ids)
        return out

    def _bpe(self, piece: bytes) -> tuple[int, ...]:
        syms = [self.b2u[b] for b in piece]
        ranks = self.ranks
        while len(syms) > 1:
            best, best_rank = None, None
            for pair in zip(syms, syms[1:]):
                r = ranks.get(pair)
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = pair, r
            if best is None:
                break
            merged, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == best[0] and syms[i + 1] == best[1]:
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(syms[i])
                    i += 1
            syms = merged
        out: list[int] = []
        for s in syms:
            out.extend(self._symbol_ids(s))
        return tuple(out)

    def _symbol_ids(self, sym: str) -> Iterable[int]:
        i = self.token_to_id.get(sym)
        if i is not None and self.id_bytes[i] is not None:
            return (i,)
        if len(sym) == 1:  # a byte the vocabulary lacks
            return (self.escape_base + self.b2u.index(sym),)
        return [j for c in sym for j in self._symbol_ids(c)]

    # -- decoding ----------------------------------------------------------------------------------------
    def decode(self, symbols: Iterable[int]) -> bytes:
        """Inverse of :meth:`encode` (raises :class:`LmarError` on ids text never produces)."""
        out = bytearray()
        for s in symbols:
            out += self.symbol_bytes(s)
        return bytes(out)

    def symbol_bytes(self, s: int) -> bytes:
        if s >= self.escape_base:
            return bytes((s - self.escape_base,))
        b = self.id_bytes[s] if 0 <= s < self.vocab_size else None
        if b is None:
            raise LmarError(f"token id {s} does not stand for text (corrupt payload?)")
        return b

    def missing_bytes(self) -> list[int]:
        """Byte values with no single-byte token (they are coded through the escape)."""
        return [b for b in range(256) if self.b2u[b] not in self.token_to_id]
