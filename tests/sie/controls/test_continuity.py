"""Opening versus previous closing: known patterns give one explained note, the rest a warning
per account; the same check across the one-year files of an import; type 1 files."""

from __future__ import annotations

from decimal import Decimal

from sie import ControlsResult, cross_year_findings, read_controls

HEAD = "#FLAGGA 0\n#SIETYP {type}\n#RAR 0 {y}0101 {y}1231\n#RAR -1 {p}0101 {p}1231\n"


def _file(body: str, sie_type: int = 1, year: int = 2024) -> ControlsResult:
    text = HEAD.format(type=sie_type, y=year, p=year - 1) + body
    return read_controls(text.encode("cp437"))


def _opening_notes(result: ControlsResult) -> list[tuple[str | None, set[str]]]:
    return [
        (f.account, {d.account for d in f.differences})
        for f in result.findings
        if f.code == "OPENING_NOT_PREVIOUS_CLOSING"
    ]


def test_result_moved_from_2099_to_retained_earnings_is_one_note() -> None:
    body = (
        "#UB -1 1930 500.00\n#UB -1 2091 -300.00\n#UB -1 2099 -200.00\n"
        "#IB 0 1930 500.00\n#IB 0 2091 -500.00\n"
    )
    notes = _opening_notes(_file(body))
    assert notes == [(None, {"2091", "2099"})]
    (finding,) = _file(body).findings
    assert "moved to equity" in finding.message and finding.line == 7


def test_vat_settled_at_opening_with_rounding_is_explained() -> None:
    body = (
        "#UB -1 1930 1000.00\n#UB -1 2611 -250.40\n#UB -1 2641 50.00\n#UB -1 2650 0\n"
        "#UB -1 2091 -799.60\n"
        "#IB 0 1930 1000.00\n#IB 0 2650 -200.00\n#IB 0 2091 -799.60\n#IB 0 3740 -0.40\n"
    )
    result = _file(body)
    notes = _opening_notes(result)
    assert notes == [(None, {"2611", "2641", "2650", "3740"})]
    (note,) = [f for f in result.findings if f.code == "OPENING_NOT_PREVIOUS_CLOSING"]
    assert "VAT accounts settled at opening, rounded by 0.40" in note.message
    assert "result accounts carried in #IB" in note.message


def test_unexplained_differences_get_one_warning_each() -> None:
    body = (
        "#UB -1 1930 500.00\n#UB -1 2091 -500.00\n"
        "#IB 0 1930 400.00\n#IB 0 1910 100.00\n#IB 0 2091 -500.00\n"
    )
    found = {
        (f.account, f.expected, f.found, f.line)
        for f in _file(body).findings
        if f.code == "OPENING_NOT_PREVIOUS_CLOSING"
    }
    assert found == {
        ("1930", Decimal("500.00"), Decimal("400.00"), 7),
        ("1910", Decimal(0), Decimal("100.00"), 8),
    }


def test_type1_file_checks_only_the_stated_figures() -> None:
    body = "#IB 0 1930 100.00\n#IB 0 2091 -100.00\n#UB 0 1930 150.00\n#UB 0 2091 -100.00\n"
    body += "#RES 0 3010 -60.00\n"  # 150 - 100 - 60 = -10: the movements cannot have balanced
    result = _file(body)
    assert [(f.code, f.year, f.expected, f.found) for f in result.findings] == [
        ("STATED_FIGURES_INCONSISTENT", 0, Decimal(0), Decimal("-10.00"))
    ]
    year = result.year(0)
    assert year is not None and all(r.movement is None for r in year.rows)


def test_cross_file_opening_against_previous_file_closing() -> None:
    older = _file("#IB 0 1930 0\n#UB 0 1930 900.00\n#UB 0 2099 -900.00\n", year=2023)
    newer = _file("#IB 0 1930 800.00\n#IB 0 2091 -900.00\n#IB 0 1910 100.00\n", year=2024)
    findings = cross_year_findings([older, newer])
    singles = {(f.account, f.expected, f.found) for f in findings if not f.differences}
    notes = [{d.account for d in f.differences} for f in findings if f.differences]
    assert singles == {
        ("1930", Decimal("900.00"), Decimal("800.00")),
        ("1910", Decimal(0), Decimal("100.00")),
    }
    assert notes == [{"2091", "2099"}]
    assert all("2023-01-01..2023-12-31" in f.message for f in findings)
    gap = _file("#IB 0 1930 1.00\n", year=2026)
    assert cross_year_findings([older, gap]) == []  # not consecutive years: not compared
