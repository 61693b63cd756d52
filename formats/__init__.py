"""The lmar on-disk format: bytes in, records out. Knows no codec and no file system (see SPEC.md)."""
from .container import (  # noqa: F401
    FORMAT_MAJOR,
    FORMAT_MINOR,
    MAX_BLOCK,
    BlockRecord,
    ContainerReader,
    ContainerWriter,
    MemberEnd,
)
