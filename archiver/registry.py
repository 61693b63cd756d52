"""Finds codecs: every module in the ``lmar`` entry point group is loaded as a pluggy plugin.

Built-in codecs are listed in lmar's own pyproject under that group, so they arrive exactly as a
third-party plugin would, and they load first. A codec name is owned by the first distribution that
registers it: a later codec of the same name (an unchanged copy of ``zlib_codec.py``, a second ``lm``) is
refused and recorded as a plugin failure, never allowed to replace the decoder of existing archives.

``LMAR_LOAD_PLUGINS`` (comma list, empty for none) limits which *third-party* plugins load; it takes
distribution names, as ``lmar codecs`` shows them (``lmar-example-codec``), or entry point names (older
spelling, still accepted). A plugin that fails to import is recorded, not fatal.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Mapping

import pluggy

from . import hookspecs
from .codec import Codec
from .errors import CodecError, CodecUnavailable

ENTRY_POINT_GROUP = "lmar"
BUILTIN_DISTRIBUTION = "lmar"
log = logging.getLogger("lmar")


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
        """Add a codec; a name already taken by another class is refused (:class:`CodecError` naming both)."""
        name = codec_cls.name
        if not name:
            raise CodecError(f"{codec_cls.__qualname__} has no name")
        old = self.codecs.get(name)
        if old is not None and old is not codec_cls:
            raise CodecError(f"codec name '{name}' from {provider or '?'} is already provided by "
                             f"{self.providers.get(name) or '?'}; refused (a codec name belongs to one provider)")
        self.codecs[name] = codec_cls
        self.providers[name] = provider

    def get(self, name: str, provider: str = "") -> type[Codec]:
        try:
            return self.codecs[name]
        except KeyError:
            hint = f"; install the package that provides it ({provider})" if provider else ""
            raise CodecUnavailable(f"codec '{name}' is not installed{hint}") from None

    def create(self, name: str, params: Mapping[str, Any] | None = None, provider: str = "",
               version: int | None = None) -> Codec:
        """Instantiate a codec for coding, raising :class:`CodecUnavailable` if it cannot run here.

        ``params`` are a member's recorded ones when reading, and ``version`` the bitstream version it
        recorded: the codec's :meth:`Codec.read_params` turns them into what decodes that member, and its
        :meth:`Codec.describe` of them says what the member needs (its model, say), which
        ``availability()`` alone cannot know.
        """
        cls = self.get(name, provider)
        ok, why = cls.availability()
        if not ok:
            needs = describe(cls, params) if params is not None else ""
            raise CodecUnavailable(f"codec '{name}' cannot run here: {why}" + (f" (it needs {needs})" if needs else ""))
        if version is not None:
            return cls(**cls.read_params(params or {}, version))
        return cls(**dict(params or {}))

    def available_names(self) -> list[str]:
        return [n for n, c in self.codecs.items() if c.availability()[0]]

    def fallback(self) -> Codec:
        """The codec that takes any bytes and needs no trial (``store``): lowest ``fallback_rank`` that can run."""
        cls = self._ranked("fallback_rank")
        if cls is None:
            raise CodecUnavailable("no fallback codec is installed (lmar's store codec declares fallback_rank)")
        return cls()

    def fallback_name(self) -> str | None:
        cls = self._ranked("fallback_rank")
        return cls.name if cls is not None else None

    def probe(self) -> type[Codec] | None:
        """The codec whose ``probe_size`` tells incompressible data quickly (``zstd``), or None if none is here."""
        return self._ranked("probe_rank")

    def _ranked(self, attr: str) -> type[Codec] | None:
        ranked = [(getattr(c, attr), self.providers.get(n) != BUILTIN_DISTRIBUTION, n)
                  for n, c in self.codecs.items() if getattr(c, attr, None) is not None]
        for _, _, name in sorted(ranked):
            if self.codecs[name].availability()[0]:
                return self.codecs[name]
        return None

    def missing_hint(self, name: str, params: Mapping[str, Any]) -> str:
        """What a plugin knows about a codec name it does not provide here (e.g. an ``llm-*`` model to import)."""
        if self.manager is None:
            return ""
        return plugin_words(lambda: self.manager.hook.missing_codec_hint(name=name, params=dict(params)))


def plugin_words(call: Callable[[], Any]) -> str:
    """The text a plugin's method returns to word a message, or "" when it fails or returns no text: such
    words only explain, so a plugin's bug must never hide the real error or break a listing."""
    try:
        text = call()
    except Exception:
        return ""
    return text if isinstance(text, str) else ""


def describe(cls: type[Codec], params: Mapping[str, Any] | None) -> str:
    """``cls.describe(params)``, or "" when a plugin's method fails."""
    return plugin_words(lambda: cls.describe(params))


def machine_binding(registry: "Registry", name: str, recorded_info: Mapping[str, Any]) -> str:
    """What machines a member of codec ``name`` with ``recorded_info`` is bound to ("" for any machine, or
    when the codec is not installed here or its method fails: this only words a note)."""
    cls = registry.codecs.get(name)
    return "" if cls is None else plugin_words(lambda: cls.machine_binding(dict(recorded_info)))


def normalize(name: str) -> str:
    """A distribution name as packaging compares them (``Lmar_Example.codec`` == ``lmar-example-codec``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _wanted_third_party() -> set[str] | None:
    raw = os.environ.get("LMAR_LOAD_PLUGINS")
    if raw is None:
        return None
    return {normalize(p.strip()) for p in raw.split(",") if p.strip()}


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else ""


def _entry_points() -> list[tuple[str, metadata.EntryPoint]]:
    """(distribution, entry point), lmar's own first so its names cannot be taken; then by name, stably."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        provider = _dist_name(ep)
        key = (normalize(provider), ep.name, ep.value)
        if key in seen:  # the same distribution can appear twice on sys.path (editable installs)
            continue
        seen.add(key)
        out.append((provider, ep))
    out.sort(key=lambda pe: (pe[0] != BUILTIN_DISTRIBUTION, normalize(pe[0]), pe[1].name))
    return out


def load_registry() -> Registry:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    reg = Registry(manager=pm)
    wanted = _wanted_third_party()
    for provider, ep in _entry_points():
        third_party = provider != BUILTIN_DISTRIBUTION
        if third_party and wanted is not None and normalize(ep.name) not in wanted and normalize(provider) not in wanted:
            continue
        try:
            module = ep.load()
            pm.register(module, name=f"{provider}:{ep.name}")  # entry point names are unique per distribution only
        except Exception as exc:  # a broken plugin must not break the archiver
            reg.failures.append(PluginFailure(ep.name, provider, f"{type(exc).__name__}: {exc}"))
            continue

        def register(cls: type[Codec], _p: str = provider, _ep: str = ep.name) -> None:
            try:
                reg.register(cls, _p)
            except CodecError as exc:  # a clash refuses that codec; the plugin's other codecs still register
                reg.failures.append(PluginFailure(_ep, _p, str(exc)))
                _warn(f"plugin {_ep} (from {_p or '?'}): {exc}")

        # Each plugin registers separately so we know which distribution provides each codec.
        hook = pm.subset_hook_caller("register_codecs", remove_plugins=[p for p in pm.get_plugins() if p is not module])
        try:
            hook(register=register)
        except Exception as exc:
            reg.failures.append(PluginFailure(ep.name, provider, f"{type(exc).__name__}: {exc}"))
    return reg


def _warn(message: str) -> None:
    """One line on stderr (via logging's last-resort handler unless the application configures ``lmar``),
    from the main process only: worker processes load the registry again and would repeat it."""
    import multiprocessing  # here: ~15 ms to import, and only a warning needs it

    if multiprocessing.parent_process() is None:
        log.warning("lmar: warning: %s", message)


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
