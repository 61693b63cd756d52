"""Hard limits a reader enforces before it allocates anything an untrusted archive asks for."""
from __future__ import annotations

#: Largest raw block a writer may produce and a reader will accept (memory stays bounded per block).
MAX_BLOCK = 256 << 20
#: A stored block may be a little larger than its raw bytes (incompressible data plus codec framing).
MAX_STORED_BLOCK = MAX_BLOCK + (MAX_BLOCK >> 4) + (1 << 20)
#: One member header (metadata only).
MAX_HEADER = 1 << 20
#: The end-of-member record.
MAX_END_RECORD = 4096
#: The trailing index (all headers); also bounded by the archive's size.
MAX_INDEX = 1 << 30
#: Strings (paths, link targets) and nested containers inside headers.
MAX_STR = 1 << 16
MAX_ITEMS = 1 << 12
