"""`sie inspect FILE [--json]`: summary and findings of one SIE file, streamed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sie.controls import YearEndControls
from sie.findings import Finding
from sie.policy import ReadPolicy, Variant
from sie.reader import SieReader
from sie.stream import CHUNK_SIZE, policy_for_path
from sie.summary import ReadSummary


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `inspect` subcommand."""
    parser = subparsers.add_parser(
        "inspect",
        help="summarise and validate a SIE file",
        description="Stream FILE through the reader and print its summary and findings.",
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="SIE file to read")
    add_policy_arguments(parser)
    parser.add_argument(
        "--json", action="store_true", help="print exactly one JSON object instead of text"
    )
    parser.set_defaults(handler=run)


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags that build a `ReadPolicy` (shared with other reading subcommands)."""
    parser.add_argument(
        "--variant",
        choices=[v.value for v in Variant],
        help="treat a type-4 file as 4E or 4I (default: from the extension, .si = 4I)",
    )
    parser.add_argument(
        "--allow-unbalanced",
        action="store_true",
        help="report unbalanced vouchers as warnings instead of errors",
    )
    parser.add_argument(
        "--lenient-4i",
        action="store_true",
        help="report records forbidden in 4I as warnings instead of errors",
    )
    parser.add_argument(
        "--strict-mandatory",
        action="store_true",
        help="report missing mandatory records as errors instead of warnings",
    )


def policy_from_arguments(args: argparse.Namespace) -> ReadPolicy:
    """Build the reading policy from parsed flags and the file's extension."""
    policy = ReadPolicy(
        variant=Variant(args.variant) if args.variant else None,
        allow_unbalanced=args.allow_unbalanced,
        strict_4i=not args.lenient_4i,
        strict_mandatory=args.strict_mandatory,
    )
    return policy_for_path(args.file, policy)


def summary_json(summary: ReadSummary, findings: list[Finding]) -> dict[str, Any]:
    """The `inspect --json` object (its keys are a contract: scripts read them)."""
    return {
        "encoding": summary.encoding,
        "sie_type": summary.sie_type,
        "program": summary.program,
        "company_name": summary.company_name,
        "org_number": summary.org_number,
        "financial_years": [
            {"index": y.index, "start": y.start.isoformat(), "end": y.end.isoformat()}
            for y in summary.financial_years
        ],
        "accounts": summary.accounts,
        "vouchers": summary.vouchers,
        "transactions": summary.transactions,
        "checksum": str(summary.checksum),
        "unbalanced_vouchers": summary.unbalanced_vouchers,
        "findings": [f.as_dict() for f in findings],
    }


def _print_text(path: Path, summary: ReadSummary, findings: list[Finding]) -> None:
    years = ", ".join(
        f"{y.index}: {y.start.isoformat()}..{y.end.isoformat()}" for y in summary.financial_years
    )
    rows = [
        ("File", str(path)),
        ("Encoding", summary.encoding),
        ("SIE type", str(summary.sie_type) if summary.sie_type is not None else "-"),
        ("Program", f"{summary.program} {summary.program_version}".strip()),
        ("Company", summary.company_name),
        ("Org number", summary.org_number),
        ("Financial years", years or "-"),
        ("Accounts", str(summary.accounts)),
        ("Vouchers", str(summary.vouchers)),
        ("Transactions", str(summary.transactions)),
        ("Unbalanced", str(summary.unbalanced_vouchers)),
        ("Checksum", str(summary.checksum)),
        ("Findings", f"{summary.errors} error(s), {summary.warnings} warning(s)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    for finding in findings:
        where = f"line {finding.line}" if finding.line is not None else "file"
        print(f"  {finding.severity:<7} {finding.code:<26} {where:<11} {finding.message}")


def run(args: argparse.Namespace) -> int:
    """Inspect one file; 0 without error-level findings, 1 with, 2 if unreadable."""
    path: Path = args.file
    reader = SieReader(policy_from_arguments(args))
    controls = YearEndControls()  # control findings are listed with the reader's
    findings: list[Finding] = []
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
                events = reader.feed(chunk)
                controls.feed(events)
                findings.extend(e for e in events if isinstance(e, Finding))
    except OSError as error:
        print(f"sie inspect: cannot read {path}: {error.strerror}", file=sys.stderr)
        return 2
    events = reader.close()
    controls.feed(events)
    findings.extend(e for e in events if isinstance(e, Finding))
    findings.extend(f.as_finding() for f in controls.finish().findings)
    summary = reader.summary()
    if args.json:
        print(json.dumps(summary_json(summary, findings), ensure_ascii=False))
    else:
        _print_text(path, summary, findings)
    return 1 if summary.errors else 0
