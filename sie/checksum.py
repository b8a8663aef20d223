"""The `#KSUMMA` CRC-32 (spec ch. 10, sie-format.md §9).

The CRC runs over each record between the opening and closing `#KSUMMA`: the label and
every field's content, in CP437 bytes, without separators, quotes or braces. That is the
zlib CRC-32, chained record by record.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from sie.tokens import Field


def flatten(fields: Iterable[Field]) -> str:
    """Concatenate field contents as the checksum sees them (object lists unpacked)."""
    return "".join(f if isinstance(f, str) else "".join(f) for f in fields)


def crc_update(crc: int, fields: Iterable[Field]) -> int:
    """Feed one record's fields into the running CRC."""
    return zlib.crc32(flatten(fields).encode("cp437", errors="replace"), crc)
