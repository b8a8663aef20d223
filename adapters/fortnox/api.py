"""The core's ``FortnoxApi`` over HTTP: one method per Fortnox resource the use cases need.

An answer that is not shaped as described (``parse.ShapeError``) fails the call with
``FORTNOX_ANSWER_MALFORMED``; a voucher's ``POST`` whose answer does not show the voucher
asked for has an unknown outcome, as if the answer had been lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import date
from typing import Any, TypeVar

from adapters.fortnox import parse
from adapters.fortnox.errors import malformed
from adapters.fortnox.streams import HttpByteStream
from adapters.fortnox.transport import Params, Transport
from core.errors import FortnoxScopeMissing
from core.fortnox_api import (
    Account,
    CompanyInformation,
    CostCenter,
    Customer,
    FileConnection,
    FileSource,
    FinancialYear,
    Invoice,
    InvoiceFilter,
    InvoicePayment,
    NewVoucher,
    Project,
    Proof,
    Supplier,
    SupplierInvoice,
    SupplierInvoicePayment,
    Voucher,
    VoucherSeries,
)

#: Fortnox's largest page.
PAGE_LIMIT = 500
#: ``Accept`` of the downloads: the SIE export (not JSON), invoice PDFs, any archived file.
SIE_ACCEPT = "application/octet-stream, text/plain;q=0.9"
PDF_ACCEPT = "application/pdf"
FILE_ACCEPT = "*/*"

T = TypeVar("T")


def scope_missing(scope: str, refused: FortnoxScopeMissing) -> FortnoxScopeMissing:
    """Fortnox's 403 on an endpoint that needs exactly ``scope``, naming it and what to do:
    Fortnox's answer does not say which scope was missing."""
    return FortnoxScopeMissing(
        f"The Fortnox connection lacks the scope {scope}; connect the tenant again (Connect) "
        "asking for it.", metadata={**refused.metadata, "scope": scope})


async def _scoped(scope: str, items: AsyncIterator[T]) -> AsyncIterator[T]:
    """``items``, with a missing-scope refusal naming ``scope``."""
    try:
        async for item in items:
            yield item
    except FortnoxScopeMissing as exc:
        raise scope_missing(scope, exc) from None


class FortnoxClient:
    """Implements ``core.fortnox_api.FortnoxApi``."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def _record(self, route: str, data: dict[str, Any], key: str,
                convert: Callable[[dict[str, Any]], T], *, write: bool = False) -> T:
        """The object under ``key`` of an answer from ``route``, converted."""
        try:
            return parse.record(data, key, convert)
        except parse.ShapeError as exc:
            raise malformed(self._t.template(route), str(exc), write=write) from None

    async def _pages(
        self,
        tenant: str,
        route: str,
        key: str,
        convert: Callable[[dict[str, Any]], T],
        deadline: float | None,
        params: Params | None = None,
        path: Params | None = None,
    ) -> AsyncIterator[T]:
        """Walks ``MetaInformation`` pages lazily: the next page only when this one is used."""
        page = 1
        while True:
            data = await self._t.get_json(
                tenant, route, path,
                params={**(params or {}), "limit": PAGE_LIMIT, "page": page},
                deadline=deadline,
            )
            try:
                items = parse.records(data, key, convert)
                meta: Mapping[str, Any] = data.get("MetaInformation") or {}
                pages = parse.integer(dict(meta), "@TotalPages") or 1
            except (parse.ShapeError, TypeError, ValueError) as exc:
                raise malformed(self._t.template(route), str(exc)[:200]) from None
            for item in items:
                yield item
            if page >= pages:
                return
            page += 1

    async def _all(self, iterator: AsyncIterator[T]) -> list[T]:
        return [item async for item in iterator]

    # -- company and years -------------------------------------------------------------
    async def company_information(
        self, tenant: str, *, deadline: float | None = None
    ) -> CompanyInformation:
        data = await self._t.get_json(tenant, "/companyinformation", deadline=deadline)
        return self._record("/companyinformation", data, "CompanyInformation",
                            parse.company_information)

    async def financial_years(
        self, tenant: str, *, deadline: float | None = None
    ) -> list[FinancialYear]:
        years = await self._all(self._pages(
            tenant, "/financialyears", "FinancialYears", parse.financial_year, deadline))
        return sorted(years, key=lambda y: y.from_date)

    async def financial_year_for_date(
        self, tenant: str, day: date, *, deadline: float | None = None
    ) -> FinancialYear | None:
        years = await self._all(self._pages(
            tenant, "/financialyears", "FinancialYears", parse.financial_year, deadline,
            params={"date": day.isoformat()}))
        return next((y for y in years if y.contains(day)), None)

    async def locked_period_end(
        self, tenant: str, *, deadline: float | None = None
    ) -> date | None:
        data = await self._t.get_json(tenant, "/settings/lockedperiod", deadline=deadline)
        return self._record("/settings/lockedperiod", data, "LockedPeriod",
                            lambda period: parse.day(period, "EndDate"))

    async def cost_centers(
        self, tenant: str, *, deadline: float | None = None
    ) -> list[CostCenter]:
        return await self._all(self._pages(
            tenant, "/costcenters", "CostCenters", parse.cost_center, deadline))

    async def projects(self, tenant: str, *, deadline: float | None = None) -> list[Project]:
        return await self._all(self._pages(
            tenant, "/projects", "Projects", parse.project, deadline))

    # -- bookkeeping -------------------------------------------------------------------
    async def accounts(
        self, tenant: str, financial_year_id: int, *, deadline: float | None = None
    ) -> list[Account]:
        return await self._all(self._pages(
            tenant, "/accounts", "Accounts", parse.account, deadline,
            params={"financialyear": financial_year_id}))

    async def voucher_series(
        self, tenant: str, financial_year_id: int, *, deadline: float | None = None
    ) -> list[VoucherSeries]:
        return await self._all(self._pages(
            tenant, "/voucherseries", "VoucherSeriesCollection", parse.voucher_series, deadline,
            params={"financialyear": financial_year_id}))

    async def voucher(
        self,
        tenant: str,
        financial_year_id: int,
        series: str,
        number: int,
        *,
        deadline: float | None = None,
    ) -> Voucher:
        data = await self._t.get_json(
            tenant, "/vouchers/{series}/{number}", {"series": series, "number": number},
            params={"financialyear": financial_year_id}, deadline=deadline)
        return self._record("/vouchers/{series}/{number}", data, "Voucher", parse.voucher)

    def vouchers(
        self,
        tenant: str,
        financial_year_id: int,
        *,
        series: str | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[Voucher]:
        params = {"financialyear": financial_year_id}
        if series is None:
            return self._pages(tenant, "/vouchers", "Vouchers", parse.voucher, deadline, params)
        return self._pages(tenant, "/vouchers/sublist/{series}", "Vouchers", parse.voucher,
                           deadline, params, {"series": series})

    async def find_vouchers(
        self,
        tenant: str,
        financial_year_id: int,
        marker: str,
        *,
        series: str | None = None,
        deadline: float | None = None,
    ) -> list[Voucher]:
        return [
            v async for v in self.vouchers(
                tenant, financial_year_id, series=series, deadline=deadline)
            if marker in v.description or marker in v.comments
        ]

    async def create_voucher(
        self,
        tenant: str,
        financial_year_id: int,
        voucher: NewVoucher,
        *,
        deadline: float | None = None,
        proof: Proof | None = None,
    ) -> Voucher:
        body = {"Voucher": {
            "Description": voucher.description,
            "Comments": voucher.comments,
            "TransactionDate": voucher.transaction_date.isoformat(),
            "VoucherSeries": voucher.series,
            "Year": financial_year_id,
            "VoucherRows": [
                {
                    "Account": row.account,
                    "Debit": row.debit,
                    "Credit": row.credit,
                    "Description": row.description,
                    "TransactionInformation": row.transaction_information,
                    "CostCenter": row.cost_center,
                    "Project": row.project,
                }
                for row in voucher.rows
            ],
        }}
        data = await self._t.post_json(
            tenant, "/vouchers", body, params={"financialyear": financial_year_id},
            deadline=deadline, proof=proof)
        booked = self._record("/vouchers", data, "Voucher", parse.voucher, write=True)
        if booked.series.upper() != voucher.series.upper() or booked.year != financial_year_id:
            raise malformed(self._t.template("/vouchers"),
                            "the answer shows a voucher of another series or year", write=True)
        return booked

    # -- ledgers -----------------------------------------------------------------------
    def customers(
        self, tenant: str, *, deadline: float | None = None
    ) -> AsyncIterator[Customer]:
        return self._pages(tenant, "/customers", "Customers", parse.customer, deadline)

    def suppliers(
        self, tenant: str, *, deadline: float | None = None
    ) -> AsyncIterator[Supplier]:
        return self._pages(tenant, "/suppliers", "Suppliers", parse.supplier, deadline)

    def invoices(
        self,
        tenant: str,
        *,
        filter: InvoiceFilter | None = None,
        from_date: date | None = None,
        to_date: date | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[Invoice]:
        params: dict[str, str | int] = {}
        if filter is not None:
            params["filter"] = filter.value
        if from_date is not None:
            params["fromdate"] = from_date.isoformat()
        if to_date is not None:
            params["todate"] = to_date.isoformat()
        return self._pages(tenant, "/invoices", "Invoices", parse.invoice, deadline, params)

    async def invoice(
        self, tenant: str, document_number: str, *, deadline: float | None = None
    ) -> Invoice:
        data = await self._t.get_json(
            tenant, "/invoices/{number}", {"number": document_number}, deadline=deadline)
        return self._record("/invoices/{number}", data, "Invoice", parse.invoice)

    def invoice_payments(
        self, tenant: str, *, deadline: float | None = None
    ) -> AsyncIterator[InvoicePayment]:
        return self._pages(tenant, "/invoicepayments", "InvoicePayments",
                           parse.invoice_payment, deadline)

    def supplier_invoices(
        self,
        tenant: str,
        *,
        filter: InvoiceFilter | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[SupplierInvoice]:
        params = {"filter": filter.value} if filter is not None else None
        return self._pages(tenant, "/supplierinvoices", "SupplierInvoices",
                           parse.supplier_invoice, deadline, params)

    async def supplier_invoice(
        self, tenant: str, given_number: str, *, deadline: float | None = None
    ) -> SupplierInvoice:
        data = await self._t.get_json(
            tenant, "/supplierinvoices/{number}", {"number": given_number}, deadline=deadline)
        return self._record("/supplierinvoices/{number}", data, "SupplierInvoice",
                            parse.supplier_invoice)

    def supplier_invoice_payments(
        self, tenant: str, *, deadline: float | None = None
    ) -> AsyncIterator[SupplierInvoicePayment]:
        return self._pages(tenant, "/supplierinvoicepayments", "SupplierInvoicePayments",
                           parse.supplier_invoice_payment, deadline)

    # -- files -------------------------------------------------------------------------
    def supplier_invoice_file_connections(
        self, tenant: str, *, deadline: float | None = None
    ) -> AsyncIterator[FileConnection]:
        return _scoped("connectfile", self._pages(
            tenant, "/supplierinvoicefileconnections", "SupplierInvoiceFileConnections",
            parse.file_connection, deadline))

    def voucher_file_connections(
        self,
        tenant: str,
        *,
        financial_year_id: int | None = None,
        series: str | None = None,
        number: int | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[FileConnection]:
        params: dict[str, str | int] = {}
        if financial_year_id is not None:
            params["voucheryear"] = financial_year_id
        if series is not None:
            params["voucherseries"] = series
        if number is not None:
            params["vouchernumber"] = number
        return _scoped("connectfile", self._pages(
            tenant, "/voucherfileconnections", "VoucherFileConnections",
            parse.file_connection, deadline, params))

    async def open_file(
        self,
        tenant: str,
        file_id: str,
        source: FileSource = FileSource.ARCHIVE,
        *,
        deadline: float | None = None,
    ) -> HttpByteStream:
        scope = "inbox" if source is FileSource.INBOX else "archive"
        try:
            if source is FileSource.CONNECTION:  # an ArchiveFileId: only ``?fileid=`` takes it
                return await self._t.open_stream(
                    tenant, "/archive", params={"fileid": file_id}, deadline=deadline,
                    default_name=file_id, accept=FILE_ACCEPT)
            return await self._t.open_stream(
                tenant, f"/{source.value}/{{id}}", {"id": file_id}, deadline=deadline,
                default_name=file_id, accept=FILE_ACCEPT)
        except FortnoxScopeMissing as exc:
            raise scope_missing(scope, exc) from None

    async def open_invoice_pdf(
        self, tenant: str, document_number: str, *, deadline: float | None = None
    ) -> HttpByteStream:
        return await self._t.open_stream(
            tenant, "/invoices/{number}/preview", {"number": document_number},
            deadline=deadline, default_name=f"invoice-{document_number}.pdf",
            accept=PDF_ACCEPT)

    async def open_sie_export(
        self,
        tenant: str,
        financial_year_id: int,
        sie_type: int = 4,
        *,
        deadline: float | None = None,
    ) -> HttpByteStream:
        return await self._t.open_stream(
            tenant, "/sie/{type}", {"type": sie_type},
            params={"financialyear": financial_year_id}, deadline=deadline,
            default_name=f"sie{sie_type}-{financial_year_id}.se", accept=SIE_ACCEPT,
            too_large_reason="SIE_TOO_LARGE")
