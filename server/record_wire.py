"""ImportSie's record batches written straight in protobuf's wire format, in the parser processes.

Building a ``SieTransaction`` message per row and a ``SieVoucher`` per voucher cost the parser
about four times what reading the file did. Here each field is written as the bytes protobuf
would write (fields in number order, proto3 defaults left out, so the bytes are those
``SerializeToString`` gives: ``tests/unit/test_record_wire.py`` holds them to it), and what
repeats from row to row (accounts, dates, dimensions) is written once and kept.

A voucher is written without its document count, which is appended when known (field 10 is the
voucher's last, so appending it gives the same bytes as setting it): the counts come from a
listing of Fortnox that may end long after the voucher was read (``core.sie_parse``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Final

from core.money import to_ore
from core.sie_parse import RecordBatch
from sie import Account, Balance, RowKind, TransRow, Voucher

#: Each cache of written fields is emptied when it grows past this many entries (texts that
#: do not repeat cannot make it grow without bound).
_CACHE_MOST: Final = 50_000
_VARINTS: Final = tuple(
    bytes([n]) if n < 0x80 else bytes([(n & 0x7F) | 0x80, n >> 7]) for n in range(1 << 14)
)
#: 14 bits as the two bytes of a varint that goes on.
_PAIRS: Final = tuple(bytes([(n & 0x7F) | 0x80, (n >> 7) | 0x80]) for n in range(1 << 14))
_NEGATIVE_TAIL: Final = b"\xff" * 5 + b"\x01"
#: Bits 14 to 27 of a negative int64 of at least -2^28, then the six bytes of its set bits.
_NEGATIVE_HIGHS: Final = tuple(pair + _NEGATIVE_TAIL for pair in _PAIRS)
_TRANS: Final = RowKind.TRANS
_RTRANS: Final = RowKind.RTRANS
_BTRANS: Final = RowKind.BTRANS


def varint(value: int) -> bytes:
    """``value`` as a varint (a negative one as its 64-bit two's complement, as int64 and
    int32 fields are written)."""
    if 0 <= value < 1 << 14:
        return _VARINTS[value]
    if 0 < value < 1 << 28:  # the low 14 bits, then up to 14 more
        return _PAIRS[value & 0x3FFF] + _VARINTS[value >> 14]
    if value > 0:  # the low 14 bits, then the rest
        return _PAIRS[value & 0x3FFF] + varint(value >> 14)
    if value >= -(1 << 28):  # bits 28 to 63 are all set: ten bytes, the last six fixed
        low = value + (1 << 28)  # its low 28 bits, without a 64-bit int
        return _PAIRS[low & 0x3FFF] + _NEGATIVE_HIGHS[low >> 14]
    value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def _length_delimited(tag: bytes, body: bytes) -> bytes:
    size = len(body)
    return tag + (_VARINTS[size] if size < 1 << 14 else varint(size)) + body


def _append_length_delimited(parts: list[bytes], tag: bytes, body: bytes) -> int:
    """``_length_delimited``'s pieces appended to ``parts``, uncopied; their size."""
    size = len(body)
    prefix = _VARINTS[size] if size < 1 << 14 else varint(size)
    parts.append(tag)
    parts.append(prefix)
    parts.append(body)
    return len(tag) + len(prefix) + size


def _ore(amount: Decimal) -> int:
    """``core.money.to_ore``, a third of the cost for amounts of at most two decimals."""
    numerator, denominator = amount.as_integer_ratio()
    if denominator == 1:
        return numerator * 100
    if 100 % denominator == 0:
        return numerator * (100 // denominator)
    return to_ore(amount)


# Tags, by message and field number (Final: compiled, each a constant of the module).
_BATCH_YEAR: Final = _field(1, 0)
_BATCH_ACCOUNT: Final = _field(2, 2)
_BATCH_BALANCE: Final = _field(3, 2)
_BATCH_VOUCHER: Final = _field(4, 2)
_RESPONSE_RECORDS: Final = _field(3, 2)  # ImportSieResponse.records
_ACCOUNT_NUMBER: Final = _field(1, 2)
_ACCOUNT_NAME: Final = _field(2, 2)
_BALANCE_KIND: Final = _field(1, 2)
_BALANCE_YEAR: Final = _field(2, 0)
_BALANCE_ACCOUNT: Final = _field(3, 2)
_BALANCE_PERIOD: Final = _field(4, 2)
_BALANCE_OBJECTS: Final = _field(5, 2)
_BALANCE_AMOUNT: Final = _field(6, 0)
_BALANCE_LINE: Final = _field(7, 0)
_OBJECT_DIMENSION: Final = _field(1, 2)
_OBJECT_ID: Final = _field(2, 2)
_ROW_ACCOUNT: Final = _field(1, 2)
_ROW_OBJECTS: Final = _field(2, 2)
_ROW_AMOUNT: Final = _field(3, 0)
_ROW_DATE: Final = _field(4, 2)
_ROW_TEXT: Final = _field(5, 2)
_VOUCHER_SERIES: Final = _field(1, 2)
_VOUCHER_NUMBER: Final = _field(2, 2)
_VOUCHER_DATE: Final = _field(3, 2)
_VOUCHER_TEXT: Final = _field(4, 2)
_VOUCHER_REG_DATE: Final = _field(5, 2)
_VOUCHER_TRANS: Final = _field(6, 2)
_VOUCHER_RTRANS: Final = _field(7, 2)
_VOUCHER_BTRANS: Final = _field(8, 2)
_VOUCHER_LINE: Final = _field(9, 0)
_VOUCHER_DOCUMENTS: Final = _field(10, 0)
_DATE_YEAR: Final = _field(1, 0)
_DATE_MONTH: Final = _field(2, 0)
_DATE_DAY: Final = _field(3, 0)


class RecordWriter:
    """A ``core.sie_parse.RecordEncoder`` that writes the wire format by hand."""

    def __init__(self) -> None:
        self._strings: dict[tuple[bytes, str], bytes] = {}
        self._dates: dict[tuple[bytes, date], bytes] = {}
        self._periods: dict[date, bytes] = {}
        self._objects: dict[tuple[bytes, tuple[tuple[str, str], ...]], bytes] = {}
        #: A row's account and objects, written (by its account alone where it has none).
        self._row_heads: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}
        self._account_heads: dict[str, bytes] = {}
        #: A row's date field, by date.
        self._row_dates: dict[date, bytes] = {}
        #: A voucher's series and date fields, by series and by date (no tuple key to build
        #: and hash per voucher).
        self._series: dict[str, bytes] = {}
        self._days: dict[date, bytes] = {}

    def parts(self, batch: RecordBatch) -> tuple[bytes, list[bytes]]:
        """The batch's message but its vouchers, and each voucher's without a count."""
        return self._head(batch), [self._voucher(v, b"") for v in batch.vouchers]

    def _head(self, batch: RecordBatch) -> bytes:
        """The batch's fields before its vouchers."""
        head = [_BATCH_YEAR + varint(batch.financial_year_id)] if batch.financial_year_id else []
        head += [_length_delimited(_BATCH_ACCOUNT, self._account(a)) for a in batch.accounts]
        head += [_length_delimited(_BATCH_BALANCE, self._balance(b)) for b in batch.balances]
        return b"".join(head)

    def message(self, head: bytes, vouchers: Sequence[bytes],
                counts: Sequence[int] | None) -> bytes:
        """The batch's whole ``ImportSieResponse`` from its parts; each voucher says its
        number of documents (``None``: not known, left unset)."""
        if counts is None:
            body = [_length_delimited(_BATCH_VOUCHER, v) for v in vouchers]
        else:
            body = [_length_delimited(_BATCH_VOUCHER, v + _VOUCHER_DOCUMENTS + varint(count))
                    for v, count in zip(vouchers, counts, strict=True)]
        return _length_delimited(_RESPONSE_RECORDS, b"".join([head, *body]))

    def __call__(self, batch: RecordBatch) -> bytes:
        """The batch's whole message, its vouchers' counts as the batch holds them (each
        voucher written once, its count with it). Every field is a part of one list, joined
        once: no voucher's or row's bytes are copied into a bigger one on the way."""
        counts = batch.document_counts
        head = self._head(batch)
        parts = [_RESPONSE_RECORDS, b"", head]  # the second: the message's size, once known
        size = len(head)
        zero = _VOUCHER_DOCUMENTS + _VARINTS[0]
        for index, voucher in enumerate(batch.vouchers):
            at = len(parts)
            parts.append(b"")  # the voucher's tag and size, once known
            written = self._voucher_parts(voucher, parts)
            if counts is not None:
                count = counts[index]
                field = _VOUCHER_DOCUMENTS + varint(count) if count else zero
                parts.append(field)
                written += len(field)
            tag = parts[at] = _BATCH_VOUCHER + varint(written)
            size += len(tag) + written
        parts[1] = varint(size)
        return b"".join(parts)

    # -- the messages --------------------------------------------------------------------

    def _string(self, tag: bytes, text: str) -> bytes:
        """A string field (empty if the text is: proto3 leaves defaults out), kept."""
        key = (tag, text)
        written = self._strings.get(key)
        if written is None:
            if len(self._strings) >= _CACHE_MOST:
                self._strings.clear()
            written = self._strings[key] = (
                _length_delimited(tag, text.encode()) if text else b"")
        return written

    def _date(self, tag: bytes, day: date | None) -> bytes:
        if day is None:
            return b""
        key = (tag, day)
        written = self._dates.get(key)
        if written is None:
            if len(self._dates) >= _CACHE_MOST:
                self._dates.clear()
            body = b"".join(field + varint(value) for field, value in (
                (_DATE_YEAR, day.year), (_DATE_MONTH, day.month), (_DATE_DAY, day.day))
                if value)
            written = self._dates[key] = _length_delimited(tag, body)
        return written

    def _period(self, month: date) -> bytes:
        """A balance's period field (its month as text: ``YYYYMM``), kept."""
        written = self._periods.get(month)
        if written is None:
            if len(self._periods) >= _CACHE_MOST:
                self._periods.clear()
            written = self._periods[month] = _length_delimited(
                _BALANCE_PERIOD, month.strftime("%Y%m").encode())
        return written

    def _object_refs(self, tag: bytes, pairs: tuple[tuple[str, str], ...]) -> bytes:
        if not pairs:
            return b""
        key = (tag, pairs)
        written = self._objects.get(key)
        if written is None:
            if len(self._objects) >= _CACHE_MOST:
                self._objects.clear()
            written = self._objects[key] = b"".join(
                _length_delimited(tag, self._string(_OBJECT_DIMENSION, dimension)
                                  + self._string(_OBJECT_ID, object_id))
                for dimension, object_id in pairs)
        return written

    def _account(self, account: Account) -> bytes:
        return (self._string(_ACCOUNT_NUMBER, account.number)
                + self._string(_ACCOUNT_NAME, account.name))

    def _balance(self, balance: Balance) -> bytes:
        amount = _ore(balance.amount)
        period = balance.period
        return b"".join((
            self._string(_BALANCE_KIND, str(balance.kind)),
            _BALANCE_YEAR + varint(balance.year) if balance.year else b"",
            self._string(_BALANCE_ACCOUNT, balance.account),
            self._period(period) if period else b"",
            self._object_refs(_BALANCE_OBJECTS, balance.objects),
            _BALANCE_AMOUNT + varint(amount) if amount else b"",
            _BALANCE_LINE + varint(balance.line) if balance.line else b"",
        ))

    def _row_head(self, account: str, objects: tuple[tuple[str, str], ...]) -> bytes:
        """A row's account and objects, written and kept."""
        if not objects:
            if len(self._account_heads) >= _CACHE_MOST:
                self._account_heads.clear()
            written = self._account_heads[account] = self._string(_ROW_ACCOUNT, account)
            return written
        if len(self._row_heads) >= _CACHE_MOST:
            self._row_heads.clear()
        written = self._row_heads[(account, objects)] = (
            self._string(_ROW_ACCOUNT, account) + self._object_refs(_ROW_OBJECTS, objects))
        return written

    def _row_date(self, day: date) -> bytes:
        """A row's date field, kept."""
        if len(self._row_dates) >= _CACHE_MOST:
            self._row_dates.clear()
        written = self._row_dates[day] = self._date(_ROW_DATE, day)
        return written

    def _rows(self, tag: bytes, rows: Iterable[TransRow], parts: list[bytes]) -> int:
        """Rows as fields ``tag`` of their voucher, each field's pieces appended to ``parts``;
        their size in bytes (the hot loop: a year has millions)."""
        heads, account_heads, dates = self._row_heads, self._account_heads, self._row_dates
        size = 0
        for row in rows:
            account, objects = row.account, row.objects
            head = account_heads.get(account) if not objects else heads.get((account, objects))
            if head is None:
                head = self._row_head(account, objects)
            at = len(parts)
            parts.append(tag)
            parts.append(b"")  # the row's size, once known
            parts.append(head)
            body = len(head)
            ore = row.ore
            if ore:
                amount = varint(ore)
                parts.append(_ROW_AMOUNT)
                parts.append(amount)
                body += len(_ROW_AMOUNT) + len(amount)
            day = row.date
            if day is not None:
                field = dates.get(day)
                if field is None:
                    field = self._row_date(day)
                parts.append(field)
                body += len(field)
            if row.text:
                body += _append_length_delimited(parts, _ROW_TEXT, row.text.encode())
            prefix = parts[at + 1] = _VARINTS[body] if body < 1 << 14 else varint(body)
            size += len(tag) + len(prefix) + body
        return size

    def _voucher(self, voucher: Voucher, count: bytes) -> bytes:
        """A voucher, its document count field (``count``: empty if none) last."""
        parts: list[bytes] = []
        self._voucher_parts(voucher, parts)
        parts.append(count)
        return b"".join(parts)

    def _voucher_parts(self, voucher: Voucher, parts: list[bytes]) -> int:
        """A voucher without its document count, its fields' pieces appended to ``parts``;
        its size in bytes."""
        series = self._series.get(voucher.series)
        if series is None:
            if len(self._series) >= _CACHE_MOST:
                self._series.clear()
            series = self._series[voucher.series] = self._string(_VOUCHER_SERIES,
                                                                 voucher.series)
        parts.append(series)
        size = len(series)
        number, text = voucher.number, voucher.text
        if number:
            size += _append_length_delimited(parts, _VOUCHER_NUMBER, number.encode())
        day = self._days.get(voucher.date)
        if day is None:
            if len(self._days) >= _CACHE_MOST:
                self._days.clear()
            day = self._days[voucher.date] = self._date(_VOUCHER_DATE, voucher.date)
        parts.append(day)
        size += len(day)
        if text:
            size += _append_length_delimited(parts, _VOUCHER_TEXT, text.encode())
        if voucher.reg_date is not None:
            registered = self._date(_VOUCHER_REG_DATE, voucher.reg_date)
            parts.append(registered)
            size += len(registered)
        rows = voucher.rows
        for row in rows:
            if row.kind is not _TRANS:  # posted rows first, then the added, then the struck
                size += self._rows(_VOUCHER_TRANS, [r for r in rows if r.kind is _TRANS], parts)
                size += self._rows(_VOUCHER_RTRANS, [r for r in rows if r.kind is _RTRANS],
                                   parts)
                size += self._rows(_VOUCHER_BTRANS, [r for r in rows if r.kind is _BTRANS],
                                   parts)
                break
        else:
            size += self._rows(_VOUCHER_TRANS, rows, parts)
        if voucher.line:
            line = varint(voucher.line)
            parts.append(_VOUCHER_LINE)
            parts.append(line)
            size += len(_VOUCHER_LINE) + len(line)
        return size

#: The encoder the parser processes use...
WRITER = RecordWriter()
#: ...as they import it (``adapters.sie_parsing.worker``).
PARSER_RECORD_ENCODER = f"{__name__}:WRITER"
