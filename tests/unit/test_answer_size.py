"""No ExportVouchers answer (nor a ListVoucherExports page) is larger than a gRPC client takes:
a SIE file's least size is known from the request before anything is written (exactly, for
ASCII texts) and the written file's exact size is checked too; a result's size is bounded by
its external id and series, its other texts cut in the answer."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, date, datetime

import pytest

from core.errors import InvalidRequest
from core.voucher_export import answer
from core.voucher_export.answer import MAX_ANSWER_BYTES, RESULT_TEXT_BYTES, result_bytes
from core.voucher_export.model import (
    ExportRequest,
    ExportRow,
    ExportVoucher,
    Outcome,
    Target,
    VoucherResult,
)
from core.voucher_export.sie_file import least_file_bytes, sie_4i_file
from core.voucher_export.validation import check_request
from server.bounds import PAGE_SIZES
from server.rpc_exports import _result
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb

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
    monkeypatch.setattr(answer, "MAX_ANSWER_BYTES", 40_000)
    assert check_request(request) == []  # up front it may still fit
    with pytest.raises(InvalidRequest) as refused:
        sie_4i_file(request, "I", NOW, None)
    assert (refused.value.reason, refused.value.metadata["exact"]) == (
        "ANSWER_TOO_LARGE", "true")
    assert int(refused.value.metadata["size_bytes"]) > written


def test_a_request_whose_answer_cannot_fit_is_refused_before_anything_is_written() -> None:
    rows = tuple(ExportRow(6110, debit=100) if n % 2 == 0 else ExportRow(1930, credit=100)
                 for n in range(1000))
    request = _request(*(_voucher(f"v{n}", rows) for n in range(200)))
    with pytest.raises(InvalidRequest) as refused:
        check_request(request)
    error = refused.value
    assert (error.reason, error.metadata["exact"], error.metadata["rows"]) == (
        "ANSWER_TOO_LARGE", "false", "200000")
    assert int(error.metadata["size_bytes"]) > int(error.metadata["limit_bytes"]) == 4 * 1024**2
    assert [v.field for v in error.violations] == ["vouchers"]
    fits = _request(*(_voucher(f"v{n}", rows) for n in range(150)))
    assert check_request(fits) == []


WIDE = "\U0001f600"  # four bytes of UTF-8
REQUEST_ID = "urn:uuid:5b0e3d1c-8a4f-4c2e-9d7b-1f6a2e3c4d5e" + "0" * 19  # 64 characters


def _worst_result(external_id: str, series: str) -> VoucherResult:
    """A refused voucher's result with every text as long as anything lets it be."""
    return VoucherResult(
        external_id, Outcome.REJECTED, series=series, number=2**62, financial_year_id=2**62,
        reason="R" * 500, message=WIDE * 500, fortnox_code="9" * 500,
        fortnox_message=WIDE * 300, exported_at=datetime(9999, 12, 31, 23, 59, 59, 999999, UTC),
        request_id=REQUEST_ID)


@pytest.mark.parametrize(("external_id", "series"), [("a", "I"), (WIDE * 200, WIDE * 10)])
def test_a_result_never_takes_more_than_its_share_of_the_answer(external_id: str, series: str
                                                                ) -> None:
    one = pb.ExportVouchersResponse(results=[_result(_worst_result(external_id, series))])
    assert one.ByteSize() <= result_bytes(external_id, series, Target.FORTNOX_API)


def test_every_text_of_a_result_is_bounded_and_reaches_the_answer() -> None:
    """A text a result gains needs a bound in ``RESULT_TEXT_BYTES`` (the answer's converter
    cuts it there) unless it comes from the request, and every field reaches the answer."""
    texts = {f.name for f in fields(VoucherResult) if f.type == "str"}
    assert texts - set(RESULT_TEXT_BYTES) == {"external_id", "series", "request_id"}
    answered = _result(_worst_result("a", "I"))
    assert {f.name for f, _ in answered.ListFields()} == {
        {"series": "voucher_series", "number": "voucher_number"}.get(f.name, f.name)
        for f in fields(VoucherResult)}


def test_five_thousand_vouchers_with_200_character_ids_fit_and_wide_ids_do_not() -> None:
    rows = (ExportRow(6110, debit=100), ExportRow(1930, credit=100))
    longest = _request(*(_voucher(f"{n:05d}" + "x" * 195, rows) for n in range(5000)))
    assert check_request(ExportRequest(longest.tenant, longest.request_id, longest.vouchers)) == []
    wide = tuple(_voucher(f"{n:05d}" + WIDE * 195, rows) for n in range(4000))
    with pytest.raises(InvalidRequest) as refused:
        check_request(ExportRequest("acme", REQUEST_ID, wide))
    assert (refused.value.reason, refused.value.metadata["target"]) == (
        "ANSWER_TOO_LARGE", "fortnox_api")


def test_a_full_page_of_voucher_exports_fits_in_an_answer() -> None:
    entry = v_pb.VoucherExport(  # as ListVoucherExports builds it, requested_by at its bound
        external_id=WIDE * 200, request_id=REQUEST_ID,
        result=_result(_worst_result(WIDE * 200, WIDE * 10)), requested_by="r" * 200)
    most = PAGE_SIZES["ListVoucherExportsRequest"].most
    page = pb.ListVoucherExportsResponse(exports=[entry] * most, next_page_token="t" * 512)
    assert page.ByteSize() <= MAX_ANSWER_BYTES
