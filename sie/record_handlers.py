"""Handlers for identification, chart-of-accounts and balance records."""

from __future__ import annotations

import re

from sie.codes import Code
from sie.findings import Severity
from sie.reader_base import field_text
from sie.records import (
    Account,
    AccountAttribute,
    AccountInfo,
    Address,
    Balance,
    BalanceKind,
    Dimension,
    Extent,
    FinancialYear,
    Flag,
    Generated,
    ObjectDef,
    ObjectList,
    OrgNumber,
    Program,
    SieType,
    TaxYear,
    TextLabel,
    TextRecord,
)
from sie.tokens import Field
from sie.values import org_number_digits, parse_int, parse_period
from sie.voucher_handlers import VoucherHandlers

_ORG_NUMBER = re.compile(r"\d{6}-\d{4}", re.ASCII)
"""`nnnnnn-nnnn`, the spec's form (§#ORGNR); any other is warned about."""


class RecordHandlers(VoucherHandlers):
    """One method per label family; each appends its typed record or a finding."""

    def _on_flag(self, fields: list[Field], line: int) -> None:
        self._seen("#FLAGGA", line)
        if self._require(fields, 1, line):
            value = self._int(field_text(fields, 1), line, "#FLAGGA value")
            if value is not None:
                self._out.append(Flag(value, line))

    def _on_program(self, fields: list[Field], line: int) -> None:
        self._seen("#PROGRAM", line)
        if self._require(fields, 1, line):
            self._program = (field_text(fields, 1), field_text(fields, 2))
            self._out.append(Program(self._program[0], self._program[1], line))

    def _on_gen(self, fields: list[Field], line: int) -> None:
        self._seen("#GEN", line)
        if self._require(fields, 1, line):
            day = self._date(field_text(fields, 1), line, "#GEN date")
            if day is not None:
                self._out.append(Generated(day, field_text(fields, 2), line))

    def _on_sietyp(self, fields: list[Field], line: int) -> None:
        self._seen("#SIETYP", line)
        if self._require(fields, 1, line):
            value = parse_int(field_text(fields, 1))
            if value not in (1, 2, 3, 4):
                self._malformed(line, f"#SIETYP {field_text(fields, 1)!r} is not 1, 2, 3 or 4")
                return
            self._sie_type = value
            self._out.append(SieType(value, line))

    def _on_text(self, fields: list[Field], line: int) -> None:
        label = TextLabel(str(fields[0]).upper())
        self._seen(label.value, line)
        if not self._require(fields, 1, line):
            return
        text = field_text(fields, 1)
        if label is TextLabel.FNAMN:
            if len(fields) > 2:  # unquoted name with spaces: join the rest
                text = " ".join(field_text(fields, i) for i in range(1, len(fields)))
            if not text.strip():
                severity = Severity.ERROR if self.policy.strict_mandatory else Severity.WARNING
                self._report(
                    Code.MISSING_MANDATORY_RECORD, severity, line, "#FNAMN names no company"
                )
            self._company = text
        self._out.append(TextRecord(label, text, line))

    def _on_orgnr(self, fields: list[Field], line: int) -> None:
        self._seen("#ORGNR", line)
        self._org_number = field_text(fields, 1)
        if _ORG_NUMBER.fullmatch(self._org_number) is None:
            digits = org_number_digits(self._org_number)
            self._report(
                Code.INVALID_ORG_NUMBER,
                Severity.WARNING,
                line,
                f"#ORGNR {self._org_number!r} is not an organisation number (nnnnnn-nnnn)"
                if digits is None else
                f"#ORGNR {self._org_number!r} is not written nnnnnn-nnnn; read as the"
                f" organisation number {digits[:6]}-{digits[6:]}",
            )
        self._out.append(
            OrgNumber(self._org_number, field_text(fields, 2), field_text(fields, 3), line)
        )

    def _on_address(self, fields: list[Field], line: int) -> None:
        self._seen("#ADRESS", line)
        self._out.append(
            Address(
                field_text(fields, 1),
                field_text(fields, 2),
                field_text(fields, 3),
                field_text(fields, 4),
                line,
            )
        )

    def _on_rar(self, fields: list[Field], line: int) -> None:
        self._seen("#RAR", line)
        if not self._require(fields, 3, line):
            return
        index = self._int(field_text(fields, 1), line, "#RAR year index")
        start = self._date(field_text(fields, 2), line, "#RAR start date")
        end = self._date(field_text(fields, 3), line, "#RAR end date")
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
            value = self._int(field_text(fields, 1), line, "#TAXAR year")
            if value is not None:
                self._out.append(TaxYear(value, line))

    def _on_omfattn(self, fields: list[Field], line: int) -> None:
        self._seen("#OMFATTN", line)
        if self._require(fields, 1, line):
            day = self._date(field_text(fields, 1), line, "#OMFATTN date")
            if day is not None:
                self._out.append(Extent(day, line))

    def _on_konto(self, fields: list[Field], line: int) -> None:
        self._seen("#KONTO", line)
        if not self._require(fields, 1, line):
            return
        number = field_text(fields, 1)
        self._declared.add(number)
        self._accounts += 1
        self._out.append(Account(number, field_text(fields, 2), line))

    def _on_account_info(self, fields: list[Field], line: int) -> None:
        label = AccountAttribute(str(fields[0]).upper())
        self._seen(label.value, line)
        if self._require(fields, 2, line):
            self._out.append(AccountInfo(label, field_text(fields, 1), field_text(fields, 2), line))

    def _on_dim(self, fields: list[Field], line: int) -> None:
        label = str(fields[0]).upper()
        self._seen(label, line)
        sub = label == "#UNDERDIM"
        if self._require(fields, 3 if sub else 1, line):
            parent = field_text(fields, 3) if sub else ""
            self._out.append(Dimension(field_text(fields, 1), field_text(fields, 2), parent, line))

    def _on_objekt(self, fields: list[Field], line: int) -> None:
        self._seen("#OBJEKT", line)
        if self._require(fields, 2, line):
            self._out.append(
                ObjectDef(field_text(fields, 1), field_text(fields, 2), field_text(fields, 3), line)
            )

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
        year = self._int(field_text(fields, 1), line, f"{label} year index")
        period = None
        if periodic:
            period = parse_period(field_text(fields, 2))
            if period is None:
                self._report(
                    Code.INVALID_DATE,
                    Severity.ERROR,
                    line,
                    f"invalid period {field_text(fields, 2)!r}",
                )
                return
        account = field_text(fields, base)
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
