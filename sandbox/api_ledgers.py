"""Customer and supplier ledgers: parties, invoices, payments, cost centres, projects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from starlette.responses import Response

from sandbox import errors
from sandbox.api_common import ApiContext, paginate
from sandbox.errors import FortnoxError
from sandbox.jsonout import FortnoxJSON, money, money_text
from sandbox.model import Invoice, Party, Payment, VoucherRef
from sandbox.pdf import render_pdf

CUSTOMER_FILTERS = ("cancelled", "fullypaid", "unpaid", "unpaidoverdue", "unbooked")
SUPPLIER_FILTERS = (*CUSTOMER_FILTERS, "pendingpayment", "authorizepending")


def _d(day: date) -> str:
    return day.isoformat()


def _nd(day: date | None) -> str | None:
    """An unset date is ``null`` (``FinalPayDate`` of an unpaid invoice, as recorded)."""
    return day.isoformat() if day else None


def _modified_since(ctx: ApiContext, items: list[Any]) -> list[Any]:
    since = ctx.lastmodified()
    if since is None:
        return items
    return [i for i in items if i.last_modified is not None and i.last_modified >= since]


def _path_int(ctx: ApiContext, name: str, missing: errors.ErrorKind) -> int:
    try:
        return int(ctx.request.path_params[name])
    except ValueError as exc:
        raise FortnoxError(missing) from exc


# -- parties -------------------------------------------------------------------------------
def _party_base(party: Party) -> dict[str, Any]:
    return {"Address1": party.address, "Address2": "", "City": party.city, "Email": party.email,
            "Name": party.name, "OrganisationNumber": party.organisation_number,
            "Phone": "", "ZipCode": party.zip_code}


def _single_party(item: dict[str, Any]) -> dict[str, Any]:
    """A list item as the single resource has it: ``Phone1``/``Phone2`` instead of ``Phone``,
    and unset address fields ``null`` where the list says ``""`` (as recorded)."""
    single = {k: v for k, v in item.items() if k != "Phone"}
    for key in ("Address1", "Address2", "City", "ZipCode"):
        single[key] = single[key] or None
    return {**single, "Phone1": None, "Phone2": None}


def _customer_item(ctx: ApiContext, c: Party) -> dict[str, Any]:
    return {"@url": ctx.url(f"customers/{c.number}"), **_party_base(c),
            "CustomerNumber": c.number}


def _supplier_item(ctx: ApiContext, s: Party) -> dict[str, Any]:
    """No ``PreDefinedAccount``: the model allows only a 4-digit account, and there is none."""
    return {"@url": ctx.url(f"suppliers/{s.number}"), **_party_base(s), "Active": s.active,
            "BG": "", "BIC": "", "BankAccountNumber": "", "CostCenter": "",
            "CountryCode": "SE" if s.currency == "SEK" else "DE", "Currency": s.currency,
            "DisablePaymentFile": False, "IBAN": "", "PG": "",
            "Project": "", "SupplierNumber": s.number, "TermsOfPayment": "30"}


async def customers(ctx: ApiContext) -> Response:
    """Customers, with ``filter=active|inactive``, ``customernumber`` and ``lastmodified``."""
    items = _modified_since(ctx, list(ctx.books.customers.values()))
    wanted = ctx.param("filter")
    if wanted in ("active", "inactive"):
        items = [c for c in items if c.active == (wanted == "active")]
    number = ctx.param("customernumber")
    if number:
        items = [c for c in items if c.number == number]
    return paginate(ctx, "Customers", items, lambda c: _customer_item(ctx, c))


async def customer(ctx: ApiContext) -> Response:
    """One customer."""
    found = ctx.books.customers.get(ctx.request.path_params["number"])
    if found is None:
        raise FortnoxError(errors.NOT_FOUND_CUSTOMER)
    return FortnoxJSON({"Customer": {
        **_single_party(_customer_item(ctx, found)), "Active": found.active,
        "CountryCode": "SE" if found.currency == "SEK" else "DE", "Currency": found.currency,
        "Type": "COMPANY", "VATType": "SEVAT" if found.currency == "SEK" else "EUVAT"}})


async def suppliers(ctx: ApiContext) -> Response:
    """Suppliers (no filters are declared for this list)."""
    return paginate(ctx, "Suppliers", list(ctx.books.suppliers.values()),
                    lambda s: _supplier_item(ctx, s))


async def supplier(ctx: ApiContext) -> Response:
    """One supplier."""
    found = ctx.books.suppliers.get(ctx.request.path_params["number"])
    if found is None:
        raise FortnoxError(errors.NOT_FOUND_SUPPLIER)
    return FortnoxJSON({"Supplier": {**_single_party(_supplier_item(ctx, found)),
                                     "VATType": "NORMAL"}})


# -- invoices ------------------------------------------------------------------------------
def current_balance(invoice: Invoice, today: date) -> int:
    """Fortnox's ``Balance``: what remains today (an invoice dated later is wholly open)."""
    return invoice.balance_at(max(today, invoice.invoice_date))


def final_pay_date(invoice: Invoice, today: date) -> str | None:
    """The date the invoice became fully paid, if it is (``null`` until then): its last
    payment or credit, else (nothing to pay) its own date, as recorded."""
    if invoice.cancelled or current_balance(invoice, today):
        return None
    settled = [p.payment_date for p in invoice.payments if p.payment_date <= today]
    if invoice.credit_date is not None and invoice.credit_date <= today:
        settled.append(invoice.credit_date)
    return _d(max(settled, default=invoice.invoice_date))


def _status_filter(invoices: list[Invoice], wanted: str | None, today: date) -> list[Invoice]:
    if wanted is None or wanted == "":
        return invoices
    checks: dict[str, Callable[[Invoice], bool]] = {
        "cancelled": lambda i: i.cancelled,
        "fullypaid": lambda i: not i.cancelled and current_balance(i, today) == 0,
        "unpaid": lambda i: not i.cancelled and current_balance(i, today) != 0,
        "unpaidoverdue": lambda i: (not i.cancelled and current_balance(i, today) != 0
                                    and i.due_date < today),
    }
    check = checks.get(wanted)
    return [i for i in invoices if check(i)] if check else []


def _dated(ctx: ApiContext, items: list[Invoice]) -> list[Invoice]:
    start, end = ctx.date_param("fromdate"), ctx.date_param("todate")
    return [i for i in items if (not start or i.invoice_date >= start)
            and (not end or i.invoice_date <= end)]


def _invoice_item(ctx: ApiContext, i: Invoice) -> dict[str, Any]:
    today = ctx.state.clock.today()
    c = ctx.books.customers[i.party_number]
    v = i.voucher
    return {
        "@url": ctx.url(f"invoices/{i.number}"), "Balance": money(current_balance(i, today)),
        "Booked": v is not None, "Cancelled": i.cancelled, "CostCenter": i.cost_center,
        "Currency": i.currency, "CurrencyRate": format(i.rate.normalize(), "f"),
        "CurrencyUnit": 1, "CustomerName": c.name, "CustomerNumber": c.number,
        "DocumentNumber": str(i.number),
        "DueDate": _d(i.due_date), "ExternalInvoiceReference1": "",
        "ExternalInvoiceReference2": "", "FinalPayDate": final_pay_date(i, today),
        "InvoiceDate": _d(i.invoice_date), "InvoiceType": "INVOICE", "NoxFinans": False,
        "OCR": i.ocr, "Project": i.project, "Sent": True, "TermsOfPayment": "30",
        "Total": money(i.total), **_voucher_ref(v), "WayOfDelivery": "",
    }


async def invoices(ctx: ApiContext) -> Response:
    """Customer invoices with ``filter``, ``fromdate``/``todate``, ``customernumber``,
    ``lastmodified``."""
    wanted = ctx.param("filter")
    if wanted and wanted not in CUSTOMER_FILTERS:
        raise FortnoxError(errors.INVALID_FILTER)
    items = _dated(ctx, _modified_since(ctx, list(ctx.books.invoices.values())))
    number = ctx.param("customernumber")
    if number:
        items = [i for i in items if i.party_number == number]
    items = _status_filter(items, wanted, ctx.state.clock.today())
    return paginate(ctx, "Invoices", items, lambda i: _invoice_item(ctx, i))


def _invoice(ctx: ApiContext) -> Invoice:
    found = ctx.books.invoices.get(_path_int(ctx, "number", errors.NOT_FOUND_INVOICE))
    if found is None:
        raise FortnoxError(errors.NOT_FOUND_INVOICE)
    return found


async def invoice(ctx: ApiContext) -> Response:
    """One customer invoice, with ``Credit`` (a string, as the spec types it) and the
    ``CreditInvoiceReference`` linking an invoice and its credit note."""
    i = _invoice(ctx)
    reference = i.credit_of if i.credit_of is not None else i.credited_by
    return FortnoxJSON({"Invoice": {
        **_invoice_item(ctx, i), "CurrencyRate": i.rate.normalize(),
        "Credit": "true" if i.credit_of is not None else "false",
        "CreditInvoiceReference": str(reference or 0),
        "OrganisationNumber": ctx.books.customers[i.party_number].organisation_number,
        "Net": money(i.total - i.vat), "TotalVAT": money(i.vat), "Gross": money(i.total),
        "TotalToPay": money(i.total), "RoundOff": 0, "AccountingMethod": "ACCRUAL",
    }})


async def invoice_pdf(ctx: ApiContext) -> Response:
    """``/preview`` and ``/print``: the invoice as a PDF."""
    i = _invoice(ctx)
    name = ctx.books.customers[i.party_number].name
    kind = "Kreditfaktura" if i.credit_of is not None else "Faktura"
    pdf = render_pdf(f"{kind} {i.number}", (
        f"{ctx.books.tenant.name} - {ctx.books.tenant.organisation_number}", f"Kund: {name}",
        f"Fakturadatum: {_d(i.invoice_date)}", f"Förfallodatum: {_d(i.due_date)}",
        f"Att betala: {money_text(i.total)} {i.currency}", f"OCR: {i.ocr}"))
    return Response(pdf, media_type="application/pdf")


def _voucher_ref(v: VoucherRef | None) -> dict[str, Any]:
    """Where a document is booked; all three ``null`` while it is not (as recorded)."""
    return {"VoucherNumber": v.number if v else None, "VoucherSeries": v.series if v else None,
            "VoucherYear": v.year_id if v else None}


# -- payments ------------------------------------------------------------------------------
def _payment_item(ctx: ApiContext, p: Payment, path: str, supplier: bool) -> dict[str, Any]:
    """Customer payments type ``Number`` as text and ``InvoiceNumber`` as int; supplier
    payments the other way round (as the spec does)."""
    return {
        "@url": ctx.url(f"{path}/{p.number}"), "Amount": money(p.amount_sek), "Booked": True,
        "Currency": p.currency, "CurrencyRate": p.rate.normalize(), "CurrencyUnit": 1,
        "InvoiceNumber": str(p.invoice_number) if supplier else p.invoice_number,
        "Number": p.number if supplier else str(p.number),
        "PaymentDate": _d(p.payment_date), "Source": "manual", "WriteOffExist": False,
    }


def _payment_detail(item: dict[str, Any], p: Payment, i: Invoice, party: Party
                    ) -> dict[str, Any]:
    detail = {key: value for key, value in item.items() if key != "WriteOffExist"}
    v = p.voucher
    return {**detail, "AmountCurrency": money(p.amount), "InvoiceDueDate": _d(i.due_date),
            "InvoiceOCR": i.ocr, "InvoiceTotal": money_text(i.total), "ModeOfPayment": "BG",
            **_voucher_ref(v), "WriteOffs": [],
            "Invoice" + ("CustomerName" if i.kind == "customer" else "SupplierName"): party.name,
            "Invoice" + ("CustomerNumber" if i.kind == "customer" else "SupplierNumber"):
                party.number}


def _payments(invoices: dict[int, Invoice]) -> list[tuple[Payment, Invoice]]:
    pairs = [(p, i) for i in invoices.values() for p in i.payments]
    return sorted(pairs, key=lambda pair: pair[0].number)


async def invoice_payments(ctx: ApiContext) -> Response:
    """Customer payments with ``invoicenumber`` and ``lastmodified``."""
    pairs = _payments(ctx.books.invoices)
    wanted = ctx.int_param("invoicenumber")
    since = ctx.lastmodified()
    items = [p for p, i in pairs if (wanted is None or i.number == wanted)
             and (since is None or (p.last_modified is not None and p.last_modified >= since))]
    return paginate(ctx, "InvoicePayments", items,
                    lambda p: _payment_item(ctx, p, "invoicepayments", False))


async def invoice_payment(ctx: ApiContext) -> Response:
    """One customer payment."""
    number = _path_int(ctx, "number", errors.NOT_FOUND_PAYMENT)
    for p, i in _payments(ctx.books.invoices):
        if p.number == number:
            party = ctx.books.customers[i.party_number]
            item = _payment_item(ctx, p, "invoicepayments", False)
            detail = _payment_detail(item, p, i, party)
            detail["ModeOfPaymentAccount"] = 1930
            return FortnoxJSON({"InvoicePayment": detail})
    raise FortnoxError(errors.NOT_FOUND_PAYMENT)


async def supplier_invoice_payments(ctx: ApiContext) -> Response:
    """Supplier payments (no filters are declared for this list)."""
    items = [p for p, _ in _payments(ctx.books.supplier_invoices)]
    return paginate(ctx, "SupplierInvoicePayments", items,
                    lambda p: _payment_item(ctx, p, "supplierinvoicepayments", True))


async def supplier_invoice_payment(ctx: ApiContext) -> Response:
    """One supplier payment."""
    number = _path_int(ctx, "number", errors.NOT_FOUND_PAYMENT)
    for p, i in _payments(ctx.books.supplier_invoices):
        if p.number == number:
            party = ctx.books.suppliers[i.party_number]
            item = _payment_item(ctx, p, "supplierinvoicepayments", True)
            return FortnoxJSON({"SupplierInvoicePayment": _payment_detail(item, p, i, party)})
    raise FortnoxError(errors.NOT_FOUND_PAYMENT)


# -- supplier invoices ---------------------------------------------------------------------
def _supplier_invoice_item(ctx: ApiContext, i: Invoice) -> dict[str, Any]:
    today = ctx.state.clock.today()
    s = ctx.books.suppliers[i.party_number]
    v = i.voucher
    return {
        "@url": ctx.url(f"supplierinvoices/{i.number}"), "AuthorizerName": "",
        "Balance": money_text(current_balance(i, today)), "Booked": v is not None,
        "Cancel": i.cancelled, "CostCenter": i.cost_center, "Credit": False,
        "Currency": i.currency, "CurrencyRate": format(i.rate.normalize(), "f"),
        "CurrencyUnit": 1, "DueDate": _d(i.due_date), "ExternalInvoiceNumber": "",
        "ExternalInvoiceSeries": "", "FinalPayDate": final_pay_date(i, today),
        "GivenNumber": str(i.number), "InvoiceDate": _d(i.invoice_date),
        "InvoiceNumber": i.external_number, "Project": i.project, "SupplierName": s.name,
        "SupplierNumber": s.number, "Total": money_text(i.total),
        "Vouchers": [{"Number": v.number, "ReferenceType": "SUPPLIERINVOICE",
                      "Series": v.series, "Year": v.year_id}] if v else [],
    }


async def supplier_invoices(ctx: ApiContext) -> Response:
    """Supplier invoices with ``filter`` (and, leniently, ``fromdate``/``todate``)."""
    wanted = ctx.param("filter")
    if wanted and wanted not in SUPPLIER_FILTERS:
        raise FortnoxError(errors.INVALID_FILTER)
    items = _dated(ctx, list(ctx.books.supplier_invoices.values()))
    items = _status_filter(items, wanted, ctx.state.clock.today())
    return paginate(ctx, "SupplierInvoices", items, lambda i: _supplier_invoice_item(ctx, i))


async def supplier_invoice(ctx: ApiContext) -> Response:
    """One supplier invoice (the single says ``Cancelled``, the list item ``Cancel``)."""
    found = ctx.books.supplier_invoices.get(
        _path_int(ctx, "number", errors.NOT_FOUND_SUPPLIER_INVOICE))
    if found is None:
        raise FortnoxError(errors.NOT_FOUND_SUPPLIER_INVOICE)
    item = {k: v for k, v in _supplier_invoice_item(ctx, found).items()
            if k not in ("Cancel", "AuthorizerName")}
    v = found.voucher
    return FortnoxJSON({"SupplierInvoice": {
        **item, "Cancelled": found.cancelled, "OCR": found.ocr, "VAT": money_text(found.vat),
        **_voucher_ref(v), "AccountingMethod": "ACCRUAL",
    }})


# -- dimensions ----------------------------------------------------------------------------
async def cost_centers(ctx: ApiContext) -> Response:
    """Cost centres (SIE dimension 1)."""
    return paginate(ctx, "CostCenters", list(ctx.books.cost_centers.values()), lambda c: {
        "@url": ctx.url(f"costcenters/{c.code}"), "Active": c.active, "Code": c.code,
        "Description": c.description, "Note": ""})


async def projects(ctx: ApiContext) -> Response:
    """Projects (SIE dimension 6)."""
    return paginate(ctx, "Projects", list(ctx.books.projects.values()), lambda p: {
        "@url": ctx.url(f"projects/{p.number}"), "Description":
        p.description, "EndDate": None, "ProjectLeader": None, "ProjectNumber": p.number,
        "StartDate": _nd(p.start_date), "Status": p.status})
