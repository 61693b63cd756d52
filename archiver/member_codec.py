"""A member's codec on the reading side: rebuilt through the registry, blocks decoded and checked.

Both readers (format 2 and the legacy format 1.0) decode through here, so a missing codec, a too-new
bitstream, a failing codec and a decode that gives different bytes read the same whatever the format.
"""
from __future__ import annotations

from typing import Any

import xxhash

from .errors import ChecksumError, CodecError, CodecUnavailable, FormatError
from .members import CodecRef, MemberInfo
from .registry import Registry, plugin_words


def codec_for(registry: Registry, info: MemberInfo) -> Any:
    """The codec that decodes ``info``, or a one-line error naming the member (and the model it needs)."""
    ref = info.codec
    if ref is None:
        raise FormatError(f"{info.path}: records no codec: archive is corrupt")
    try:
        cls = registry.get(ref.name, ref.provider)
    except CodecUnavailable as exc:
        raise CodecUnavailable(f"{info.path}: {exc}{missing_note(registry, ref)}") from None
    if ref.version > cls.version:
        raise CodecUnavailable(f"{info.path}: coded with {ref.name} version {ref.version}; the installed codec "
                               f"is version {cls.version} — upgrade {ref.provider or 'the plugin'}")
    try:
        return registry.create(ref.name, ref.params, ref.provider, ref.version)
    except CodecError as exc:
        raise type(exc)(f"{info.path}: {exc}") from None


def decode_checked(codec: Any, stored: bytes, raw_len: int, raw_xxh64: int, intact: bool,
                   info: MemberInfo, k: int) -> bytes:
    """Block ``k`` of ``info`` decoded, after its stored checksum and before its raw one is trusted."""
    if not intact:
        raise FormatError(f"{info.path}: block {k} is corrupt (stored checksum mismatch)")
    try:
        raw = codec.decompress(stored, raw_len)
    except CodecError as exc:  # a float model decoded elsewhere often fails here, before any checksum
        raise CodecError(f"{info.path}: block {k}: {exc}{hint(codec, info)}") from None
    except Exception as exc:  # a codec bug must not become a traceback
        raise CodecError(f"{info.path}: block {k}: codec {codec.name} failed: {type(exc).__name__}: {exc}"
                         f"{hint(codec, info)}") from None
    if len(raw) != raw_len or xxhash.xxh3_64_intdigest(raw) != raw_xxh64:
        raise ChecksumError(f"{info.path}: block {k} decoded to different bytes{hint(codec, info)}")
    return raw


def hint(codec: Any, info: MemberInfo) -> str:
    """The codec's explanation of a mismatch (e.g. another machine's numerics), from what the member recorded."""
    if codec is None:
        return ""
    text = plugin_words(lambda: codec.mismatch_hint(info.codec.info if info.codec else {}))
    return f" ({text})" if text else ""


def missing_note(registry: Registry, ref: CodecRef) -> str:
    """What a plugin knows about the missing codec (an ``llm-*`` model to import); the core never reads params."""
    text = registry.missing_hint(ref.name, ref.params)
    return f" ({text})" if text else ""
