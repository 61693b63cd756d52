"""The contract between the archiver and a codec.

A codec turns one block of raw bytes into a payload and back. It knows nothing about archives, files or
screens: the core cuts members into blocks, records ``name``/``version``/``params`` in the member header,
and later rebuilds the codec from exactly those values to decode. Copy ``lmar/plugins/zlib_codec.py`` to
write your own, and run :func:`lmar.testing.check_codec` on it in your tests.

Selection reads only the declared attributes below (``slow``, ``whole_files``, ``fallback_rank``,
``probe_rank``, ``speed``) and the methods; ``kind`` is descriptive text for ``lmar codecs`` and reports.
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
    #: Bitstream version written with each member; bump it when the payload or the meaning of a parameter
    #: changes. Members of every older version must keep decoding: the core hands each member's recorded
    #: version to :meth:`read_params`, and refuses a member newer than the installed codec.
    version: ClassVar[int] = 1
    #: "classical", "lm", "image", "audio", ...: shown by ``lmar codecs`` and bench reports, nothing more.
    kind: ClassVar[str] = "classical"
    description: ClassVar[str] = ""
    #: Preferred raw bytes per independent block; the core caps it (see ``lmar.formats.container``).
    block_size: ClassVar[int] = 4 << 20
    #: Rough compression speed on one core in bytes/s; selection uses it to keep within a time budget.
    speed: ClassVar[float] = 20e6
    #: Bytes of history a dictionary coder matches against (lzma's dictionary, zstd's window); None for
    #: coders without one. Selection fully trials the longest-window codec on data that repeats itself
    #: further apart than its sample's pieces, which estimates on the pieces cannot see.
    window: ClassVar[int | None] = None
    #: Rough decompression speed on one core in bytes/s; None: the same as ``speed`` (a symmetric coder: PPMd,
    #: a language model). Extraction uses it to judge whether decoding groups in worker processes pays.
    decode_speed: ClassVar[float | None] = None
    #: Decode every block before committing it (LM codecs: float numerics must be proven reproducible).
    verify_by_default: ClassVar[bool] = False
    #: Never tried at level ``fast``, whatever its speed: a language model (that level promises none runs).
    slow: ClassVar[bool] = False
    #: Codes only whole files it recognises (raw images, WAV audio). Selection then never asks it for an
    #: estimate on a sample but trials it on the whole file, does not store a file it accepts as
    #: incompressible before trying it, and keeps the small files it accepts out of solid blocks.
    whole_files: ClassVar[bool] = False
    #: Set (lower first) on a codec that takes any bytes and needs no trial (``store``: 0). The registry's
    #: fallback is the available one of lowest rank: empty and incompressible data, nothing else eligible.
    fallback_rank: ClassVar[int | None] = None
    #: Set (lower first) on a codec whose :meth:`probe_size` is a fast compressibility test (``zstd``: 0);
    #: selection stores data the probe cannot shrink. Without one, nothing is stored untried.
    probe_rank: ClassVar[int | None] = None
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
        """Extra facts for ``lmar codecs --json`` (e.g. a model id)."""
        return {}

    @classmethod
    def describe(cls, params: Mapping[str, ParamValue] | None = None) -> str:
        """What coding with ``params`` depends on that may be missing here, in a few words ("model
        bytegru-v3i 3f2a9c1d0b4e"); "" for nothing. ``params`` are a member's recorded ones (an error
        message then says what that member needs), or None for the defaults (the ``lmar codecs`` listing).
        The core never reads params itself: only the codec knows what they mean.
        """
        return ""

    @classmethod
    def read_params(cls, params: Mapping[str, ParamValue], version: int) -> dict[str, ParamValue]:
        """The parameters that decode a member which recorded ``params`` at bitstream ``version`` (at most
        :attr:`version`). Override when a version changed what a parameter's absence means: a parameter
        added with a new default must get, for older members, the value that reproduces their behaviour
        (ppmd 2 added ``framing``: a version-1 member has none, and its payload is a bare stream)."""
        return dict(params)

    @classmethod
    def probe_size(cls, data: bytes) -> int:
        """Size of ``data`` coded at the quickest setting (codecs with ``probe_rank`` implement it)."""
        raise NotImplementedError

    # -- coding ----------------------------------------------------------------------------------------
    def accepts(self, data: bytes) -> bool:
        """Whether this codec can code ``data`` at all; domain codecs (images, audio) decline other bytes."""
        return True

    def compress(self, data: bytes) -> bytes:
        raise NotImplementedError

    def decompress(self, payload: bytes, size: int) -> bytes:
        """Return exactly ``size`` bytes; raise :class:`CodecError` on a bad payload.

        Payloads are untrusted: never produce more than ``size + 1`` bytes (use the bounded form of your
        library's decompressor) and never allocate on a payload's word beyond what ``size`` allows.
        """
        raise NotImplementedError

    def estimate(self, sample: bytes) -> float | None:
        """Cheaply predict compressed/raw for data like ``sample``; ``None`` means "run a real trial".

        Asked of every codec but ``whole_files`` ones, on a sample of up to 256 KiB of the file.
        """
        return None

    def header_info(self) -> dict[str, Any]:
        """Facts to record beside the parameters that help explain a failed decode (model id, numerics)."""
        return {}

    @classmethod
    def machine_binding(cls, recorded_info: Mapping[str, Any]) -> str:
        """"" when a member decodes identically on any machine (integer or classical coding). Otherwise, in a
        few words, the machines it is bound to ("x86_64 CPUs with avx2, fma (float numerics)"), from the facts
        the member recorded (:meth:`header_info`). ``lmar list -l`` shows it; ``lmar create`` says it once.
        """
        return ""

    def mismatch_hint(self, recorded_info: Mapping[str, Any]) -> str:
        """Explain why decoded bytes may differ from what was encoded (e.g. a different numerics profile)."""
        return ""
