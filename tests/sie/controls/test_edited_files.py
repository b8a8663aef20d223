"""Files edited on purpose: each change must be named by account, year, line and amounts.

The base is the project's checksummed 4E fixture (three vouchers, CRLF), whose controls
pass (see test_corpus); the line numbers below are that file's.
"""

from __future__ import annotations

from decimal import Decimal

from sie import ControlFinding, read_controls
from sie.findings import Finding
from sie.stream import iter_events
from tests.harness.sie_files import FIXTURES

SAMPLE = FIXTURES / "sie4e_cp437_crlf_ksumma.se"


def _edited(changes: dict[int, tuple[bytes, bytes]]) -> bytes:
    """The sample with line N's `old` replaced by `new` (asserting `old` is there)."""
    lines = SAMPLE.read_bytes().split(b"\r\n")
    for number, (old, new) in changes.items():
        assert lines[number - 1] == old, lines[number - 1]
        lines[number - 1] = new
    return b"\r\n".join(lines)


def _by_code(findings: tuple[ControlFinding, ...]) -> dict[str, ControlFinding]:
    codes = [str(f.code) for f in findings]
    assert len(codes) == len(set(codes)), codes
    return {str(f.code): f for f in findings}


def test_the_unedited_sample_passes() -> None:
    result = read_controls(SAMPLE)
    assert result.findings == ()
    year = result.year(0)
    assert year is not None and year.vouchers == 3 and year.passed


def test_changed_ub_is_a_closing_mismatch_on_its_line() -> None:
    data = _edited({26: (b"#UB 0 1930 8000.00", b"#UB 0 1930 8100.00")})
    found = _by_code(read_controls(data).findings)
    assert set(found) == {"CLOSING_BALANCE_MISMATCH", "STATED_FIGURES_INCONSISTENT"}
    closing = found["CLOSING_BALANCE_MISMATCH"]
    assert (closing.account, closing.year, closing.line) == ("1930", 0, 26)
    assert (closing.expected, closing.found) == (Decimal("8000.00"), Decimal("8100.00"))
    stated = found["STATED_FIGURES_INCONSISTENT"]
    assert stated.year == 0 and stated.found - stated.expected == Decimal(100)


def test_changed_ib_breaks_closing_continuity_and_the_opening_sum() -> None:
    data = _edited({23: (b"#IB 0 1930 1000.00", b"#IB 0 1930 1100.00")})
    found = _by_code(read_controls(data).findings)
    assert set(found) == {
        "CLOSING_BALANCE_MISMATCH",
        "OPENING_NOT_PREVIOUS_CLOSING",
        "OPENING_BALANCE_SHEET_UNBALANCED",
        "STATED_FIGURES_INCONSISTENT",
    }
    closing = found["CLOSING_BALANCE_MISMATCH"]
    assert (closing.account, closing.year, closing.line) == ("1930", 0, 26)
    assert (closing.expected, closing.found) == (Decimal("8100.00"), Decimal("8000.00"))
    opening = found["OPENING_NOT_PREVIOUS_CLOSING"]
    assert (opening.account, opening.year, opening.line) == ("1930", 0, 23)
    assert (opening.expected, opening.found) == (Decimal("1000.00"), Decimal("1100.00"))
    assert opening.differences == ()  # a cash account: no pattern explains it
    unbalanced = found["OPENING_BALANCE_SHEET_UNBALANCED"]
    assert (unbalanced.year, unbalanced.found) == (0, Decimal("100.00"))


def test_changed_trans_pair_stays_balanced_but_both_accounts_disagree() -> None:
    data = _edited(
        {
            33: (b"   #TRANS 1510 {} 10000.00", b"   #TRANS 1510 {} 10100.00"),
            35: (b"   #TRANS 2611 {} -2000.00", b"   #TRANS 2611 {} -2100.00"),
        }
    )
    reader_codes = {e.code for e in iter_events(data) if isinstance(e, Finding)}
    assert "VOUCHER_UNBALANCED" not in reader_codes  # only the controls can see this
    findings = read_controls(data).findings
    got = {(f.code, f.account, f.year, f.line, f.found - f.expected) for f in findings}
    assert got == {
        ("CLOSING_BALANCE_MISMATCH", "1510", 0, 25, Decimal(-100)),
        ("CLOSING_BALANCE_MISMATCH", "2611", 0, 28, Decimal(100)),
    }
