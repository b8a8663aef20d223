"""A SIE file answer is never larger than a gRPC client takes: its least size is known from
the request before anything is written (exactly, for ASCII texts), and the written file's
exact size is checked too."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from core.errors import InvalidRequest
from core.voucher_export import sie_file
from core.voucher_export.model import ExportRequest, ExportRow, ExportVoucher, Target
from core.voucher_export.sie_file import least_file_bytes, sie_4i_file
from core.voucher_export.validation import check_request

NOW = datetime(2026, 1, 15, 12, 0)
DAY = date(2025, 12, 31)


def _request(*vouchers: ExportVoucher, series: str = "I") -> ExportRequest:
    return ExportRequest("acme", "5b0e3d1c-8a4f-4c2e-9d7b-1f6a2e3c4d5e", vouchers, series=series,
                         target=Target.SIE_4I_FILE)


def _voucher(ext: str, rows: tuple[ExportRow, ...], text: str = "Periodisering"
             ) -> ExportVoucher:
    return ExportVoucher(ext, DAY, text, rows)


def _body_bytes(request: ExportRequest) -> int:
    """The bytes the vouchers take in the written file (the file less its header)."""
    empty = ExportRequest(request.tenant, request.request_id, (), series=request.series,
                          target=Target.SIE_4I_FILE)
    return (len(sie_4i_file(request, request.series, NOW, None).sie_file)
            - len(sie_4i_file(empty, request.series, NOW, None).sie_file))


ASCII_ROWS = (
    ExportRow(6110, debit=1),
    ExportRow(6110, debit=123_456_789_012_345_67, cost_center="CC1"),
    ExportRow(7832, debit=99, project="P 1", description='rad "x" \\ slut'),
    ExportRow(1930, credit=123_456_789_012_345_67 + 100, cost_center="K", project="P2",
              description="tab\there"),
)


@pytest.mark.parametrize(("series", "text"), [("I", "Avskrivning"), ("AB", 'med "citat"')])
def test_the_least_size_of_ascii_vouchers_is_their_exact_size(series: str, text: str) -> None:
    request = _request(_voucher("a", ASCII_ROWS, text), _voucher("b", ASCII_ROWS[::-1]),
                       series=series)
    assert least_file_bytes(request, series) == _body_bytes(request)


@pytest.mark.parametrize("text", ["Årsbokslut", "€ 100", "zero\u200bwidth", "ﬃ ©"])
def test_other_texts_count_nothing_up_front_and_never_more_than_written(text: str) -> None:
    rows = (ExportRow(6110, debit=100, description=text, cost_center=text[:3]),
            ExportRow(1930, credit=100, project=text))
    request = _request(_voucher("a", rows, text))
    least = least_file_bytes(request, "I")
    assert least <= _body_bytes(request)
    ascii_twin = _request(_voucher("a", tuple(
        ExportRow(r.account, r.debit, r.credit, r.cost_center and "x", r.project and "x",
                  r.description and "x") for r in rows), "x"))
    assert least < least_file_bytes(ascii_twin, "I")


def test_a_file_growing_past_the_limit_as_written_is_refused_on_its_exact_size(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = tuple(ExportRow(6110, debit=100, description="Å" + "a" * 99) if n % 2 == 0
                 else ExportRow(1930, credit=100, description="Å" + "a" * 99) for n in range(100))
    request = _request(*(_voucher(f"v{n}", rows) for n in range(4)))
    written = _body_bytes(request)
    assert least_file_bytes(request, "I") < 40_000 < written
    monkeypatch.setattr(sie_file, "MAX_ANSWER_BYTES", 40_000)
    assert check_request(request) == []  # up front it may still fit
    with pytest.raises(InvalidRequest) as refused:
        sie_4i_file(request, "I", NOW, None)
    assert (refused.value.reason, refused.value.metadata["exact"]) == (
        "SIE_FILE_TOO_LARGE", "true")
    assert int(refused.value.metadata["size_bytes"]) > written


def test_a_request_whose_answer_cannot_fit_is_refused_before_anything_is_written() -> None:
    rows = tuple(ExportRow(6110, debit=100) if n % 2 == 0 else ExportRow(1930, credit=100)
                 for n in range(1000))
    request = _request(*(_voucher(f"v{n}", rows) for n in range(200)))
    with pytest.raises(InvalidRequest) as refused:
        check_request(request)
    error = refused.value
    assert (error.reason, error.metadata["exact"], error.metadata["rows"]) == (
        "SIE_FILE_TOO_LARGE", "false", "200000")
    assert int(error.metadata["size_bytes"]) > int(error.metadata["limit_bytes"]) == 4 * 1024**2
    assert [v.field for v in error.violations] == ["vouchers"]
    fits = _request(*(_voucher(f"v{n}", rows) for n in range(150)))
    assert check_request(fits) == []
