"""The SIE 4I file target: the same vouchers as a file, for companies that import by file."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sie
from core.fortnox_api import CompanyInformation
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
            amount=Decimal(row.debit - row.credit).scaleb(-2),
            objects=tuple((dim, code) for dim, code in
                          ((_COST_CENTER_DIM, row.cost_center), (_PROJECT_DIM, row.project))
                          if code),
            text=row.description,
        )
        for row in voucher.rows
    )
    return sie.Voucher(series=series, number="", date=voucher.transaction_date, rows=rows,
                       text=voucher.description)
