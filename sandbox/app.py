"""The ASGI application: OAuth under ``/oauth-v1/``, the API under ``/3/``, the Topics
WebSocket at ``/topics-v1``, control under ``/_sandbox/``."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from sandbox import (
    api_company,
    api_files,
    api_ledgers,
    api_sie,
    api_vouchers,
    control_routes,
    errors,
    oauth_routes,
    topics_routes,
)
from sandbox.api_common import JSON, Handler, endpoint, error_response
from sandbox.errors import FortnoxError
from sandbox.state import SandboxState
from sandbox.topics_socket import topics_endpoint

BOOKKEEPING = ("bookkeeping",)
PAYMENT = ("payment",)
CONNECTFILE = ("connectfile",)

#: What the download endpoints answer with (every other endpoint answers JSON).
DOWNLOADS: dict[str, tuple[str, ...]] = {
    "sie/{type}": ("application/octet-stream",),
    "invoices/{number}/preview": ("application/pdf",),
    "invoices/{number}/print": ("application/pdf",),
    # a folder, or a file by fileid (receipts are PDF or JPEG)
    "archive": ("application/json", "application/pdf", "image/jpeg"),
    "archive/{id}": ("application/pdf", "image/jpeg"),
    "inbox/{id}": ("application/pdf", "image/jpeg"),
}


def _api_table() -> list[tuple[str, Handler, Sequence[str], str]]:
    """(path below /3/, handler, scopes any of which suffices, method)."""
    return [
        ("companyinformation", api_company.company_information, ("companyinformation",), "GET"),
        ("financialyears", api_company.financial_years, BOOKKEEPING, "GET"),
        ("financialyears/{id:int}", api_company.financial_year, BOOKKEEPING, "GET"),
        ("settings/lockedperiod", api_company.locked_period, ("settings",), "GET"),
        ("accounts", api_vouchers.accounts, BOOKKEEPING, "GET"),
        ("accounts/{number}", api_vouchers.account, BOOKKEEPING, "GET"),
        ("voucherseries", api_vouchers.voucher_series, BOOKKEEPING, "GET"),
        ("voucherseries/{code}", api_vouchers.one_voucher_series, BOOKKEEPING, "GET"),
        ("vouchers", api_vouchers.vouchers, BOOKKEEPING, "GET"),
        ("vouchers", api_vouchers.create_voucher, BOOKKEEPING, "POST"),
        ("vouchers/sublist/{series}", api_vouchers.vouchers, BOOKKEEPING, "GET"),
        ("vouchers/{series}/{number}", api_vouchers.voucher, BOOKKEEPING, "GET"),
        ("sie/{type}", api_sie.sie, BOOKKEEPING, "GET"),
        ("costcenters", api_ledgers.cost_centers, ("costcenter",), "GET"),
        ("projects", api_ledgers.projects, ("project",), "GET"),
        ("customers", api_ledgers.customers, ("customer",), "GET"),
        ("customers/{number}", api_ledgers.customer, ("customer",), "GET"),
        ("suppliers", api_ledgers.suppliers, ("supplier",), "GET"),
        ("suppliers/{number}", api_ledgers.supplier, ("supplier",), "GET"),
        ("invoices", api_ledgers.invoices, ("invoice",), "GET"),
        ("invoices/{number}", api_ledgers.invoice, ("invoice",), "GET"),
        ("invoices/{number}/preview", api_ledgers.invoice_pdf, ("invoice",), "GET"),
        ("invoices/{number}/print", api_ledgers.invoice_pdf, ("invoice",), "GET"),
        ("invoicepayments", api_ledgers.invoice_payments, PAYMENT, "GET"),
        ("invoicepayments/{number}", api_ledgers.invoice_payment, PAYMENT, "GET"),
        ("supplierinvoices", api_ledgers.supplier_invoices, ("supplierinvoice",), "GET"),
        ("supplierinvoices/{number}", api_ledgers.supplier_invoice, ("supplierinvoice",), "GET"),
        ("supplierinvoicepayments", api_ledgers.supplier_invoice_payments, PAYMENT, "GET"),
        ("supplierinvoicepayments/{number}", api_ledgers.supplier_invoice_payment, PAYMENT,
         "GET"),
        ("archive", api_files.archive_folder, ("archive",), "GET"),
        ("archive/{id}", api_files.archive_file, ("archive",), "GET"),
        ("inbox", api_files.inbox_folder, ("inbox",), "GET"),
        ("inbox/{id}", api_files.inbox_file, ("inbox",), "GET"),
        ("supplierinvoicefileconnections", api_files.supplier_invoice_file_connections,
         CONNECTFILE, "GET"),
        ("supplierinvoicefileconnections/{id}", api_files.supplier_invoice_file_connection,
         CONNECTFILE, "GET"),
        ("voucherfileconnections", api_files.voucher_file_connections, CONNECTFILE, "GET"),
        ("voucherfileconnections/{id}", api_files.voucher_file_connection, CONNECTFILE, "GET"),
    ]


def create_app(state: SandboxState) -> Starlette:
    """The sandbox application over ``state``."""
    api_routes = [
        Route(f"/3/{path}", endpoint(state, scopes, handler, DOWNLOADS.get(path, JSON)),
              methods=[method])
        for path, handler, scopes, method in _api_table()
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/3/"):
            return error_response(FortnoxError(errors.NOT_FOUND_RESOURCE))
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return PlainTextResponse("Not Found", status_code=status)

    return Starlette(
        routes=[*oauth_routes.routes(state), *control_routes.routes(state),
                *topics_routes.routes(state), *api_routes,
                WebSocketRoute("/topics-v1", topics_endpoint(state))],
        exception_handlers={404: not_found},
    )
