"""State and finding helpers shared by the reader's record and voucher handlers.

`SieReader` (sie.reader) extends `RecordHandlers` (identification, chart, balances), which
extends `VoucherHandlers` (vouchers, their fast path), which extends this base: one line of
classes, so each module stays small and mypyc can compile them; only `SieReader` is public.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Final

from sie import rules
from sie.charset import LineDecoder
from sie.codes import Code
from sie.findings import Finding, Severity
from sie.numbering import VoucherNumbers
from sie.policy import ReadPolicy, Variant
from sie.records import (
    Event,
    FinancialYear,
    ObjectList,
    RowKind,
    TransRow,
)
from sie.summary import ChecksumStatus
from sie.tokens import Field
from sie.values import parse_amount, parse_date, parse_int, parse_ore, parse_quantity

Handler = Callable[[list[Field], int], None]
RowHead = tuple[RowKind, str, ObjectList]
"""A voucher row's fields before the amount: kind, account, objects."""
RowTail = tuple[date | None, str, Decimal | None, str]
"""A voucher row's optional fields after the amount: date, text, quantity, sign."""

CACHE_LIMIT: Final = 50_000
PLACES_KEPT: Final = 32
"""Row places in a voucher whose last row head is kept (see `_fast_row`)."""
NO_BLOCK: Final = 0
AWAIT_OPEN: Final = 1
IN_BLOCK: Final = 2
"""Voucher block state: no voucher, `#VER` read and `{` awaited, inside `{ }`."""
CRC_OFF: Final = 0
CRC_RUNNING: Final = 1
CRC_DONE: Final = 2
"""Checksum state: no opening `#KSUMMA`, summing, closing `#KSUMMA` read."""


def field_text(fields: list[Field], index: int) -> str:
    """Field `index` as text ('' when absent; a stray object list is joined)."""
    if index >= len(fields):
        return ""
    value = fields[index]
    return value if isinstance(value, str) else " ".join(value)


class VoucherHead:
    """A `#VER` line's fields, kept while its rows are read (a native class when compiled:
    its fields are read without boxing)."""

    __slots__ = ("day", "line", "number", "reg_date", "series", "sign", "text")

    def __init__(
        self,
        series: str,
        number: str,
        day: date | None,
        text: str,
        reg_date: date | None,
        sign: str,
        line: int,
    ) -> None:
        self.series = series
        self.number = number
        self.day = day
        self.text = text
        self.reg_date = reg_date
        self.sign = sign
        self.line = line


class ReaderBase:
    """Reading state, counters and the helpers that turn bad values into findings."""

    def __init__(self, policy: ReadPolicy | None = None) -> None:
        self.policy = policy or ReadPolicy()
        self._max_line = self.policy.max_line_bytes
        self._out: list[Event] = []
        self._pending = b""
        self._line = 0
        self._bytes = 0
        self._skip_long = False
        self._started = False
        self._rejected = False
        self._closed = False
        self._decoder = LineDecoder()
        # identification
        self._sie_type: int | None = None
        self._program = ("", "")
        self._company = ""
        self._org_number = ""
        self._years: list[FinancialYear] = []
        self._labels_seen: set[str] = set()
        self._known_records = 0
        # chart
        self._declared: set[str] = set()
        self._undeclared: dict[str, int] = {}
        # vouchers
        self._block = NO_BLOCK
        self._head: VoucherHead | None = None
        self._rows: list[TransRow] = []
        # The current voucher's lines, kept only when the policy asks for voucher sources.
        self._source: list[str] | None = [] if self.policy.keep_voucher_source else None
        self._ore = 0  # the open voucher's #TRANS sum in öre
        self._damaged = False
        self._numbers = VoucherNumbers()
        self._row_heads: dict[str, RowHead] = {}
        self._prefix_at: list[str] = []  # by row place: the last text before its amount
        self._head_at: list[RowHead] = []  # by row place: what that text read as
        self._year_of: dict[date, int | None] = {}
        self._tails: dict[str, RowTail] = {}
        # The last voucher date and registration date read, and their dates (`_plain_ver`).
        self._day_text = ""
        self._day_value: date | None = None
        self._reg_text = ""
        self._reg_value: date | None = None
        # The last row tail read (see `_fast_row`) and what it reads as.
        self._last_tail = ""
        self._tail_day: date | None = None
        self._tail_text = ""
        self._tail_quantity: Decimal | None = None
        self._tail_sign = ""
        # checksum
        self._crc_state = CRC_OFF
        self._crc = 0
        self._checksum = ChecksumStatus.ABSENT
        # counts
        self._accounts = 0
        self._vouchers = 0
        self._transactions = 0
        self._unbalanced = 0
        self._errors = 0
        self._warnings = 0
        self._per_code: dict[str, int] = {}
        self._reported_once: set[str] = set()

    def _report(self, code: Code, severity: Severity, line: int | None, message: str) -> None:
        if severity is Severity.ERROR:
            self._errors += 1
        else:
            self._warnings += 1
        count = self._per_code.get(code, 0) + 1
        self._per_code[code] = count
        if count <= self.policy.max_findings_per_code:
            self._out.append(Finding(severity, code, line, message))

    def _once(self, key: str) -> bool:
        """True the first time `key` is seen (for once-per-label findings)."""
        if key in self._reported_once:
            return False
        self._reported_once.add(key)
        return True

    def _malformed(self, line: int, message: str, severity: Severity = Severity.ERROR) -> None:
        self._report(Code.MALFORMED_RECORD, severity, line, message)

    def _unknown(self, label: str, line: int) -> None:
        if self._once("unknown " + label):
            self._report(
                Code.UNKNOWN_LABEL,
                Severity.WARNING,
                line,
                f"unknown label {label} ignored (reported once)",
            )

    def _seen(self, label: str, line: int) -> None:
        self._known_records += 1
        if label in self._labels_seen:
            return
        self._labels_seen.add(label)
        if label in rules.FORBIDDEN_IN_4I and self.policy.variant is Variant.IMPORT:
            severity = Severity.ERROR if self.policy.strict_4i else Severity.WARNING
            self._report(
                Code.FORBIDDEN_RECORD_IN_4I,
                severity,
                line,
                f"{label} is forbidden in an import (4I) file (first occurrence)",
            )

    def _date(self, value: str, line: int, what: str) -> date | None:
        parsed = parse_date(value)
        if parsed is None:
            self._report(Code.INVALID_DATE, Severity.ERROR, line, f"invalid {what} {value!r}")
        return parsed

    def _int(self, value: str, line: int, what: str) -> int | None:
        parsed = parse_int(value)
        if parsed is None:
            self._report(Code.INVALID_NUMBER, Severity.WARNING, line, f"invalid {what} {value!r}")
        return parsed

    def _quantity(self, fields: list[Field], index: int, line: int) -> Decimal | None:
        value = field_text(fields, index)
        if not value:
            return None
        parsed = parse_quantity(value)
        if parsed is None:
            self._report(Code.INVALID_NUMBER, Severity.WARNING, line, f"invalid quantity {value!r}")
        return parsed

    def _amount(self, value: Field, line: int) -> Decimal | None:
        parsed = parse_amount(value) if isinstance(value, str) else None
        if parsed is None:
            self._invalid_amount(value, line)
        return parsed

    def _ore_amount(self, value: Field, line: int) -> int | None:
        """`_amount` of a voucher row: its öre."""
        parsed = parse_ore(value) if isinstance(value, str) else None
        if parsed is None:
            self._invalid_amount(value, line)
        return parsed

    def _invalid_amount(self, value: Field, line: int) -> None:
        self._report(
            Code.INVALID_AMOUNT,
            Severity.ERROR,
            line,
            f"invalid amount {value!r} (expected -digits.dd, at most 15 digits)",
        )

    def _objects(self, value: tuple[str, ...], line: int) -> ObjectList:
        if not value:
            return ()
        if len(value) % 2:
            self._malformed(line, "object list has an odd number of fields; last ignored")
        return tuple(zip(value[::2], value[1::2], strict=False))

    def _use_account(self, account: str, line: int) -> None:
        if account not in self._declared and account not in self._undeclared:
            self._undeclared[account] = line

    def _require(self, fields: list[Field], count: int, line: int) -> bool:
        if len(fields) > count:
            return True
        severity = Severity.ERROR if fields[0] in ("#TRANS", "#VER") else Severity.WARNING
        message = f"{fields[0]} needs {count} field(s), has {len(fields) - 1}"
        self._malformed(line, message, severity)
        return False
