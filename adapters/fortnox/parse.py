"""Fortnox JSON to the core's records, tolerant of the spec's quirks.

Amounts come as numbers or strings (supplier invoices), empty dates and enums as ``""``,
ids as numbers or strings; money is parsed into ``Decimal`` from the exact JSON text.
Anything else (a ``null`` where a record belongs, a required field missing, an object where
a number or text belongs, an amount that is no finite number) is a ``ShapeError`` naming
where it was found, never a record read half-right.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from core.fortnox_api import (
    Account,
    CompanyInformation,
    CostCenter,
    Customer,
    FileConnection,
    FinancialYear,
    Invoice,
    InvoicePayment,
    Project,
    Supplier,
    SupplierInvoice,
    SupplierInvoicePayment,
    Voucher,
    VoucherRow,
    VoucherSeries,
)

PaymentT = TypeVar("PaymentT", InvoicePayment, SupplierInvoicePayment)
T = TypeVar("T")

Json = dict[str, Any]


class ShapeError(ValueError):
    """An answer that is not shaped as Fortnox's API describes; the message says where."""


def record(data: Json, key: str, convert: Callable[[Json], T]) -> T:
    """The object under ``key``, converted."""
    value = data.get(key)
    if not isinstance(value, dict):
        raise ShapeError(f"{key} is {_kind(value)}, not an object")
    return _converted(key, convert, value)


def records(data: Json, key: str, convert: Callable[[Json], T]) -> list[T]:
    """The list of objects under ``key``, each converted."""
    value = data.get(key)
    if not isinstance(value, list):
        raise ShapeError(f"{key} is {_kind(value)}, not a list")
    found = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise ShapeError(f"{key}[{index}] is {_kind(item)}, not an object")
        found.append(_converted(f"{key}[{index}]", convert, item))
    return found


def _converted(where: str, convert: Callable[[Json], T], item: Json) -> T:
    try:
        return convert(item)
    except ShapeError as exc:
        raise ShapeError(f"{where}: {exc}") from None
    except KeyError as exc:
        raise ShapeError(f"{where}: {exc.args[0]} is missing") from None
    except (ValueError, TypeError, AttributeError, ArithmeticError) as exc:
        raise ShapeError(f"{where}: {exc}"[:200]) from None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number")


def _scalar(data: Json, key: str) -> Any:
    """A field that must be a JSON scalar (text, number, boolean) or null."""
    value = data.get(key)
    if isinstance(value, dict | list):
        raise ShapeError(f"{key} is {_kind(value)}")
    return value


def text(data: Json, key: str) -> str:
    """A string field; missing or null is ``""``."""
    value = _scalar(data, key)
    return "" if value is None else str(value)


def reference(data: Json, key: str) -> str:
    """A document number pointing elsewhere; Fortnox's ``0`` for "none" becomes ``""``."""
    value = text(data, key)
    return "" if value.strip("0") == "" else value


def money(data: Json, key: str) -> Decimal:
    """An amount (number or string); missing is zero."""
    return optional_money(data, key) or Decimal(0)


def optional_money(data: Json, key: str) -> Decimal | None:
    """An amount, or ``None`` when missing or empty."""
    value = _scalar(data, key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ShapeError(f"{key} is a boolean, not an amount")
    try:
        amount = Decimal(str(value).replace(",", "."))
    except InvalidOperation as exc:
        raise ShapeError(f"{key}: not an amount") from exc
    if not amount.is_finite():
        raise ShapeError(f"{key}: not a finite amount")
    return amount


def day(data: Json, key: str) -> date | None:
    """A ``YYYY-MM-DD`` date; ``""`` or missing is ``None``."""
    value = _scalar(data, key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ShapeError(f"{key} is {_kind(value)}, not a date")
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise ShapeError(f"{key}: not a date") from exc


def integer(data: Json, key: str) -> int | None:
    """An integer given as number or string; ``""`` or missing is ``None``."""
    value = _scalar(data, key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ShapeError(f"{key} is {_kind(value)}, not a whole number")
    try:
        return int(value)
    except ValueError as exc:
        raise ShapeError(f"{key}: not a whole number") from exc


def required_integer(data: Json, key: str) -> int:
    """An integer that must be there."""
    value = integer(data, key)
    if value is None:
        raise ShapeError(f"{key} is missing")
    return value


def flag(data: Json, key: str) -> bool | None:
    """A boolean (also ``"true"``/``"false"`` strings); missing is ``None``."""
    value = _scalar(data, key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def company_information(data: Json) -> CompanyInformation:
    """``CompanyInformation`` (note ``OrganizationNumber`` with a z)."""
    return CompanyInformation(
        company_name=text(data, "CompanyName"),
        organisation_number=text(data, "OrganizationNumber"),
        database_number=integer(data, "DatabaseNumber"),
        address=text(data, "Address"),
        zip_code=text(data, "ZipCode"),
        city=text(data, "City"),
        country_code=text(data, "CountryCode"),
    )


def financial_year(data: Json) -> FinancialYear:
    """A ``FinancialYears[]`` item or ``FinancialYear``."""
    start, end = day(data, "FromDate"), day(data, "ToDate")
    if start is None or end is None:
        raise ValueError("financial year without dates")
    return FinancialYear(
        id=required_integer(data, "Id"),
        from_date=start,
        to_date=end,
        account_chart_type=text(data, "AccountChartType"),
        accounting_method=text(data, "AccountingMethod"),
    )


def account(data: Json) -> Account:
    """An ``Accounts[]`` item or ``Account``."""
    return Account(
        number=required_integer(data, "Number"),
        description=text(data, "Description"),
        active=flag(data, "Active") is not False,
        balance_brought_forward=money(data, "BalanceBroughtForward"),
        balance_carried_forward=optional_money(data, "BalanceCarriedForward"),
        sru=integer(data, "SRU"),
        vat_code=text(data, "VATCode"),
        year=integer(data, "Year"),
        cost_center_settings=text(data, "CostCenterSettings").upper() or "ALLOWED",
        project_settings=text(data, "ProjectSettings").upper() or "ALLOWED",
    )


def voucher_series(data: Json) -> VoucherSeries:
    """A ``VoucherSeriesCollection[]`` item or ``VoucherSeries``."""
    return VoucherSeries(
        code=text(data, "Code"),
        description=text(data, "Description"),
        manual=bool(flag(data, "Manual")),
        year=integer(data, "Year"),
        next_voucher_number=integer(data, "NextVoucherNumber"),
    )


def cost_center(data: Json) -> CostCenter:
    """A ``CostCenters[]`` item."""
    return CostCenter(code=text(data, "Code"), description=text(data, "Description"),
                      active=flag(data, "Active") is not False)


def project(data: Json) -> Project:
    """A ``Projects[]`` item."""
    return Project(number=text(data, "ProjectNumber"), description=text(data, "Description"),
                   status=text(data, "Status"))


def voucher_row(data: Json) -> VoucherRow:
    """A ``VoucherRows[]`` item."""
    return VoucherRow(
        account=required_integer(data, "Account"),
        debit=money(data, "Debit"),
        credit=money(data, "Credit"),
        description=text(data, "Description"),
        transaction_information=text(data, "TransactionInformation"),
        cost_center=text(data, "CostCenter"),
        project=text(data, "Project"),
        removed=bool(flag(data, "Removed")),
    )


def voucher(data: Json) -> Voucher:
    """A ``Vouchers[]`` item (no rows) or ``Voucher`` (with rows)."""
    return Voucher(
        series=text(data, "VoucherSeries"),
        number=required_integer(data, "VoucherNumber"),
        year=required_integer(data, "Year"),
        transaction_date=day(data, "TransactionDate"),
        description=text(data, "Description"),
        comments=text(data, "Comments"),
        reference_number=text(data, "ReferenceNumber"),
        reference_type=text(data, "ReferenceType"),
        rows=tuple(records(data, "VoucherRows", voucher_row)) if data.get("VoucherRows")
        is not None else (),
    )


def customer(data: Json) -> Customer:
    """A ``Customers[]`` item or ``Customer``."""
    return Customer(
        customer_number=text(data, "CustomerNumber"),
        name=text(data, "Name"),
        organisation_number=text(data, "OrganisationNumber"),
        active=flag(data, "Active"),
        currency=text(data, "Currency"),
    )


def supplier(data: Json) -> Supplier:
    """A ``Suppliers[]`` item or ``Supplier``."""
    return Supplier(
        supplier_number=text(data, "SupplierNumber"),
        name=text(data, "Name"),
        organisation_number=text(data, "OrganisationNumber"),
        active=flag(data, "Active"),
        currency=text(data, "Currency"),
    )


def _rate(data: Json) -> Decimal:
    return optional_money(data, "CurrencyRate") or Decimal(1)


def invoice(data: Json) -> Invoice:
    """An ``Invoices[]`` item or ``Invoice``."""
    return Invoice(
        document_number=text(data, "DocumentNumber"),
        customer_number=text(data, "CustomerNumber"),
        customer_name=text(data, "CustomerName"),
        invoice_date=day(data, "InvoiceDate"),
        due_date=day(data, "DueDate"),
        final_pay_date=day(data, "FinalPayDate"),
        total=money(data, "Total"),
        balance=money(data, "Balance"),
        currency=text(data, "Currency") or "SEK",
        currency_rate=_rate(data),
        booked=bool(flag(data, "Booked")),
        cancelled=bool(flag(data, "Cancelled")),
        invoice_type=text(data, "InvoiceType"),
        ocr=text(data, "OCR"),
        credit=flag(data, "Credit"),
        credit_invoice_reference=reference(data, "CreditInvoiceReference"),
        organisation_number=text(data, "OrganisationNumber"),
    )


def invoice_payment(data: Json) -> InvoicePayment:
    """An ``InvoicePayments[]`` item or ``InvoicePayment``."""
    return _payment(data, InvoicePayment)


def _payment(data: Json, kind: Callable[..., PaymentT]) -> PaymentT:
    """Customer and supplier invoice payments have the same fields."""
    return kind(
        number=text(data, "Number"),
        invoice_number=text(data, "InvoiceNumber"),
        amount=money(data, "Amount"),
        currency=text(data, "Currency") or "SEK",
        currency_rate=_rate(data),
        payment_date=day(data, "PaymentDate"),
        booked=bool(flag(data, "Booked")),
        amount_currency=optional_money(data, "AmountCurrency"),
    )


def supplier_invoice(data: Json) -> SupplierInvoice:
    """A ``SupplierInvoices[]`` item (``Cancel``) or ``SupplierInvoice`` (``Cancelled``)."""
    return SupplierInvoice(
        given_number=text(data, "GivenNumber"),
        supplier_number=text(data, "SupplierNumber"),
        supplier_name=text(data, "SupplierName"),
        invoice_number=text(data, "InvoiceNumber"),
        invoice_date=day(data, "InvoiceDate"),
        due_date=day(data, "DueDate"),
        final_pay_date=day(data, "FinalPayDate"),
        total=money(data, "Total"),
        balance=money(data, "Balance"),
        currency=text(data, "Currency") or "SEK",
        currency_rate=_rate(data),
        booked=bool(flag(data, "Booked")),
        cancelled=bool(flag(data, "Cancelled") or flag(data, "Cancel")),
        credit=bool(flag(data, "Credit")),
        credit_reference=reference(data, "CreditReference"),
        ocr=text(data, "OCR"),
    )


def supplier_invoice_payment(data: Json) -> SupplierInvoicePayment:
    """A ``SupplierInvoicePayments[]`` item or ``SupplierInvoicePayment``."""
    return _payment(data, SupplierInvoicePayment)


def file_connection(data: Json) -> FileConnection:
    """A supplier-invoice or voucher file connection."""
    return FileConnection(
        file_id=text(data, "FileId"),
        name=text(data, "Name") or text(data, "VoucherDescription"),
        supplier_invoice_number=text(data, "SupplierInvoiceNumber"),
        voucher_series=text(data, "VoucherSeries"),
        voucher_number=integer(data, "VoucherNumber"),
        voucher_year=integer(data, "VoucherYear"),
    )
