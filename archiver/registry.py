"""Finds codecs: every module in the ``lmar`` entry point group is loaded as a pluggy plugin.

Built-in codecs are listed in lmar's own pyproject under that group, so they arrive exactly as a
third-party plugin would. ``LMAR_LOAD_PLUGINS`` (comma list of entry point names, empty for none) limits
which *third-party* plugins load; a plugin that fails to import is recorded, not fatal.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Mapping

import pluggy

from . import hookspecs
from .codec import Codec
from .errors import CodecError, CodecUnavailable

ENTRY_POINT_GROUP = "lmar"
BUILTIN_DISTRIBUTION = "lmar"


@dataclass
class PluginFailure:
    plugin: str
    provider: str
    error: str


@dataclass
class Registry:
    codecs: dict[str, type[Codec]] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    manager: pluggy.PluginManager | None = None

    def register(self, codec_cls: type[Codec], provider: str = "") -> None:
        if not codec_cls.name:
            raise CodecError(f"{codec_cls.__qualname__} has no name")
        self.codecs[codec_cls.name] = codec_cls
        self.providers[codec_cls.name] = provider

    def get(self, name: str, provider: str = "") -> type[Codec]:
        try:
            return self.codecs[name]
        except KeyError:
            hint = f"; install the package that provides it ({provider})" if provider else ""
            raise CodecUnavailable(f"codec '{name}' is not installed{hint}") from None

    def create(self, name: str, params: Mapping[str, Any] | None = None, provider: str = "") -> Codec:
        """Instantiate a codec for coding, raising :class:`CodecUnavailable` if it cannot run here."""
        cls = self.get(name, provider)
        ok, why = cls.availability()
        if not ok:
            raise CodecUnavailable(f"codec '{name}' cannot run here: {why}")
        return cls(**dict(params or {}))

    def available_names(self) -> list[str]:
        return [n for n, c in self.codecs.items() if c.availability()[0]]


def _wanted_third_party() -> set[str] | None:
    raw = os.environ.get("LMAR_LOAD_PLUGINS")
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else ""


def load_registry() -> Registry:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    reg = Registry(manager=pm)
    wanted = _wanted_third_party()
    seen: set[str] = set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        provider = _dist_name(ep)
        if ep.name in seen:  # the same distribution can appear twice on sys.path (editable installs)
            continue
        seen.add(ep.name)
        if provider != BUILTIN_DISTRIBUTION and wanted is not None and ep.name not in wanted:
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:  # a broken plugin must not break the archiver
            reg.failures.append(PluginFailure(ep.name, provider, f"{type(exc).__name__}: {exc}"))
            continue
        # Each plugin registers separately so we know which distribution provides each codec.
        hook = pm.subset_hook_caller("register_codecs", remove_plugins=[p for p in pm.get_plugins() if p is not module])
        try:
            hook(register=lambda cls, _p=provider: reg.register(cls, _p))
        except Exception as exc:
            reg.failures.append(PluginFailure(ep.name, provider, f"{type(exc).__name__}: {exc}"))
    return reg


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = load_registry()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the loaded registry (tests that change ``LMAR_LOAD_PLUGINS``)."""
    global _REGISTRY
    _REGISTRY = None
