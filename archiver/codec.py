"""The contract between the archiver and a codec.

A codec turns one block of raw bytes into a payload and back. It knows nothing about archives, files or
screens: the core cuts members into blocks, records ``name``/``version``/``params`` in the member header,
and later rebuilds the codec from exactly those values to decode. Copy ``lmar/plugins/zlib_codec.py`` to
write your own.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

from .errors import CodecError

#: Parameter values must survive a msgpack round trip unchanged.
ParamValue = Any


class Codec:
    """Base class for codecs. Subclasses set the class attributes and implement compress/decompress."""

    #: Stable identifier written into archives; never reuse a name for a different bitstream.
    name: ClassVar[str] = ""
    #: Bitstream version written with each member; bump it when old payloads would no longer decode.
    version: ClassVar[int] = 1
    #: "classical", "lm", "image", "audio", ... (shown by ``lmar codecs`` and used by selection presets).
    kind: ClassVar[str] = "classical"
    description: ClassVar[str] = ""
    #: Preferred raw bytes per independent block; the core caps it (see ``lmar.formats.container``).
    block_size: ClassVar[int] = 4 << 20
    #: Rough compression speed on one core in bytes/s; selection uses it to keep within a time budget.
    speed: ClassVar[float] = 20e6
    #: Decode every block before committing it (LM codecs: float numerics must be proven reproducible).
    verify_by_default: ClassVar[bool] = False
    #: Default parameters; ``params`` passed to ``__init__`` override them.
    default_params: ClassVar[Mapping[str, ParamValue]] = {}

    def __init__(self, **params: ParamValue) -> None:
        unknown = set(params) - set(self.default_params)
        if unknown:
            raise CodecError(f"codec {self.name}: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.params: dict[str, ParamValue] = {**self.default_params, **params}

    # -- discovery -------------------------------------------------------------------------------------
    @classmethod
    def availability(cls) -> tuple[bool, str]:
        """(usable here?, why not). Override when a codec needs something optional (a model, a library)."""
        return True, ""

    @classmethod
    def info(cls) -> dict[str, Any]:
        """Extra facts for ``lmar codecs`` (e.g. a model id)."""
        return {}

    # -- coding ----------------------------------------------------------------------------------------
    def accepts(self, data: bytes) -> bool:
        """Whether this codec can code ``data`` at all; domain codecs (images, audio) decline other bytes."""
        return True

    def compress(self, data: bytes) -> bytes:
        raise NotImplementedError

    def decompress(self, payload: bytes, size: int) -> bytes:
        """Return exactly ``size`` bytes; raise :class:`CodecError` on a bad payload."""
        raise NotImplementedError

    def estimate(self, sample: bytes) -> float | None:
        """Cheaply predict compressed/raw for data like ``sample``; ``None`` means "run a real trial"."""
        return None

    def header_info(self) -> dict[str, Any]:
        """Facts to record beside the parameters that help explain a failed decode (model id, numerics)."""
        return {}

    def mismatch_hint(self, recorded_info: Mapping[str, Any]) -> str:
        """Explain why decoded bytes may differ from what was encoded (e.g. a different numerics profile)."""
        return ""
