# ruff: noqa: E402
"""SIE 1-4 (4E/4I) codec: a streaming reader that explains every problem, and a writer.

A leaf package: it imports only the standard library. Entry points:

* `SieReader` - push-style: `feed(chunk) -> list[Event]`, `close()`, `summary()`.
* `iter_events`, `read_document`, `read_summary` - pull-style over bytes, files, paths
  and chunk iterators.
* `write_document`, `write_4i`, `iter_document_bytes` - CP437/CRLF writer.
* `YearEndControls`, `read_controls`, `cross_year_findings` - year-end controls (trial
  balance, closing/result checks, opening continuity) over the reader's events.
* `sie.cli.main` - the `sie inspect` / `sie write` command line.
"""

from __future__ import annotations

from sie import native

native.choose()  # before any compiled module is imported, hence the imports below it

from sie.codes import Code
from sie.controls import (
    AccountDifference,
    ControlFinding,
    ControlsResult,
    TrialBalanceRow,
    YearControls,
    YearEndControls,
    continuity_findings,
    cross_year_findings,
    read_controls,
)
from sie.document import SieDocument
from sie.findings import Finding, Severity
from sie.policy import ReadPolicy, Variant
from sie.reader import SieReader
from sie.records import (
    Account,
    AccountAttribute,
    AccountInfo,
    Address,
    Balance,
    BalanceKind,
    Dimension,
    Event,
    Extent,
    FinancialYear,
    Flag,
    Generated,
    ObjectDef,
    ObjectList,
    OrgNumber,
    Program,
    Record,
    RowKind,
    SieType,
    TaxYear,
    TextLabel,
    TextRecord,
    TransRow,
    Voucher,
)
from sie.stream import iter_events, read_document, read_summary
from sie.summary import ChecksumStatus, ReadSummary
from sie.writer import SieWriter, WriteResult, iter_document_bytes, write_4i, write_document

__all__ = [
    "Account",
    "AccountAttribute",
    "AccountDifference",
    "AccountInfo",
    "Address",
    "Balance",
    "BalanceKind",
    "ChecksumStatus",
    "Code",
    "ControlFinding",
    "ControlsResult",
    "Dimension",
    "Event",
    "Extent",
    "FinancialYear",
    "Finding",
    "Flag",
    "Generated",
    "ObjectDef",
    "ObjectList",
    "OrgNumber",
    "Program",
    "ReadPolicy",
    "ReadSummary",
    "Record",
    "RowKind",
    "Severity",
    "SieDocument",
    "SieReader",
    "SieType",
    "SieWriter",
    "TaxYear",
    "TextLabel",
    "TextRecord",
    "TransRow",
    "TrialBalanceRow",
    "Variant",
    "Voucher",
    "WriteResult",
    "YearControls",
    "YearEndControls",
    "continuity_findings",
    "cross_year_findings",
    "iter_document_bytes",
    "iter_events",
    "read_controls",
    "read_document",
    "read_summary",
    "write_4i",
    "write_document",
]
