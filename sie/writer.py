"""SIE 4E/4I writer: CP437 bytes, CRLF, every text quoted, optional computed `#KSUMMA`.

Output profile (sie-format.md §11): `#FLAGGA` first, `#FORMAT PC8`, `#SIETYP 4`, texts in
double quotes with `\\"` for a quote, amounts with exactly two decimals, `{}` always
written, trailing empty optional fields left out (inner ones written as `""`), records a
4I file may not hold are refused. Text CP437 cannot hold is mapped by the rule in
`sie.charset` and each replacement is returned as a CHARACTER_REPLACED finding; a text
ending in a backslash gets `/` instead (a backslash before the closing quote would read
as an escaped quote). Inputs that cannot be written faithfully (amounts with more than
two decimals, balances in a 4I file) raise `ValueError`: they are caller bugs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sie.charset import to_cp437_text
from sie.checksum import crc_update
from sie.codes import Code
from sie.document import SieDocument
from sie.findings import Finding, Severity
from sie.policy import Variant
from sie.records import Balance, BalanceKind, ObjectList, TextLabel, TransRow, Voucher
from sie.tokens import Field
from sie.values import format_amount, format_date, format_decimal, format_ore, ore_decimal

_NEEDS_QUOTES = frozenset(' \t"{}\\')


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Bytes of a written file and what the writer had to say about the input."""

    data: bytes
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return all(f.severity is not Severity.ERROR for f in self.findings)


class _Text:
    """A field to be written quoted."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value


class _Opt(_Text):
    """An optional quoted field: left out when empty and nothing follows it."""

    __slots__ = ()


_Out = str | _Text | ObjectList


class SieWriter:
    """Turns records into lines; tracks the output line, the CRC and the findings."""

    def __init__(self, variant: Variant, checksum: bool = False) -> None:
        self.variant = variant
        self.checksum = checksum
        self.findings: list[Finding] = []
        self._line = 0
        self._crc = 0
        self._crc_running = False

    # ----------------------------------------------------------------- fields
    def _clean(self, text: str) -> str:
        cleaned, notes = to_cp437_text(text)
        if cleaned.endswith("\\"):
            cleaned = cleaned[:-1] + "/"
            notes.append("trailing backslash -> '/'")
        for note in notes:
            self.findings.append(
                Finding(
                    Severity.WARNING,
                    Code.CHARACTER_REPLACED,
                    self._line,
                    f"character replaced for CP437: {note}",
                )
            )
        return cleaned

    def _field(self, value: _Out, flat: list[Field]) -> str:
        if isinstance(value, tuple):
            parts: list[str] = []
            for dimension, obj in value:
                dim = self._clean(dimension)
                name = self._clean(obj)
                flat.append((dim, name))
                parts.append(self._quoted(dim) if _NEEDS_QUOTES & set(dim) or not dim else dim)
                parts.append(self._quoted(name))
            return "{" + " ".join(parts) + "}"
        if isinstance(value, _Text):
            text = self._clean(value.value)
            flat.append(text)
            return self._quoted(text)
        text = self._clean(value)
        flat.append(text)
        if not text or _NEEDS_QUOTES & set(text):
            return self._quoted(text)
        return text

    @staticmethod
    def _quoted(text: str) -> str:
        return '"' + text.replace('"', '\\"') + '"'

    def line(self, label: str, *values: _Out) -> bytes:
        """Encode one record; trailing empty optional fields are left out."""
        self._line += 1
        trimmed = list(values)
        while trimmed and isinstance(trimmed[-1], _Opt) and not trimmed[-1].value:
            trimmed.pop()
        flat: list[Field] = [label]
        text = " ".join([label, *(self._field(v, flat) for v in trimmed)])
        if self._crc_running:
            self._crc = crc_update(self._crc, flat)
        return text.encode("cp437") + b"\r\n"

    def brace(self, char: str) -> bytes:
        """A `{` or `}` line of a voucher block (not part of the checksum)."""
        self._line += 1
        return char.encode("ascii") + b"\r\n"

    def open_checksum(self) -> bytes:
        """The opening `#KSUMMA` marker; records after it are summed."""
        data = self.line("#KSUMMA")
        self._crc_running = True
        return data

    def close_checksum(self) -> bytes:
        """The closing `#KSUMMA <crc>` record."""
        self._crc_running = False
        return self.line("#KSUMMA", str(self._crc))

    def warn(self, code: Code, severity: Severity, message: str, line: int | None) -> None:
        """Record a finding about the input."""
        self.findings.append(Finding(severity, code, line, message))

    # ----------------------------------------------------------------- records
    def balance(self, record: Balance) -> bytes:
        """`#IB #UB #RES #OIB #OUB #PSALDO #PBUDGET`."""
        label = "#" + record.kind.value
        values: list[_Out] = [str(record.year)]
        if record.kind in (BalanceKind.PSALDO, BalanceKind.PBUDGET):
            if record.period is None:
                raise ValueError(f"{label} needs a period")
            values.append(f"{record.period.year:04d}{record.period.month:02d}")
        values.append(record.account)
        if record.kind not in (BalanceKind.IB, BalanceKind.UB, BalanceKind.RES):
            values.append(record.objects)
        elif record.objects:
            raise ValueError(f"{label} cannot carry objects")
        values.append(format_amount(record.amount))
        if record.quantity is not None:
            values.append(format_decimal(record.quantity))
        return self.line(label, *values)

    def row(self, row: TransRow) -> bytes:
        """`#TRANS #RTRANS #BTRANS` with positional optional fields."""
        optional: list[_Out] = [
            _Opt(format_date(row.date) if row.date else ""),
            _Opt(row.text),
            _Opt(format_decimal(row.quantity) if row.quantity is not None else ""),
            _Opt(row.sign),
        ]
        return self.line(
            "#" + row.kind.value, row.account, row.objects, format_ore(row.ore), *optional
        )

    def voucher(self, voucher: Voucher) -> Iterator[bytes]:
        """A `#VER` head, its `{`, rows and `}`."""
        imbalance = voucher.imbalance_ore()
        if imbalance:
            self.warn(
                Code.VOUCHER_UNBALANCED,
                Severity.ERROR,
                f"voucher {voucher.series} {voucher.number} does not balance: "
                f"#TRANS rows sum to {ore_decimal(imbalance)}",
                self._line + 1,
            )
        yield self.line(
            "#VER",
            _Text(voucher.series),
            _Text(voucher.number),
            format_date(voucher.date),
            _Opt(voucher.text),
            _Opt(format_date(voucher.reg_date) if voucher.reg_date else ""),
            _Opt(voucher.sign),
        )
        yield self.brace("{")
        for row in voucher.rows:
            yield self.row(row)
        yield self.brace("}")


def _check_variant(document: SieDocument, variant: Variant) -> None:
    if document.sie_type != 4:
        raise ValueError(f"the writer writes type 4 files, not type {document.sie_type}")
    labels = {label for label, _ in document.texts}
    if labels & {TextLabel.FNAMN, TextLabel.FORMAT}:
        raise ValueError("texts must not hold #FNAMN (company_name) or #FORMAT (always PC8)")
    if variant is Variant.IMPORT and (
        document.balances or document.extent or TextLabel.BKOD in labels
    ):
        raise ValueError("balances, #OMFATTN and #BKOD are forbidden in a 4I file")
    if variant is Variant.IMPORT and document.flag != 0:
        raise ValueError("a 4I file is written with #FLAGGA 0; 1 means 'already imported'")


def iter_document_bytes(
    document: SieDocument,
    variant: Variant = Variant.EXPORT,
    *,
    checksum: bool = False,
    vouchers: Iterable[Voucher] | None = None,
    writer: SieWriter | None = None,
) -> Iterator[bytes]:
    """Yield the file record by record (streaming when `vouchers` is an iterator).

    Args:
        document: header, chart and balances (and vouchers unless `vouchers` is given).
        variant: 4E (export) or 4I (import: balances refused).
        checksum: write `#KSUMMA` markers with the computed CRC.
        vouchers: vouchers to write instead of `document.vouchers`, e.g. a generator.
        writer: pass one to read its `findings` afterwards.
    """
    _check_variant(document, variant)
    out = writer or SieWriter(variant, checksum)
    yield out.line("#FLAGGA", str(document.flag))
    if checksum:
        yield out.open_checksum()
    program = document.program
    yield out.line("#PROGRAM", _Text(program.name), _Text(program.version))
    yield out.line("#FORMAT", "PC8")
    yield out.line("#GEN", format_date(document.generated.date), _Opt(document.generated.sign))
    yield out.line("#SIETYP", "4")
    for label, text in document.texts:
        yield out.line(label.value, _Text(text))
    if document.org_number is not None:
        org = document.org_number
        yield out.line("#ORGNR", org.number, _Opt(org.division), _Opt(org.activity))
    if document.address is not None:
        a = document.address
        yield out.line(
            "#ADRESS", _Text(a.contact), _Text(a.street), _Text(a.postal), _Text(a.phone)
        )
    yield out.line("#FNAMN", _Text(document.company_name))
    for year in document.financial_years:
        yield out.line("#RAR", str(year.index), format_date(year.start), format_date(year.end))
    if document.tax_year is not None:
        yield out.line("#TAXAR", str(document.tax_year))
    if document.extent is not None:
        yield out.line("#OMFATTN", format_date(document.extent))
    for account in document.accounts:
        yield out.line("#KONTO", account.number, _Text(account.name))
    for info in document.account_info:
        yield out.line(info.label.value, info.account, _Text(info.value))
    for dim in document.dimensions:
        if dim.parent:
            yield out.line("#UNDERDIM", dim.number, _Text(dim.name), dim.parent)
        else:
            yield out.line("#DIM", dim.number, _Text(dim.name))
    for obj in document.objects:
        yield out.line("#OBJEKT", obj.dimension, _Text(obj.number), _Text(obj.name))
    for balance in document.balances:
        yield out.balance(balance)
    for voucher in document.vouchers if vouchers is None else vouchers:
        yield from out.voucher(voucher)
    if checksum:
        yield out.close_checksum()
    if variant is Variant.EXPORT:
        missing = [
            name
            for name, present in (("#RAR", document.financial_years), ("#KONTO", document.accounts))
            if not present
        ]
        for name in missing:
            out.warn(
                Code.MISSING_MANDATORY_RECORD,
                Severity.WARNING,
                f"mandatory record {name} is missing for type 4E",
                None,
            )


def write_document(
    document: SieDocument, variant: Variant = Variant.EXPORT, *, checksum: bool = False
) -> WriteResult:
    """Write a whole document to bytes."""
    writer = SieWriter(variant, checksum)
    data = b"".join(iter_document_bytes(document, variant, checksum=checksum, writer=writer))
    return WriteResult(data, tuple(writer.findings))


def write_4i(
    document: SieDocument, vouchers: Iterable[Voucher] | None = None, *, checksum: bool = False
) -> WriteResult:
    """Write an import (4I) file: header and chart from `document`, then the vouchers."""
    writer = SieWriter(Variant.IMPORT, checksum)
    chunks = iter_document_bytes(
        document, Variant.IMPORT, checksum=checksum, vouchers=vouchers, writer=writer
    )
    data = b"".join(chunks)
    return WriteResult(data, tuple(writer.findings))
