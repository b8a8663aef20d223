"""The SIE 4I file target: the same vouchers as a file, for companies that import by file.

The file travels inside the answer, which ``core.voucher_export.answer`` bounds: a request is
refused up front, before any Fortnox call, when the vouchers' least size in the file
(``least_file_bytes``) already makes the answer too large, and else on the written file's
exact size.
"""

from __future__ import annotations

from datetime import datetime

import sie
from core.fortnox_api import CompanyInformation
from core.voucher_export.answer import require_answer_fits
from core.voucher_export.model import (
    ExportRequest,
    ExportResult,
    ExportVoucher,
    Outcome,
    VoucherResult,
)
from sie.writer import write_4i

#: SIE dimension numbers of Fortnox's cost centres and projects.
_COST_CENTER_DIM = "1"
_PROJECT_DIM = "6"
#: Bytes of a voucher's lines besides its series, text and rows (`#VER "" "" 20251231 ""`,
#: `{`, `}`, their line ends), and of a row besides its account, amount, objects and text
#: (`#TRANS `, ` {}`, ` `, the line end); each object adds ` 1 "code"` but the first its space.
_VOUCHER_FRAME = 30
_ROW_FRAME = 13


def sie_4i_file(
    request: ExportRequest, series: str, now: datetime, company: CompanyInformation | None
) -> ExportResult:
    """Writes the request's vouchers to a CP437 SIE 4I file; nothing is posted or recorded.

    The file names the Fortnox company (``#FNAMN``, ``#ORGNR``) when the tenant is connected, so
    the receiving program (or a person) can check it goes into the right books; otherwise it
    names the tenant.
    """
    document = sie.SieDocument(
        program=sie.Program("fortnox-bridge", "1"),
        generated=sie.Generated(now.date()),
        company_name=company.company_name if company else request.tenant,
        org_number=(sie.OrgNumber(company.organisation_number)
                    if company and company.organisation_number else None),
    )
    written = write_4i(document, [_sie_voucher(v, series) for v in request.vouchers])
    require_answer_fits(request, series, len(written.data), exact=True)
    return ExportResult(
        request_id=request.request_id,
        results=tuple(VoucherResult(v.external_id, Outcome.VALID, series=series,
                                    request_id=request.request_id) for v in request.vouchers),
        sie_file=written.data,
        sie_file_name=f"fortnox-bridge-{request.request_id}.si",
    )


def _sie_voucher(voucher: ExportVoucher, series: str) -> sie.Voucher:
    assert voucher.transaction_date is not None, "validated before"
    rows = tuple(
        sie.TransRow(
            kind=sie.RowKind.TRANS,
            account=str(row.account),
            ore=row.debit - row.credit,
            objects=tuple((dim, code) for dim, code in
                          ((_COST_CENTER_DIM, row.cost_center), (_PROJECT_DIM, row.project))
                          if code),
            text=row.description,
        )
        for row in voucher.rows
    )
    return sie.Voucher(series=series, number="", date=voucher.transaction_date, rows=rows,
                       text=voucher.description)


def least_file_bytes(request: ExportRequest, series: str) -> int:
    """At least how many bytes the request's vouchers take in the file, laid out as the writer
    does, without writing them: a text of ASCII characters counts in full (with the backslash
    of each quote), any other counts nothing (CP437 may drop a character of it)."""
    total = 0
    for voucher in request.vouchers:
        total += _VOUCHER_FRAME + _ascii_bytes(series) + _ascii_bytes(voucher.description)
        for row in voucher.rows:
            ore = row.debit - row.credit
            total += (_ROW_FRAME + len(str(row.account)) + len(str(abs(ore) // 100)) + 3
                      + (ore < 0))
            codes = [code for code in (row.cost_center, row.project) if code]
            total += sum(5 + _ascii_bytes(code) for code in codes) - 1 if codes else 0
            total += 6 + _ascii_bytes(row.description) if row.description else 0  # ` "" "text"`
    return total


def _ascii_bytes(text: str) -> int:
    """A text's least bytes in the file (see ``least_file_bytes``)."""
    return len(text) + text.count('"') if text.isascii() else 0
