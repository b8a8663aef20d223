"""Catalogue of the stable finding codes the SIE library reports.

Callers (the gRPC service, the CLI, other engineers' controls) match on these codes, so a
code, once published, never changes meaning. Severity in the table is the default; the
policy column names the `ReadPolicy` switch that changes it.

| code | severity | meaning |
|---|---|---|
| NOT_SIE | error | not a SIE file (empty, binary, an HTML page, ...) |
| TRUNCATED | error | input ends inside a voucher, or `#KSUMMA` opened but never closed |
| CHECKSUM_MISMATCH | error | stated `#KSUMMA` differs from the computed CRC (both given) |
| VOUCHER_UNBALANCED | error (1) | the `#TRANS` rows (only those) do not sum to zero |
| INVALID_DATE | error | a date is not a valid `YYYYMMDD` (period: `YYYYMM`) |
| INVALID_AMOUNT | error | amount is not `-digits[.dd]` or has more than 15 digits |
| INVALID_NUMBER | warning | a quantity, year index or flag is not a number |
| VOUCHER_DATE_OUTSIDE_YEARS | warning | the voucher date lies in no `#RAR` year |
| ACCOUNT_NOT_DECLARED | warning | an account is used but has no `#KONTO` |
| MISSING_MANDATORY_RECORD | warning (2) | a required record is absent (or `#FNAMN` is empty) |
| FORBIDDEN_RECORD_IN_4I | error (3) | a record the spec forbids in an import (4I) file |
| DUPLICATE_VOUCHER_NUMBER | error | a number occurs twice in one voucher series |
| MALFORMED_RECORD | error/warning | fields missing, braces misplaced, row outside a voucher |
| MISSING_ACCOUNT | error | a voucher row names no account (`#TRANS "" {} 100.00`); row dropped |
| INVALID_ORG_NUMBER | warning | `#ORGNR` is not `nnnnnn-nnnn` (message: the number read, if any) |
| UNKNOWN_LABEL | warning | label not in the spec; the record is skipped (once per label) |
| ENCODING_REPAIRED | warning | Latin-1 letters in CP437 text decoded as Latin-1 |
| ENCODING_MIXED | warning | non-UTF-8 lines in a UTF-8 file decoded as CP437 |
| LINE_TOO_LONG | error | a line exceeds `max_line_bytes`; it is skipped |
| FINDINGS_LIMIT | warning | more findings of one code than kept; the rest only counted |
| CHARACTER_REPLACED | warning | (writer) a character CP437 cannot hold was replaced |
| CLOSING_BALANCE_MISMATCH | warning | (controls) `#IB` + the year's `#TRANS` differs from `#UB` |
| RESULT_MISMATCH | warning | (controls) a result account's `#TRANS` sum differs from `#RES` |
| OPENING_NOT_PREVIOUS_CLOSING | warning | (controls) `#IB` differs from last year's closing |
| OPENING_BALANCE_SHEET_UNBALANCED | warning | (controls) the year's `#IB` rows do not sum to 0 |
| STATED_FIGURES_INCONSISTENT | warning | (controls) `#UB` + `#RES` differs from `#IB` |

(1) warning with `allow_unbalanced`; (2) error with `strict_mandatory`;
(3) warning without `strict_4i`. MALFORMED_RECORD is an error for `#VER`/row problems
and a warning for identification and chart records.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Finding codes; the value is the stable UPPER_SNAKE string."""

    NOT_SIE = "NOT_SIE"
    TRUNCATED = "TRUNCATED"
    CHECKSUM_MISMATCH = "CHECKSUM_MISMATCH"
    VOUCHER_UNBALANCED = "VOUCHER_UNBALANCED"
    INVALID_DATE = "INVALID_DATE"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    INVALID_NUMBER = "INVALID_NUMBER"
    VOUCHER_DATE_OUTSIDE_YEARS = "VOUCHER_DATE_OUTSIDE_YEARS"
    ACCOUNT_NOT_DECLARED = "ACCOUNT_NOT_DECLARED"
    MISSING_MANDATORY_RECORD = "MISSING_MANDATORY_RECORD"
    FORBIDDEN_RECORD_IN_4I = "FORBIDDEN_RECORD_IN_4I"
    DUPLICATE_VOUCHER_NUMBER = "DUPLICATE_VOUCHER_NUMBER"
    MALFORMED_RECORD = "MALFORMED_RECORD"
    MISSING_ACCOUNT = "MISSING_ACCOUNT"
    INVALID_ORG_NUMBER = "INVALID_ORG_NUMBER"
    UNKNOWN_LABEL = "UNKNOWN_LABEL"
    ENCODING_REPAIRED = "ENCODING_REPAIRED"
    ENCODING_MIXED = "ENCODING_MIXED"
    LINE_TOO_LONG = "LINE_TOO_LONG"
    FINDINGS_LIMIT = "FINDINGS_LIMIT"
    CHARACTER_REPLACED = "CHARACTER_REPLACED"
    CLOSING_BALANCE_MISMATCH = "CLOSING_BALANCE_MISMATCH"
    RESULT_MISMATCH = "RESULT_MISMATCH"
    OPENING_NOT_PREVIOUS_CLOSING = "OPENING_NOT_PREVIOUS_CLOSING"
    OPENING_BALANCE_SHEET_UNBALANCED = "OPENING_BALANCE_SHEET_UNBALANCED"
    STATED_FIGURES_INCONSISTENT = "STATED_FIGURES_INCONSISTENT"
