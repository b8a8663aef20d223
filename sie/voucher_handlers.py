"""Voucher handling: `#VER` heads, `{ }` blocks, rows, and their fast paths."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Final

from sie.codes import Code
from sie.findings import Severity
from sie.reader_base import (
    AWAIT_OPEN,
    CACHE_LIMIT,
    IN_BLOCK,
    NO_BLOCK,
    PLACES_KEPT,
    ReaderBase,
    RowHead,
    RowTail,
    VoucherHead,
    field_text,
)
from sie.records import (
    ObjectList,
    RowKind,
    TransRow,
    Voucher,
)
from sie.tokens import Field, tokenize
from sie.values import NO_ORE, ore_at, ore_decimal, parse_date, parse_quantity

_ROW_KINDS: Final = {"#TRANS": RowKind.TRANS, "#RTRANS": RowKind.RTRANS, "#BTRANS": RowKind.BTRANS}
_TRANS: Final = RowKind.TRANS
_UNKNOWN_YEAR: Final = -(10**9)
_new: Final = tuple.__new__
"""Builds a row or voucher from all its fields, skipping the Python-level `__new__` that
the NamedTuple constructor runs first (125 against 215 ns a row)."""
_ROW: Final = TransRow  # constants mypyc keeps in C, not looked up per row
_VOUCHER: Final = Voucher


def _row_head(text: str, closing: int) -> RowHead | None:
    """Kind, account and objects of a common-shape row whose object list ends at `closing`."""
    space = text.find(" ")
    kind = _ROW_KINDS.get(text[:space])
    opening = text.find("{", space)
    if kind is None or opening < 0 or closing < opening:
        return None
    account = text[space + 1 : opening].rstrip(" ")
    objects = _object_list(text[opening + 1 : closing]) if account.isalnum() else None
    return None if objects is None else (kind, account, objects)


def _object_list(listed: str) -> ObjectList | None:
    """The pairs of an object list's inner text; None unless it reads without a finding."""
    if "\\" in listed or "{" in listed or listed.count('"') % 2:
        return None
    words = tokenize("{" + listed + "}")[0]
    if not isinstance(words, tuple) or len(words) % 2:
        return None
    return tuple(zip(words[::2], words[1::2], strict=True))


def _plain_word(text: str, start: int) -> tuple[str, int]:
    """The alphanumeric word at `start`, bare or quoted (`A` or `"A"`, as programs write a
    voucher's series and number), and the index of the single space after it; ("", -1)
    for anything else."""
    if start < len(text) and text[start] == '"':
        end = text.find('"', start + 1)
        if end < 0:
            return "", -1
        word = text[start + 1 : end]
        end += 1
    else:
        end = text.find(" ", start)
        if end < 0:
            return "", -1
        word = text[start:end]
    if end >= len(text) or text[end] != " " or not word.isalnum():
        return "", -1
    return word, end


def _name(series: str, number: str) -> str:
    """How a voucher is named in messages."""
    return f"{series} {number}".strip() or "(unnumbered)"


class VoucherHandlers(ReaderBase):
    """Assembles vouchers and checks balance, dates, numbering and accounts."""

    def _on_ver(self, fields: list[Field], line: int) -> None:
        self._new_voucher(line)
        day: date | None = None
        if len(fields) < 4 or not field_text(fields, 3):
            self._report(Code.INVALID_DATE, Severity.ERROR, line, "#VER has no voucher date")
        else:
            day = self._date(field_text(fields, 3), line, "voucher date")
        reg_text = field_text(fields, 5)
        reg_date = self._date(reg_text, line, "registration date") if reg_text else None
        self._head = VoucherHead(
            field_text(fields, 1),
            field_text(fields, 2),
            day,
            field_text(fields, 4),
            reg_date,
            field_text(fields, 6),
            line,
        )

    def _fast_ver(self, text: str, line: int) -> bool:
        """Open a voucher from a common-shape `#VER` line without tokenizing it; False
        for `_on_ver`.

        Common shape: `#VER series number date "text"`, then at most a registration date
        and a sign; no braces, series and number bare, the words outside the quotes ASCII
        and both dates valid. Such a line reads exactly as `tokenize` and `_on_ver` read it
        and has no finding.
        """
        if self._plain_ver(text, line):
            return True
        opening = text.find('"')
        if opening < 0 or "{" in text or "}" in text:
            return False
        head = text[5:opening]  # after "#VER "
        words = head.split() if head.isascii() else []
        if len(words) != 3:
            return False
        closing = text.find('"', opening + 1)
        while closing > 0 and text[closing - 1] == "\\":  # \" does not end the text
            closing = text.find('"', closing + 1)
        rest = text[closing + 1 :]
        if closing < 0 or '"' in rest or not rest.isascii():
            return False
        after = rest.split()
        day = parse_date(words[2])
        reg_date = parse_date(after[0]) if after else None
        if len(after) > 2 or day is None or (after and reg_date is None):
            return False
        title = text[opening + 1 : closing]
        if "\\" in title:
            title = title.replace('\\"', '"')
        self._new_voucher(line)
        sign = after[1] if len(after) == 2 else ""
        self._head = VoucherHead(words[0], words[1], day, title, reg_date, sign, line)
        return True

    def _plain_ver(self, text: str, line: int) -> bool:
        """`_fast_ver` for the shape nearly every program writes, `#VER series number date
        "text"` and at most a registration date, one space apart, series and number bare
        (Fortnox) or quoted (`"A" "1"`, as many others write them): read with a few finds,
        no split, and dates that repeat from voucher to voucher not parsed again.

        Series and number must be alphanumeric (so neither holds a space, a brace or a
        quote) and both dates valid; a brace inside the text is only text, as `tokenize`
        reads it. Anything else is left to the rest of `_fast_ver`.
        """
        series, first = _plain_word(text, 5)  # after "#VER "
        number, second = _plain_word(text, first + 1) if first > 0 else ("", -1)
        opening = second + 10  # after the date and a space
        if second < 0 or opening >= len(text) or text[opening] != '"':
            return False
        if text[opening - 1] != " ":
            return False
        day_text = text[second + 1 : opening - 1]
        if day_text == self._day_text:
            day = self._day_value
        else:
            day = parse_date(day_text)
            if day is None:
                return False
            self._day_text, self._day_value = day_text, day
        closing = text.find('"', opening + 1)
        while closing > 0 and text[closing - 1] == "\\":  # \" does not end the text
            closing = text.find('"', closing + 1)
        if closing < 0:
            return False
        after = len(text) - closing - 1
        reg_date: date | None = None
        if after == 9 and text[closing + 1] == " ":
            reg_text = text[closing + 2 :]
            if reg_text == self._reg_text:
                reg_date = self._reg_value
            else:
                reg_date = parse_date(reg_text)
                if reg_date is None:
                    return False
                self._reg_text, self._reg_value = reg_text, reg_date
        elif after:
            return False
        title = text[opening + 1 : closing]
        if "\\" in title:
            title = title.replace('\\"', '"')
        self._new_voucher(line)
        self._head = VoucherHead(series, number, day, title, reg_date, "", line)
        return True

    def _new_voucher(self, line: int) -> None:
        """Start the voucher a `#VER` at `line` opens (ending any still open)."""
        self._seen("#VER", line)
        if self._block != NO_BLOCK:
            self._abandon_voucher(line)
        self._block = AWAIT_OPEN
        self._rows.clear()
        self._ore = 0
        self._damaged = False

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
        self._malformed(line, f"voucher at line {self._head.line} lacks its {what}")
        self._finish_voucher()

    def _on_row(self, fields: list[Field], line: int) -> None:
        label = str(fields[0])
        if self._block == AWAIT_OPEN and self._head is not None:
            self._block = IN_BLOCK
            message = f"voucher at line {self._head.line} lacks its '{{'; rows taken"
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
        ore = self._ore_amount(fields[3], line)
        if not account or not isinstance(account, str):
            self._damaged = True
            self._report(Code.MISSING_ACCOUNT, Severity.ERROR, line, f"{label} has no account")
            return
        if ore is None:
            self._damaged = True
            return
        kind = RowKind.TRANS if label == "#TRANS" else RowKind(label[1:].upper())
        if kind is RowKind.TRANS:
            self._ore += ore
            self._transactions += 1
        else:
            self._seen(label, line)
        objects = self._objects(fields[2], line) if fields[2] else ()
        if account not in self._declared:
            self._use_account(account, line)
        n = len(fields)
        if n == 4:
            row = TransRow(kind, account, ore, objects, line=line)
        else:
            day_text = field_text(fields, 4)
            day = self._date(day_text, line, "transaction date") if day_text else None
            row = TransRow(
                kind,
                account,
                ore,
                objects,
                day,
                field_text(fields, 5),
                self._quantity(fields, 6, line) if n > 6 else None,
                field_text(fields, 7),
                line,
            )
        self._rows.append(row)

    def _fast_row(self, text: str, line: int) -> bool:
        """Add a common-shape row without tokenizing the whole line; False for `_on_row`.

        Common shape: `#TRANS account {objects} amount` then at most four plain fields
        (date, text, quantity, sign), with a bare alphanumeric account, an object list
        without braces or backslashes inside, a valid amount and, if given, a valid date
        and quantity. Such a row reads exactly as `_on_row` reads it and has no finding;
        anything else goes to `_on_row`. What precedes the amount, and what follows it,
        repeat from row to row, so both are read once and then looked up. Vouchers of a
        kind repeat their rows' accounts in order, so the row at the same place in an
        earlier voucher is tried first, by comparing the row's start: no copy, no hash.
        """
        place = len(self._rows)
        earlier = self._prefix_at[place] if place < len(self._prefix_at) else ""
        head: RowHead | None
        # `earlier` ends at its first "}", so a row that starts with it has its first "}"
        # there too: no search for it.
        here = bool(earlier) and text.startswith(earlier)
        if here:
            closing = len(earlier) - 1
            prefix, head, fresh = earlier, self._head_at[place], False
        else:
            closing = text.find("}")
            prefix = text[: closing + 1]
            head = self._row_heads.get(prefix)
            fresh = head is None
            if head is None:
                head = _row_head(text, closing)
        if head is None:
            return False
        start = closing + 1
        if start < len(text) and text[start] == " ":
            start += 1
        ore, end = ore_at(text, start)
        if ore == NO_ORE:
            return False
        # What follows the amount: rows mostly end alike, so the previous row's tail is
        # recognised by comparing the row's end, before any copy or lookup.
        day: date | None = None
        row_text = ""
        quantity: Decimal | None = None
        sign = ""
        size = len(text) - end - 1
        if size > 0:
            last = self._last_tail
            if not (size == len(last) and text.endswith(last)) and not self._new_tail(
                text[end + 1 :]
            ):
                return False
            day, row_text = self._tail_day, self._tail_text
            quantity, sign = self._tail_quantity, self._tail_sign
        kind, account, objects = head
        if kind is _TRANS:
            self._ore += ore
            self._transactions += 1
        else:
            self._seen("#" + kind, line)  # a StrEnum: its text, without the slow `.value`
        if fresh:  # once an account is checked, it is declared or already reported
            if account not in self._declared:
                self._use_account(account, line)
            if len(self._row_heads) >= CACHE_LIMIT:
                self._row_heads.clear()
            self._row_heads[prefix] = head
        if not here:
            self._keep_place(place, prefix, head)
        self._rows.append(
            _new(_ROW, (kind, account, ore, objects, day, row_text, quantity, sign, line))
        )
        return True

    def _keep_place(self, place: int, prefix: str, head: RowHead) -> None:
        """Remember what the row at `place` of this voucher began with, for the next one."""
        if place < len(self._prefix_at):
            self._prefix_at[place], self._head_at[place] = prefix, head
        elif place < PLACES_KEPT:
            self._prefix_at.append(prefix)
            self._head_at.append(head)

    def _new_tail(self, tail: str) -> bool:
        """Make `tail` (a row's text after its amount) the last one read, its date, text,
        quantity and sign in the `_tail_*` fields; False unless they read cleanly."""
        cached = self._tails.get(tail)
        if cached is None:
            cached = self._read_tail(tail)
            if cached is None:
                return False
        self._last_tail = tail
        self._tail_day, self._tail_text, self._tail_quantity, self._tail_sign = cached
        return True

    def _read_tail(self, tail: str) -> RowTail | None:
        """What `_new_tail` reads of a tail not seen yet (now kept)."""
        fields = tokenize(tail)
        if len(fields) > 4:
            return None
        words = [field for field in fields if isinstance(field, str)]
        if len(words) < len(fields):
            return None
        day_text, text, quantity_text, sign = (*words, "", "", "", "")[:4]
        day = parse_date(day_text) if day_text else None
        quantity = parse_quantity(quantity_text) if quantity_text else None
        if (day_text and day is None) or (quantity_text and quantity is None):
            return None
        value = (day, text, quantity, sign)
        if len(self._tails) >= CACHE_LIMIT:
            self._tails.clear()
        self._tails[tail] = value
        return value

    def _finish_voucher(self) -> None:
        """Emit the current voucher after its checks."""
        source = ""
        if self._source is not None:
            self._source.append("")  # so that the joined text ends with a newline, unjoined
            source = "\n".join(self._source)
            self._source = []
        head = self._head
        assert head is not None
        self._block = NO_BLOCK
        self._head = None
        series, number, day, line = head.series, head.number, head.day, head.line
        rows = tuple(self._rows)
        self._rows.clear()  # the same list again: one list, not one a voucher
        if day is None:
            return
        year = self._year_of.get(day, _UNKNOWN_YEAR)
        if year == _UNKNOWN_YEAR:
            year = next((y.index for y in self._years if y.contains(day)), None)
            if len(self._year_of) < CACHE_LIMIT:
                self._year_of[day] = year
        voucher: Voucher = _new(
            _VOUCHER,
            (series, number, day, rows, head.text, head.reg_date, head.sign, line, year, source),
        )
        if self._ore and not self._damaged:
            self._unbalanced += 1
            severity = Severity.WARNING if self.policy.allow_unbalanced else Severity.ERROR
            self._report(
                Code.VOUCHER_UNBALANCED,
                severity,
                line,
                f"voucher {_name(series, number)} of {day.isoformat()} does not balance: "
                f"#TRANS rows sum to {ore_decimal(self._ore)}",
            )
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
        self._out.append(voucher)
