"""Explicit reading policy: which deviations are errors and which are tolerated."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Variant(StrEnum):
    """Type-4 flavour; `#SIETYP 4` alone cannot tell an export from an import file."""

    EXPORT = "4E"
    IMPORT = "4I"


@dataclass(frozen=True, slots=True)
class ReadPolicy:
    """Switches for the reader.

    Attributes:
        variant: treat a type-4 file as 4E or 4I; None applies no 4I-only rules.
        allow_unbalanced: report unbalanced vouchers as warnings instead of errors.
        strict_4i: records forbidden in 4I are errors (else warnings).
        strict_mandatory: missing mandatory records are errors (else warnings).
        max_line_bytes: longer lines are skipped with LINE_TOO_LONG (bounds memory).
        max_findings_per_code: findings kept per code; more are only counted.
        keep_voucher_source: give each `Voucher` its lines as they stand in the file, each
            ending in '\n' whatever the file's line ending, in `source` (e.g. to fingerprint
            it cheaply); off, it is ''.
    """

    variant: Variant | None = None
    allow_unbalanced: bool = False
    strict_4i: bool = True
    strict_mandatory: bool = False
    max_line_bytes: int = 1 << 20
    max_findings_per_code: int = 200
    keep_voucher_source: bool = False
