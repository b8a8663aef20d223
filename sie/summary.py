"""What a reader knows about a file once (or while) it has read it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sie.records import FinancialYear


class ChecksumStatus(StrEnum):
    """Outcome of the `#KSUMMA` check."""

    VERIFIED = "verified"
    MISMATCH = "mismatch"
    ABSENT = "absent"


@dataclass(frozen=True, slots=True)
class ReadSummary:
    """Identification, counts and verdicts of one read.

    Attributes:
        encoding: `ascii`, `cp437` or `utf-8` (detected from the bytes, never `#FORMAT`).
        sie_type: value of `#SIETYP` (None if absent; the spec then assumes 1).
        program: `#PROGRAM` name; program_version its version.
        company_name: `#FNAMN`; org_number: `#ORGNR` as written.
        financial_years: the `#RAR` records in file order.
        accounts: number of `#KONTO` records; vouchers: `#VER` blocks read;
        transactions: `#TRANS` rows; unbalanced_vouchers: vouchers whose `#TRANS` rows
        do not sum to zero.
        checksum: `verified`, `mismatch` or `absent`.
        errors, warnings: number of findings by severity (including ones over the limit).
        lines, bytes_read: input consumed so far.
    """

    encoding: str
    sie_type: int | None
    program: str
    program_version: str
    company_name: str
    org_number: str
    financial_years: tuple[FinancialYear, ...]
    accounts: int
    vouchers: int
    transactions: int
    unbalanced_vouchers: int
    checksum: ChecksumStatus
    errors: int
    warnings: int
    lines: int
    bytes_read: int
