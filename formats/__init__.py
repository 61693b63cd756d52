"""The lmar on-disk format: bytes in, records out. Knows no codec and no file system (see SPEC.md).

``container`` reads and writes format 2 (``records`` frames it, ``member_table`` packs member metadata);
``legacy_v1`` only reads format 1.0 archives.
"""
from .container import MAX_BLOCK, ContainerReader, ContainerWriter, open_container  # noqa: F401
from .records import FORMAT_MAJOR, FORMAT_MINOR  # noqa: F401
