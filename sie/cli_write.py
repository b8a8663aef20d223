"""`sie write VOUCHERS.json -o FILE.si`: turn a JSON list of vouchers into a 4I file.

JSON shape (also printed by `--help`)::

    [
      {"series": "A", "number": "", "date": "2026-01-31", "text": "Rent",
       "rows": [
         {"account": "1930", "amount": "-1000.00"},
         {"account": "5010", "amount": 1000, "objects": [["6", "P1"]],
          "text": "January", "date": "2026-01-31", "quantity": "1"}
       ]}
    ]

Amounts are JSON strings or numbers, read exactly (never through float). `series`,
`number`, `text` and the row fields other than `account` and `amount` are optional; an
empty number lets the receiver number the voucher.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sie.document import SieDocument
from sie.records import (
    Account,
    FinancialYear,
    Generated,
    OrgNumber,
    Program,
    RowKind,
    TransRow,
    Voucher,
)
from sie.values import ore_of
from sie.writer import write_4i

_SHAPE = """JSON input: a list of vouchers, each
  {"series": str?, "number": str?, "date": "YYYY-MM-DD", "text": str?, "rows": [row, ...]}
with rows
  {"account": str, "amount": "-12.50" | number, "objects": [[dim, obj], ...]?,
   "text": str?, "date": "YYYY-MM-DD"?, "quantity": "1" | number?}
Amounts are read exactly (never as float) and must have at most two decimals."""


class InputError(ValueError):
    """The JSON input does not have the documented shape."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `write` subcommand."""
    parser = subparsers.add_parser(
        "write",
        help="write a 4I import file from a JSON list of vouchers",
        description="Write a SIE 4I file (CP437, CRLF) from a JSON list of vouchers.",
        epilog=_SHAPE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "input", metavar="VOUCHERS.json", type=Path, help="JSON input ('-' = stdin)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .si file to write")
    parser.add_argument("--company-name", required=True, help="#FNAMN of the target company")
    parser.add_argument("--org-number", default="", help="#ORGNR, e.g. 556677-8899")
    parser.add_argument("--year-start", type=date.fromisoformat, help="#RAR 0 start (ISO date)")
    parser.add_argument("--year-end", type=date.fromisoformat, help="#RAR 0 end (ISO date)")
    parser.add_argument("--sign", default="", help="#GEN signature (user or process)")
    parser.add_argument(
        "--accounts",
        type=Path,
        help='JSON object {"account": "name"} written as #KONTO records',
    )
    parser.add_argument("--checksum", action="store_true", help="write a computed #KSUMMA")
    parser.set_defaults(handler=run)


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InputError(f"{what} must be a string or a number")
    try:
        result = Decimal(value)
    except InvalidOperation as error:
        raise InputError(f"{what} {value!r} is not a number") from error
    if not result.is_finite():
        raise InputError(f"{what} {value!r} is not a finite number")
    return result


def _ore(value: Any, where: str) -> int:
    amount = _decimal(value, f"{where}: amount")
    try:
        return ore_of(amount)
    except ValueError as error:  # more than two decimals, or beyond 15 digits
        raise InputError(f"{where}: {error}") from error


def _date(value: Any, what: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise InputError(f"{what} {value!r} is not an ISO date") from error


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key, "")
    if not isinstance(value, str):
        raise InputError(f"{key} must be a string")
    return value


def _row(item: Any, where: str) -> TransRow:
    if not isinstance(item, dict) or "account" not in item or "amount" not in item:
        raise InputError(f"{where}: a row needs 'account' and 'amount'")
    objects = item.get("objects", [])
    if not isinstance(objects, list) or not all(
        isinstance(o, list) and len(o) == 2 and all(isinstance(p, str) for p in o) for o in objects
    ):
        raise InputError(f"{where}: objects must be a list of [dimension, object] strings")
    quantity = item.get("quantity")
    return TransRow(
        RowKind.TRANS,
        str(item["account"]),
        _ore(item["amount"], where),
        tuple((dim, obj) for dim, obj in objects),
        _date(item["date"], f"{where}: date") if item.get("date") else None,
        _text(item, "text"),
        _decimal(quantity, f"{where}: quantity") if quantity is not None else None,
    )


def parse_vouchers(payload: Any) -> list[Voucher]:
    """Turn the decoded JSON (parsed with `parse_float=Decimal`) into vouchers."""
    if not isinstance(payload, list):
        raise InputError("the input must be a JSON list of vouchers")
    vouchers = []
    for index, item in enumerate(payload, 1):
        where = f"voucher {index}"
        if not isinstance(item, dict) or "date" not in item or "rows" not in item:
            raise InputError(f"{where}: needs 'date' and 'rows'")
        rows = item["rows"]
        if not isinstance(rows, list):
            raise InputError(f"{where}: rows must be a list")
        vouchers.append(
            Voucher(
                _text(item, "series"),
                str(item.get("number", "")),
                _date(item["date"], f"{where}: date"),
                tuple(_row(row, f"{where} row {n}") for n, row in enumerate(rows, 1)),
                _text(item, "text"),
            )
        )
    return vouchers


def _load(path: Path) -> Any:
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    return json.loads(text, parse_float=Decimal)


def run(args: argparse.Namespace) -> int:
    """Write the file; 1 if the vouchers have errors (nothing written), 2 on bad input."""
    try:
        vouchers = parse_vouchers(_load(args.input))
        accounts = _load(args.accounts) if args.accounts else {}
        if not isinstance(accounts, dict):
            raise InputError("--accounts must hold a JSON object")
        years: tuple[FinancialYear, ...] = ()
        if (args.year_start is None) != (args.year_end is None):
            raise InputError("--year-start and --year-end go together")
        if args.year_start and args.year_end:
            years = (FinancialYear(0, args.year_start, args.year_end),)
        document = SieDocument(
            program=Program("fortnox-bridge", "0.1.0"),
            generated=Generated(date.today(), args.sign),
            company_name=args.company_name,
            org_number=OrgNumber(args.org_number) if args.org_number else None,
            financial_years=years,
            accounts=tuple(Account(str(k), str(v)) for k, v in accounts.items()),
        )
        result = write_4i(document, vouchers, checksum=args.checksum)
    except (OSError, ValueError) as error:
        print(f"sie write: {error}", file=sys.stderr)
        return 2
    for finding in result.findings:
        where = f"line {finding.line}" if finding.line is not None else "file"
        print(f"{finding.severity} {finding.code} {where}: {finding.message}", file=sys.stderr)
    if not result.ok:
        return 1
    try:
        args.output.write_bytes(result.data)
    except OSError as error:
        print(f"sie write: cannot write {args.output}: {error.strerror}", file=sys.stderr)
        return 2
    return 0
