"""`sie balances FILE [--year N] [--json]`: one year's trial balance and control findings."""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from pathlib import Path

from sie.cli_inspect import add_policy_arguments, policy_from_arguments
from sie.controls import ControlsResult, TrialBalanceRow, YearControls, YearEndControls
from sie.controls.model import money
from sie.findings import Finding, Severity
from sie.reader import SieReader
from sie.records import Event
from sie.stream import CHUNK_SIZE

_HEADERS = ("account", "name", "opening", "movement", "closing", "stated")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `balances` subcommand."""
    parser = subparsers.add_parser(
        "balances",
        help="trial balance of one year with the year-end controls",
        description=(
            "Stream FILE once; per account print opening (#IB), movement (sum of #TRANS),"
            " closing and the stated #UB (balance accounts) or #RES (result accounts),"
            " then the control findings."
        ),
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="SIE file to read")
    parser.add_argument(
        "--year", type=int, default=0, metavar="N", help="year index: 0 current (default), -1, ..."
    )
    add_policy_arguments(parser)
    parser.add_argument(
        "--json", action="store_true", help="print exactly one JSON object instead of a table"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the year's trial balance; exit codes as for `sie inspect`."""
    path: Path = args.file
    reader = SieReader(policy_from_arguments(args))
    controls = YearEndControls()
    findings: list[Finding] = []
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
                _consume(reader.feed(chunk), controls, findings)
    except OSError as error:
        print(f"sie balances: cannot read {path}: {error.strerror}", file=sys.stderr)
        return 2
    _consume(reader.close(), controls, findings)
    result: ControlsResult = controls.finish()
    year = result.year(args.year)
    if year is None:
        known = ", ".join(str(y.index) for y in result.years) or "none"
        print(f"sie balances: {path} has no year {args.year} (years: {known})", file=sys.stderr)
        return 2
    if args.json:
        document = {
            "year": year.index,
            "accounts": [row.as_dict() for row in year.rows],
            "findings": [f.as_dict() for f in findings] + [f.as_dict() for f in year.findings],
        }
        print(json.dumps(document, ensure_ascii=False))
    else:
        _print_table(year, findings)
    return 1 if any(f.severity is Severity.ERROR for f in findings) else 0


def _consume(events: list[Event], controls: YearEndControls, findings: list[Finding]) -> None:
    for event in events:
        if isinstance(event, Finding):
            findings.append(event)
        else:
            controls.observe(event)


def _cells(row: TrialBalanceRow) -> tuple[str, ...]:
    stated = row.stated_result if row.result else row.stated_closing
    amounts = (row.opening, row.movement, row.closing, stated)
    return (row.account, row.name, *(money(a) or "-" for a in amounts))


def _width(text: str) -> int:
    """Display width: combining marks (a decomposed å) take no column."""
    return sum(not unicodedata.combining(c) for c in text)


def _print_table(year: YearControls, findings: list[Finding]) -> None:
    span = year.financial_year
    dates = f" {span.start.isoformat()}..{span.end.isoformat()}" if span else ""
    print(f"Year {year.index}{dates}: {len(year.rows)} account(s), {year.vouchers} voucher(s)")
    table = [_HEADERS, *(_cells(r) for r in year.rows)]
    widths = [max(_width(line[i]) for line in table) for i in range(len(_HEADERS))]
    flagged = {f.account for f in year.findings} | {
        d.account for f in year.findings for d in f.differences
    }
    for number, line in enumerate(table):
        cells = [
            text + " " * (widths[i] - _width(text))
            if i < 2
            else " " * (widths[i] - _width(text)) + text
            for i, text in enumerate(line)
        ]
        mark = "  !" if number and line[0] in flagged else ""
        print("  ".join(cells).rstrip() + mark)
    if findings or year.findings:
        print()
    for finding in [*findings, *(f.as_finding() for f in year.findings)]:
        where = f"line {finding.line}" if finding.line is not None else "file"
        print(f"  {finding.severity:<7} {finding.code:<32} {where:<11} {finding.message}")
