"""Push-style streaming SIE reader: feed byte chunks, get typed records and findings.

Only the current partial line and the current voucher are held in memory, plus state
bounded by the chart (declared/used accounts) and the voucher series, so any file size
streams in constant memory. Nothing raises on bad input: every problem is a `Finding`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from sie import patterns, rules
from sie.charset import CP437, UTF8, LineDecoder, needs_repair
from sie.checksum import crc_update
from sie.codes import Code
from sie.findings import Finding, Severity
from sie.numbering import VoucherNumbers
from sie.policy import ReadPolicy, Variant
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
    RowKind,
    SieType,
    TaxYear,
    TextLabel,
    TextRecord,
    TransRow,
    Voucher,
)
from sie.summary import ChecksumStatus, ReadSummary
from sie.tokens import Field, tokenize
from sie.values import parse_amount, parse_date, parse_int, parse_period, parse_quantity

Handler = Callable[[list[Field], int], None]

_ZERO = Decimal(0)
_BOM = b"\xef\xbb\xbf"
_NO_BLOCK, _AWAIT_OPEN, _IN_BLOCK = 0, 1, 2
_ROW_INITIALS = frozenset("TRB")
_ROW_KINDS = {"TRANS": RowKind.TRANS, "RTRANS": RowKind.RTRANS, "BTRANS": RowKind.BTRANS}
_CACHE_LIMIT = 50_000
_UNKNOWN_YEAR = -(10**9)


def _name(series: str, number: str) -> str:
    """How a voucher is named in messages."""
    return f"{series} {number}".strip() or "(unnumbered)"


def _unescape(value: str | None) -> str:
    """A regex group as field text: None is '', and \\" stands for a quote."""
    if not value:
        return ""
    return value.replace('\\"', '"') if "\\" in value else value


_CRC_OFF, _CRC_RUNNING, _CRC_DONE = 0, 1, 2


def _text(fields: list[Field], index: int) -> str:
    """Field `index` as text ('' when absent; a stray object list is joined)."""
    if index >= len(fields):
        return ""
    value = fields[index]
    return value if isinstance(value, str) else " ".join(value)


class SieReader:
    """Incremental SIE reader.

    Call `feed()` with each chunk of bytes as it arrives and `close()` at end of input;
    both return the records and findings completed by that call, in file order.
    `summary()` can be read at any time.
    """

    def __init__(self, policy: ReadPolicy | None = None) -> None:
        self.policy = policy or ReadPolicy()
        self._out: list[Event] = []
        self._pending = b""
        self._line = 0
        self._bytes = 0
        self._skip_long = False
        self._started = False
        self._rejected = False
        self._closed = False
        self._decoder = LineDecoder()
        self._handlers: dict[str, Handler] = self._build_handlers()
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
        self._block = _NO_BLOCK
        self._head: tuple[str, str, date | None, str, date | None, str, int] | None = None
        self._rows: list[TransRow] = []
        self._sum = _ZERO
        self._damaged = False
        self._numbers = VoucherNumbers()
        self._object_lists: dict[str, ObjectList] = {}
        self._year_of: dict[date, int | None] = {}
        self._quantities: dict[str, Decimal] = {}
        # checksum
        self._crc_state = _CRC_OFF
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

    # ------------------------------------------------------------------ input
    def feed(self, chunk: bytes) -> list[Event]:
        """Consume a chunk of the file; return the records and findings it completed."""
        if self._closed:
            raise RuntimeError("SieReader.feed() after close()")
        self._bytes += len(chunk)
        data = self._pending + chunk if self._pending else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            cut = data.rfind(b"\r", 0, len(data) - 1)
        if cut < 0:
            self._pending = data
            if len(data) > self.policy.max_line_bytes:
                self._too_long()
            return self._take()
        self._pending = data[cut + 1 :]
        end = cut - 1 if cut and data[cut - 1] == 13 and data[cut] == 10 else cut  # CR of CRLF
        self._lines(data[:end])
        return self._take()

    def close(self) -> list[Event]:
        """Signal end of input: flush the last line and run the whole-file checks."""
        if self._closed:
            return []
        if self._pending and not self._skip_long:
            self._lines(self._pending[:-1] if self._pending.endswith(b"\r") else self._pending)
        elif self._skip_long:
            self._line += 1
        self._pending = b""
        self._closed = True
        self._finish()
        return self._take()

    def summary(self) -> ReadSummary:
        """Return what is known so far (complete after `close()`)."""
        return ReadSummary(
            encoding=self._decoder.encoding,
            sie_type=self._sie_type,
            program=self._program[0],
            program_version=self._program[1],
            company_name=self._company,
            org_number=self._org_number,
            financial_years=tuple(self._years),
            accounts=self._accounts,
            vouchers=self._vouchers,
            transactions=self._transactions,
            unbalanced_vouchers=self._unbalanced,
            checksum=self._checksum,
            errors=self._errors,
            warnings=self._warnings,
            lines=self._line,
            bytes_read=self._bytes,
        )

    # ------------------------------------------------------------------ lines
    def _take(self) -> list[Event]:
        out, self._out = self._out, []
        return out

    def _too_long(self) -> None:
        if not self._skip_long:
            self._report(
                Code.LINE_TOO_LONG,
                Severity.ERROR,
                self._line + 1,
                f"line longer than {self.policy.max_line_bytes} bytes skipped",
            )
            self._skip_long = True
        self._pending = b""

    def _decode(self, block: bytes) -> str:
        """Decode a block of whole lines, at once when its encoding is already settled."""
        if block.isascii():
            return block.decode("ascii")
        encoding = self._decoder.encoding
        if encoding == CP437 and not needs_repair(block):
            return block.decode(CP437)
        if encoding == UTF8:
            try:
                return block.decode(UTF8)
            except UnicodeDecodeError:
                pass
        decode = self._decoder.decode
        return "\n".join(
            raw.decode("ascii") if raw.isascii() else decode(raw, number)
            for number, raw in enumerate(block.split(b"\n"), self._line + 1)
        )

    def _lines(self, block: bytes) -> None:
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self._line == 0 and block.startswith(_BOM):
            block = block[3:]
            self._decoder.encoding = UTF8
        self._scan(self._decode(block))

    def _scan(self, text: str) -> None:
        """Read every line of `text`; whole common-shape vouchers in one regex match."""
        size = len(text)
        limit = self.policy.max_line_bytes
        pos = 0
        while True:
            if (
                self._block == _NO_BLOCK
                and text.startswith("#VER", pos)
                and self._crc_state != _CRC_RUNNING
                and self._started
                and not self._rejected
                and not self._skip_long
            ):
                match = patterns.VOUCHER.match(text, pos)
                if match is not None and match.end() - pos <= limit and self._voucher_block(match):
                    end = match.end()
                    if end == size and text[end - 1] != "\n":
                        self._line += text.count("\n", pos, end) + 1
                        return
                    self._line += text.count("\n", pos, end)
                    pos = end
                    continue
            end = text.find("\n", pos)
            if end < 0:
                end = size
            self._line += 1
            self._one_line(text[pos:end])
            if end == size:
                return
            pos = end + 1

    def _one_line(self, text: str) -> None:
        if self._skip_long:
            self._skip_long = False
            return
        text = text.strip(" \t")
        if not text or self._rejected:
            return
        limit = self.policy.max_line_bytes
        if len(text) > limit:
            self._report(
                Code.LINE_TOO_LONG,
                Severity.ERROR,
                self._line,
                f"line longer than {limit} bytes skipped",
            )
            return
        if self._crc_state != _CRC_RUNNING:  # fast paths for the voucher lines
            state = self._block
            if state == _IN_BLOCK:
                if text == "}":
                    self._finish_voucher()
                    return
                if text[1:2] in _ROW_INITIALS and self._fast_row(text, self._line):
                    return
            elif state == _AWAIT_OPEN:
                if text == "{":
                    self._block = _IN_BLOCK
                    return
            elif self._started and text.startswith("#VER") and self._fast_ver(text):
                return
        self._record(text, self._line)

    def _record(self, text: str, line: int) -> None:
        first = text[0]
        if not self._started:
            self._started = True
            if first != "#":
                self._rejected = True
                self._report(
                    Code.NOT_SIE,
                    Severity.ERROR,
                    line,
                    "not a SIE file: the first line is not a #-record",
                )
                return
        if first == "#":
            fields = tokenize(text)
            label = fields[0]
            assert isinstance(label, str)
            if self._crc_state == _CRC_RUNNING and label != "#KSUMMA":
                self._crc = crc_update(self._crc, fields)
            handler = self._handlers.get(label)
            if handler is None:
                handler = self._handlers.get(label.upper())
                if handler is None:
                    self._unknown(label, line)
                    return
            handler(fields, line)
        elif first == "{":
            self._open_block(text, line)
        elif first == "}":
            self._close_block(line)
        else:
            self._report(
                Code.MALFORMED_RECORD,
                Severity.WARNING,
                line,
                "line does not start with a #-label; ignored",
            )

    # ------------------------------------------------------------------ findings
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
        value = _text(fields, index)
        if not value:
            return None
        parsed = parse_quantity(value)
        if parsed is None:
            self._report(Code.INVALID_NUMBER, Severity.WARNING, line, f"invalid quantity {value!r}")
        return parsed

    def _amount(self, value: Field, line: int) -> Decimal | None:
        parsed = parse_amount(value) if isinstance(value, str) else None
        if parsed is None:
            self._report(
                Code.INVALID_AMOUNT,
                Severity.ERROR,
                line,
                f"invalid amount {value!r} (expected -digits.dd, at most 15 digits)",
            )
        return parsed

    def _objects(self, value: tuple[str, ...], line: int) -> ObjectList:
        if not value:
            return ()
        if len(value) % 2:
            self._malformed(line, "object list has an odd number of fields; last ignored")
        return tuple(zip(value[::2], value[1::2], strict=False))

    def _use_account(self, account: str, line: int) -> None:
        if account not in self._declared and account not in self._undeclared:
            self._undeclared[account] = line

    # ------------------------------------------------------------------ records
    def _build_handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {
            "#FLAGGA": self._on_flag,
            "#PROGRAM": self._on_program,
            "#GEN": self._on_gen,
            "#SIETYP": self._on_sietyp,
            "#ORGNR": self._on_orgnr,
            "#ADRESS": self._on_address,
            "#RAR": self._on_rar,
            "#TAXAR": self._on_taxar,
            "#OMFATTN": self._on_omfattn,
            "#KONTO": self._on_konto,
            "#DIM": self._on_dim,
            "#UNDERDIM": self._on_dim,
            "#OBJEKT": self._on_objekt,
            "#VER": self._on_ver,
            "#TRANS": self._on_row,
            "#RTRANS": self._on_row,
            "#BTRANS": self._on_row,
            "#KSUMMA": self._on_ksumma,
        }
        for text_label in TextLabel:
            handlers[text_label.value] = self._on_text
        for attribute in AccountAttribute:
            handlers[attribute.value] = self._on_account_info
        for kind in BalanceKind:
            handlers["#" + kind.value] = self._on_balance
        return handlers

    def _require(self, fields: list[Field], count: int, line: int) -> bool:
        if len(fields) > count:
            return True
        severity = Severity.ERROR if fields[0] in ("#TRANS", "#VER") else Severity.WARNING
        message = f"{fields[0]} needs {count} field(s), has {len(fields) - 1}"
        self._malformed(line, message, severity)
        return False

    def _on_flag(self, fields: list[Field], line: int) -> None:
        self._seen("#FLAGGA", line)
        if self._require(fields, 1, line):
            value = self._int(_text(fields, 1), line, "#FLAGGA value")
            if value is not None:
                self._out.append(Flag(value, line))

    def _on_program(self, fields: list[Field], line: int) -> None:
        self._seen("#PROGRAM", line)
        if self._require(fields, 1, line):
            self._program = (_text(fields, 1), _text(fields, 2))
            self._out.append(Program(self._program[0], self._program[1], line))

    def _on_gen(self, fields: list[Field], line: int) -> None:
        self._seen("#GEN", line)
        if self._require(fields, 1, line):
            day = self._date(_text(fields, 1), line, "#GEN date")
            if day is not None:
                self._out.append(Generated(day, _text(fields, 2), line))

    def _on_sietyp(self, fields: list[Field], line: int) -> None:
        self._seen("#SIETYP", line)
        if self._require(fields, 1, line):
            value = parse_int(_text(fields, 1))
            if value not in (1, 2, 3, 4):
                self._malformed(line, f"#SIETYP {_text(fields, 1)!r} is not 1, 2, 3 or 4")
                return
            self._sie_type = value
            self._out.append(SieType(value, line))

    def _on_text(self, fields: list[Field], line: int) -> None:
        label = TextLabel(str(fields[0]).upper())
        self._seen(label.value, line)
        if not self._require(fields, 1, line):
            return
        text = _text(fields, 1)
        if label is TextLabel.FNAMN:
            if len(fields) > 2:  # unquoted name with spaces: join the rest
                text = " ".join(_text(fields, i) for i in range(1, len(fields)))
            self._company = text
        self._out.append(TextRecord(label, text, line))

    def _on_orgnr(self, fields: list[Field], line: int) -> None:
        self._seen("#ORGNR", line)
        self._org_number = _text(fields, 1)
        self._out.append(OrgNumber(self._org_number, _text(fields, 2), _text(fields, 3), line))

    def _on_address(self, fields: list[Field], line: int) -> None:
        self._seen("#ADRESS", line)
        self._out.append(
            Address(_text(fields, 1), _text(fields, 2), _text(fields, 3), _text(fields, 4), line)
        )

    def _on_rar(self, fields: list[Field], line: int) -> None:
        self._seen("#RAR", line)
        if not self._require(fields, 3, line):
            return
        index = self._int(_text(fields, 1), line, "#RAR year index")
        start = self._date(_text(fields, 2), line, "#RAR start date")
        end = self._date(_text(fields, 3), line, "#RAR end date")
        if index is None or start is None or end is None:
            return
        if end < start:
            self._report(Code.INVALID_DATE, Severity.ERROR, line, "#RAR ends before it starts")
            return
        year = FinancialYear(index, start, end, line)
        self._years.append(year)
        self._year_of.clear()
        self._out.append(year)

    def _on_taxar(self, fields: list[Field], line: int) -> None:
        self._seen("#TAXAR", line)
        if self._require(fields, 1, line):
            value = self._int(_text(fields, 1), line, "#TAXAR year")
            if value is not None:
                self._out.append(TaxYear(value, line))

    def _on_omfattn(self, fields: list[Field], line: int) -> None:
        self._seen("#OMFATTN", line)
        if self._require(fields, 1, line):
            day = self._date(_text(fields, 1), line, "#OMFATTN date")
            if day is not None:
                self._out.append(Extent(day, line))

    def _on_konto(self, fields: list[Field], line: int) -> None:
        self._seen("#KONTO", line)
        if not self._require(fields, 1, line):
            return
        number = _text(fields, 1)
        self._declared.add(number)
        self._accounts += 1
        self._out.append(Account(number, _text(fields, 2), line))

    def _on_account_info(self, fields: list[Field], line: int) -> None:
        label = AccountAttribute(str(fields[0]).upper())
        self._seen(label.value, line)
        if self._require(fields, 2, line):
            self._out.append(AccountInfo(label, _text(fields, 1), _text(fields, 2), line))

    def _on_dim(self, fields: list[Field], line: int) -> None:
        label = str(fields[0]).upper()
        self._seen(label, line)
        sub = label == "#UNDERDIM"
        if self._require(fields, 3 if sub else 1, line):
            parent = _text(fields, 3) if sub else ""
            self._out.append(Dimension(_text(fields, 1), _text(fields, 2), parent, line))

    def _on_objekt(self, fields: list[Field], line: int) -> None:
        self._seen("#OBJEKT", line)
        if self._require(fields, 2, line):
            self._out.append(ObjectDef(_text(fields, 1), _text(fields, 2), _text(fields, 3), line))

    def _on_balance(self, fields: list[Field], line: int) -> None:
        label = str(fields[0]).upper()
        kind = BalanceKind(label[1:])
        self._seen(label, line)
        periodic = kind in (BalanceKind.PSALDO, BalanceKind.PBUDGET)
        with_objects = periodic or kind in (BalanceKind.OIB, BalanceKind.OUB)
        base = 3 if periodic else 2  # index of the account field
        amount_at = base + (2 if with_objects else 1)
        if not self._require(fields, amount_at, line):
            return
        year = self._int(_text(fields, 1), line, f"{label} year index")
        period = None
        if periodic:
            period = parse_period(_text(fields, 2))
            if period is None:
                self._report(
                    Code.INVALID_DATE, Severity.ERROR, line, f"invalid period {_text(fields, 2)!r}"
                )
                return
        account = _text(fields, base)
        objects: ObjectList = ()
        if with_objects:
            listed = fields[base + 1]
            if not isinstance(listed, tuple):
                self._malformed(line, f"{label} lacks its object list {{...}}")
                return
            objects = self._objects(listed, line)
        amount = self._amount(fields[amount_at], line)
        if year is None or amount is None:
            return
        self._use_account(account, line)
        quantity = self._quantity(fields, amount_at + 1, line)
        self._out.append(Balance(kind, year, account, amount, quantity, objects, period, line))

    # ------------------------------------------------------------------ vouchers
    def _on_ver(self, fields: list[Field], line: int) -> None:
        self._seen("#VER", line)
        if self._block != _NO_BLOCK:
            self._abandon_voucher(line)
        self._block = _AWAIT_OPEN
        self._rows = []
        self._sum = _ZERO
        self._damaged = False
        day: date | None = None
        if len(fields) < 4 or not _text(fields, 3):
            self._report(Code.INVALID_DATE, Severity.ERROR, line, "#VER has no voucher date")
        else:
            day = self._date(_text(fields, 3), line, "voucher date")
        reg_text = _text(fields, 5)
        reg_date = self._date(reg_text, line, "registration date") if reg_text else None
        self._head = (
            _text(fields, 1),
            _text(fields, 2),
            day,
            _text(fields, 4),
            reg_date,
            _text(fields, 6),
            line,
        )

    def _fast_ver(self, text: str) -> bool:
        """Parse a common-shape `#VER` head outside a block; False for the general path."""
        match = patterns.HEAD.fullmatch(text)
        if match is None:
            return False
        self._head_from(match.groups(), self._line)
        return True

    def _head_from(self, groups: tuple[str | None, ...], line: int) -> None:
        """Start a voucher from `patterns.HEAD` groups (None or '' = field absent)."""
        s1, s2, n1, n2, day_text, t1, t2, r1, r2, g1, g2 = groups
        assert day_text is not None
        self._seen("#VER", line)
        self._block = _AWAIT_OPEN
        self._sum = _ZERO
        self._damaged = False
        reg_text = r2 or r1
        self._head = (
            s2 or _unescape(s1),
            n2 or _unescape(n1),
            self._date(day_text, line, "voucher date"),
            t2 or _unescape(t1),
            self._date(reg_text, line, "registration date") if reg_text else None,
            g2 or _unescape(g1),
            line,
        )

    def _open_block(self, text: str, line: int) -> None:
        if self._block == _AWAIT_OPEN:
            self._block = _IN_BLOCK
            if text != "{":
                self._malformed(line, "text after '{' ignored", Severity.WARNING)
        else:
            self._malformed(line, "'{' without a preceding #VER")

    def _close_block(self, line: int) -> None:
        if self._block != _IN_BLOCK:
            self._malformed(line, "'}' without an open voucher")
            return
        self._finish_voucher()

    def _abandon_voucher(self, line: int) -> None:
        assert self._head is not None
        what = "'{'" if self._block == _AWAIT_OPEN else "'}'"
        self._malformed(line, f"voucher at line {self._head[6]} lacks its {what}")
        self._finish_voucher()

    def _on_row(self, fields: list[Field], line: int) -> None:
        label = str(fields[0])
        if self._block == _AWAIT_OPEN and self._head is not None:
            self._block = _IN_BLOCK
            message = f"voucher at line {self._head[6]} lacks its '{{'; rows taken"
            self._malformed(line, message, Severity.WARNING)
        if self._block != _IN_BLOCK:
            self._seen(label, line)
            self._malformed(line, f"{label} outside a voucher block")
            return
        if len(fields) < 4 or not isinstance(fields[2], tuple):
            self._damaged = True
            self._malformed(line, f"{label} needs account, object list {{...}} and amount")
            return
        account = fields[1]
        amount = self._amount(fields[3], line)
        if amount is None or not isinstance(account, str):
            self._damaged = True
            return
        kind = RowKind.TRANS if label == "#TRANS" else RowKind(label[1:].upper())
        if kind is RowKind.TRANS:
            self._sum += amount
            self._transactions += 1
        else:
            self._seen(label, line)
        objects = self._objects(fields[2], line) if fields[2] else ()
        if account not in self._declared:
            self._use_account(account, line)
        n = len(fields)
        if n == 4:
            row = TransRow(kind, account, amount, objects, line=line)
        else:
            day_text = _text(fields, 4)
            day = self._date(day_text, line, "transaction date") if day_text else None
            row = TransRow(
                kind,
                account,
                amount,
                objects,
                day,
                _text(fields, 5),
                self._quantity(fields, 6, line) if n > 6 else None,
                _text(fields, 7),
                line,
            )
        self._rows.append(row)

    def _fast_row(self, text: str, line: int) -> bool:
        """Parse a common-shape row without tokenizing; False to use the general path."""
        match = patterns.ROW.fullmatch(text)
        if match is None:
            return False
        self._row_from(match.groups(), line)
        return True

    def _row_from(self, groups: tuple[str | None, ...], line: int) -> None:
        """Add a row from `patterns.ROW` groups (None or '' = field absent)."""
        label, account, listed, amount_text, d1, d2, t1, t2, q1, q2, s1, s2 = groups
        assert label is not None and account is not None and amount_text is not None
        amount = Decimal(amount_text)
        kind = _ROW_KINDS[label]
        if kind is RowKind.TRANS:
            self._sum += amount
            self._transactions += 1
        else:
            self._seen("#" + label, line)
        objects: ObjectList = ()
        if listed:
            cached = self._object_lists.get(listed)
            if cached is None:
                parsed = tokenize("{" + listed + "}")[0]
                cached = self._objects(parsed if isinstance(parsed, tuple) else (), line)
                if len(self._object_lists) > _CACHE_LIMIT:
                    self._object_lists.clear()
                self._object_lists[listed] = cached
            objects = cached
        if account not in self._declared:
            self._use_account(account, line)
        day_text = d2 or d1
        day = self._date(day_text, line, "transaction date") if day_text else None
        quantity_text = q2 or q1
        quantity = None
        if quantity_text:
            quantity = self._quantities.get(quantity_text)
            if quantity is None:
                quantity = parse_quantity(quantity_text)
                if quantity is None:
                    self._report(
                        Code.INVALID_NUMBER,
                        Severity.WARNING,
                        line,
                        f"invalid quantity {quantity_text!r}",
                    )
                elif len(self._quantities) < _CACHE_LIMIT:
                    self._quantities[quantity_text] = quantity
        text = t2 or t1 or ""  # a bare token never holds a backslash
        if "\\" in text:
            text = text.replace('\\"', '"')
        sign = s2 or s1 or ""
        if "\\" in sign:
            sign = sign.replace('\\"', '"')
        self._rows.append(TransRow(kind, account, amount, objects, day, text, quantity, sign, line))

    def _voucher_block(self, match: re.Match[str]) -> bool:
        """Read a whole common-shape voucher from a `patterns.VOUCHER` match.

        Returns False (having changed nothing) when a row line is not of the common
        shape; the caller then reads the block line by line.
        """
        rows_text = match.group(12)
        rows = patterns.ROWS.findall(rows_text) if rows_text else []
        if len(rows) != rows_text.count("\n"):
            return False
        line = self._line + 1
        self._head_from(match.groups()[:11], line)
        self._block = _IN_BLOCK
        for offset, groups in enumerate(rows, line + 2):
            self._row_from(groups, offset)
        self._finish_voucher()
        return True

    def _finish_voucher(self) -> None:
        head = self._head
        assert head is not None
        self._block = _NO_BLOCK
        self._head = None
        series, number, day, text, reg_date, sign, line = head
        rows, self._rows = tuple(self._rows), []
        if day is None:
            return
        if self._sum and not self._damaged:
            self._unbalanced += 1
            severity = Severity.WARNING if self.policy.allow_unbalanced else Severity.ERROR
            self._report(
                Code.VOUCHER_UNBALANCED,
                severity,
                line,
                f"voucher {_name(series, number)} of {day.isoformat()} does not balance: "
                f"#TRANS rows sum to {self._sum}",
            )
        year = self._year_of.get(day, _UNKNOWN_YEAR)
        if year is _UNKNOWN_YEAR:
            year = next((y.index for y in self._years if y.contains(day)), None)
            if len(self._year_of) < _CACHE_LIMIT:
                self._year_of[day] = year
        if year is None and self._years:
            self._report(
                Code.VOUCHER_DATE_OUTSIDE_YEARS,
                Severity.WARNING,
                line,
                f"voucher {_name(series, number)} is dated {day.isoformat()}, "
                "outside every #RAR year",
            )
        if number and not self._numbers.add(series, number):
            self._report(
                Code.DUPLICATE_VOUCHER_NUMBER,
                Severity.ERROR,
                line,
                f"voucher number {number} occurs more than once in series {series!r}",
            )
        self._vouchers += 1
        self._out.append(Voucher(series, number, day, rows, text, reg_date, sign, line, year))

    # ------------------------------------------------------------------ checksum
    def _on_ksumma(self, fields: list[Field], line: int) -> None:
        self._known_records += 1
        if len(fields) == 1:
            if self._crc_state == _CRC_OFF:
                self._crc_state = _CRC_RUNNING
            else:
                self._malformed(line, "repeated opening #KSUMMA ignored", Severity.WARNING)
            return
        stated = _text(fields, 1)
        if self._crc_state != _CRC_RUNNING:
            self._checksum = ChecksumStatus.MISMATCH
            self._report(
                Code.CHECKSUM_MISMATCH,
                Severity.ERROR,
                line,
                "closing #KSUMMA without an opening #KSUMMA marker; cannot verify",
            )
        elif stated == str(self._crc):
            self._checksum = ChecksumStatus.VERIFIED
        else:
            self._checksum = ChecksumStatus.MISMATCH
            self._report(
                Code.CHECKSUM_MISMATCH,
                Severity.ERROR,
                line,
                f"#KSUMMA mismatch: file states {stated}, computed {self._crc}",
            )
        self._crc_state = _CRC_DONE

    # ------------------------------------------------------------------ end of file
    def _finish(self) -> None:
        if self._rejected:
            return
        if not self._started or self._known_records == 0:
            self._report(Code.NOT_SIE, Severity.ERROR, None, "not a SIE file: no SIE record found")
            return
        if self._block != _NO_BLOCK:
            assert self._head is not None
            self._report(
                Code.TRUNCATED,
                Severity.ERROR,
                self._head[6],
                "input ends inside the voucher that starts here",
            )
            self._block = _NO_BLOCK
            self._head = None
        if self._crc_state == _CRC_RUNNING:
            self._checksum = ChecksumStatus.MISMATCH
            self._report(
                Code.TRUNCATED,
                Severity.ERROR,
                None,
                "opening #KSUMMA without the closing #KSUMMA: the file is truncated",
            )
        self._check_mandatory()
        self._check_accounts()
        self._check_encoding()
        self._report_limits()

    def _type_key(self) -> str:
        sie_type = self._sie_type or 1
        if sie_type != 4:
            return str(sie_type)
        return self.policy.variant.value if self.policy.variant else "4"

    def _check_mandatory(self) -> None:
        key = self._type_key()
        severity = Severity.ERROR if self.policy.strict_mandatory else Severity.WARNING
        for label in rules.MANDATORY[key]:
            if label not in self._labels_seen:
                self._report(
                    Code.MISSING_MANDATORY_RECORD,
                    severity,
                    None,
                    f"mandatory record {label} is missing for type {key}",
                )

    def _check_accounts(self) -> None:
        if not self._declared and self._type_key() == Variant.IMPORT.value:
            return  # 4I files may rely on the receiver's chart
        for account, line in self._undeclared.items():
            if account not in self._declared:
                self._report(
                    Code.ACCOUNT_NOT_DECLARED,
                    Severity.WARNING,
                    line,
                    f"account {account} is used but not declared with #KONTO",
                )

    def _check_encoding(self) -> None:
        decoder = self._decoder
        if decoder.repaired_line is not None:
            self._report(
                Code.ENCODING_REPAIRED,
                Severity.WARNING,
                decoder.repaired_line,
                "Latin-1 letters inside CP437 text were decoded as Latin-1 (first here)",
            )
        if decoder.mixed_line is not None:
            self._report(
                Code.ENCODING_MIXED,
                Severity.WARNING,
                decoder.mixed_line,
                "line is not UTF-8 unlike the rest of the file; decoded as CP437",
            )

    def _report_limits(self) -> None:
        limit = self.policy.max_findings_per_code
        for code, count in list(self._per_code.items()):
            if count > limit:
                self._out.append(
                    Finding(
                        Severity.WARNING,
                        Code.FINDINGS_LIMIT,
                        None,
                        f"{count - limit} more {code} findings not listed",
                    )
                )
