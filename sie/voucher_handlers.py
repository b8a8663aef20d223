"""Voucher handling: `#VER` heads, `{ }` blocks, rows, and their fast paths."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from sie import patterns
from sie.codes import Code
from sie.findings import Severity
from sie.reader_base import (
    AWAIT_OPEN,
    CACHE_LIMIT,
    IN_BLOCK,
    NO_BLOCK,
    ZERO,
    ReaderBase,
    field_text,
)
from sie.records import (
    ObjectList,
    RowKind,
    TransRow,
    Voucher,
)
from sie.tokens import Field, tokenize
from sie.values import parse_quantity

_ROW_KINDS = {"TRANS": RowKind.TRANS, "RTRANS": RowKind.RTRANS, "BTRANS": RowKind.BTRANS}
_UNKNOWN_YEAR = -(10**9)


def _name(series: str, number: str) -> str:
    """How a voucher is named in messages."""
    return f"{series} {number}".strip() or "(unnumbered)"


def _unescape(value: str | None) -> str:
    """A regex group as field text: None is '', and \\" stands for a quote."""
    if not value:
        return ""
    return value.replace('\\"', '"') if "\\" in value else value


class VoucherHandlers(ReaderBase):
    """Assembles vouchers and checks balance, dates, numbering and accounts."""

    def _on_ver(self, fields: list[Field], line: int) -> None:
        self._seen("#VER", line)
        if self._block != NO_BLOCK:
            self._abandon_voucher(line)
        self._block = AWAIT_OPEN
        self._rows = []
        self._sum = ZERO
        self._damaged = False
        day: date | None = None
        if len(fields) < 4 or not field_text(fields, 3):
            self._report(Code.INVALID_DATE, Severity.ERROR, line, "#VER has no voucher date")
        else:
            day = self._date(field_text(fields, 3), line, "voucher date")
        reg_text = field_text(fields, 5)
        reg_date = self._date(reg_text, line, "registration date") if reg_text else None
        self._head = (
            field_text(fields, 1),
            field_text(fields, 2),
            day,
            field_text(fields, 4),
            reg_date,
            field_text(fields, 6),
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
        self._block = AWAIT_OPEN
        self._sum = ZERO
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
        if self._block == AWAIT_OPEN:
            self._block = IN_BLOCK
            if text != "{":
                self._malformed(line, "text after '{' ignored", Severity.WARNING)
        else:
            self._malformed(line, "'{' without a preceding #VER")

    def _close_block(self, line: int) -> None:
        if self._block != IN_BLOCK:
            self._malformed(line, "'}' without an open voucher")
            return
        self._finish_voucher()

    def _abandon_voucher(self, line: int) -> None:
        assert self._head is not None
        what = "'{'" if self._block == AWAIT_OPEN else "'}'"
        self._malformed(line, f"voucher at line {self._head[6]} lacks its {what}")
        self._finish_voucher()

    def _on_row(self, fields: list[Field], line: int) -> None:
        label = str(fields[0])
        if self._block == AWAIT_OPEN and self._head is not None:
            self._block = IN_BLOCK
            message = f"voucher at line {self._head[6]} lacks its '{{'; rows taken"
            self._malformed(line, message, Severity.WARNING)
        if self._block != IN_BLOCK:
            self._seen(label, line)
            self._malformed(line, f"{label} outside a voucher block")
            return
        if len(fields) < 4 or not isinstance(fields[2], tuple):
            self._damaged = True
            self._malformed(line, f"{label} needs account, object list {{...}} and amount")
            return
        account = fields[1]
        amount = self._amount(fields[3], line)
        if not account or not isinstance(account, str):
            self._damaged = True
            self._report(Code.MISSING_ACCOUNT, Severity.ERROR, line, f"{label} has no account")
            return
        if amount is None:
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
            day_text = field_text(fields, 4)
            day = self._date(day_text, line, "transaction date") if day_text else None
            row = TransRow(
                kind,
                account,
                amount,
                objects,
                day,
                field_text(fields, 5),
                self._quantity(fields, 6, line) if n > 6 else None,
                field_text(fields, 7),
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
                if len(self._object_lists) > CACHE_LIMIT:
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
                elif len(self._quantities) < CACHE_LIMIT:
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
        self._block = IN_BLOCK
        for offset, groups in enumerate(rows, line + 2):
            self._row_from(groups, offset)
        if self._source is None:
            self._finish_voucher()
        else:
            source = match.group(0)
            self._finish_voucher(source if source[-1] == "\n" else source + "\n")
        return True

    def _finish_voucher(self, source: str | None = None) -> None:
        """Emit the current voucher; ``source`` is its text when read in one match."""
        if self._source is not None:
            if source is None:
                source = "\n".join(self._source) + "\n"
            self._source = []
        head = self._head
        assert head is not None
        self._block = NO_BLOCK
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
            if len(self._year_of) < CACHE_LIMIT:
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
        self._out.append(
            Voucher(series, number, day, rows, text, reg_date, sign, line, year, source or "")
        )
