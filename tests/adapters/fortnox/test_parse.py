"""Fortnox's JSON quirks: error-body casings, string amounts, empty dates, exact JSON money."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import httpx
import pytest

from adapters.fortnox import jsonbody, parse
from adapters.fortnox.errors import error_for_response, parse_error_body
from core.errors import (
    FortnoxAuthRejected,
    FortnoxLicenseMissing,
    FortnoxNotFound,
    FortnoxRejected,
)


@pytest.mark.parametrize("body", [
    {"ErrorInformation": {"error": 1, "message": "Kan inte hitta kontot.", "code": 2000423}},
    {"ErrorInformation": {"Error": 1, "Message": "Kan inte hitta kontot.", "Code": "2000423"}},
    {"errorInformation": {"error": 1, "message": "Kan inte hitta kontot.", "code": 2000423}},
])
def test_error_body_in_every_casing(body: dict[str, object]) -> None:
    parsed = parse_error_body(json.dumps(body).encode())
    assert (parsed.code, parsed.message) == (2000423, "Kan inte hitta kontot.")


def test_error_mapping_by_code_then_status() -> None:
    def answer(status: int, code: int | None) -> httpx.Response:
        body = {"ErrorInformation": {"message": "x", "code": code}} if code else {}
        return httpx.Response(status, json=body)

    assert isinstance(error_for_response(answer(400, 2001101), "/3/x"), FortnoxLicenseMissing)
    assert isinstance(error_for_response(answer(404, None), "/3/x"), FortnoxNotFound)
    rejected = error_for_response(answer(400, 2000550), "/3/vouchers")
    assert isinstance(rejected, FortnoxRejected)
    assert rejected.metadata == {"http_status": "400", "route": "/3/vouchers",
                                 "fortnox_code": "2000550", "fortnox_message": "x"}
    garbage = error_for_response(httpx.Response(502, content=b"<html>"), "/3/x")
    assert garbage.reason == "FORTNOX_UNAVAILABLE"


def test_supplier_invoice_list_item_quirks() -> None:
    item = parse.supplier_invoice({
        "GivenNumber": "17", "SupplierNumber": "3", "Total": "1250.50", "Balance": "0.10",
        "CurrencyRate": "", "Cancel": True, "Credit": False, "DueDate": "",
        "InvoiceDate": "2025-03-01", "CreditReference": "0",
    })
    assert item.total == Decimal("1250.50") and item.balance == Decimal("0.10")
    assert item.currency_rate == Decimal(1) and item.currency == "SEK"
    assert item.cancelled and item.due_date is None
    assert item.invoice_date == date(2025, 3, 1) and item.credit_reference == ""


def test_money_goes_out_as_exact_json_numbers() -> None:
    body = jsonbody.dumps({"Debit": Decimal("0.10"), "Credit": Decimal("12345678901234.57"),
                           "Text": "åäö"})
    assert body == '{"Debit": 0.10, "Credit": 12345678901234.57, "Text": "åäö"}'.encode()
    assert json.loads(body, parse_float=Decimal)["Credit"] == Decimal("12345678901234.57")


@pytest.mark.parametrize(("status", "body", "error", "code"), [
    (404, {"ErrorInformation": {"Error": 1, "Message": "Kan inte hitta kunden.",
                                "Code": 2000433}}, FortnoxNotFound, "2000433"),
    (400, {"ErrorInformation": {"error": 1, "message": "Ett ogiltigt filter har använts.",
                                "code": 2000587}}, FortnoxRejected, "2000587"),
    (401, {"message": "unauthorized"}, FortnoxAuthRejected, None),
])
def test_recorded_error_bodies(status: int, body: dict[str, object],
                               error: type[Exception], code: str | None) -> None:
    """The three shapes Fortnox was recorded answering with (404 capitalised, 400 lower
    case, an expired token's bare message)."""
    mapped = error_for_response(httpx.Response(status, json=body), "/3/x")
    assert isinstance(mapped, error)
    assert mapped.metadata.get("fortnox_code") == code
    assert mapped.metadata["fortnox_message"]


def test_recorded_invoice_variations() -> None:
    """A list item as recorded: rate as text, voucher references and pay date null."""
    unbooked = parse.invoice({
        "DocumentNumber": "39", "CustomerNumber": "1", "Total": 1250, "Balance": 1250,
        "CurrencyRate": "9.2412", "CurrencyUnit": 1, "Booked": False, "Cancelled": False,
        "VoucherNumber": None, "VoucherSeries": None, "VoucherYear": None,
        "FinalPayDate": None, "InvoiceDate": "2024-01-22", "DueDate": "2024-02-21",
    })
    assert unbooked.currency_rate == Decimal("9.2412") and not unbooked.booked
    assert unbooked.final_pay_date is None and unbooked.credit is None
    single = parse.invoice({
        "DocumentNumber": "1", "CustomerNumber": "1", "Total": 100.5, "CurrencyRate": 1,
        "Credit": "false", "CreditInvoiceReference": "0", "ContractReference": "0",
        "FinalPayDate": "2024-02-01", "InvoicePeriodStart": "", "DeliveryDate": None,
    })
    assert single.credit is False and single.credit_invoice_reference == ""
    assert single.total == Decimal("100.5") and single.final_pay_date == date(2024, 2, 1)


def test_recorded_party_variations() -> None:
    """Single customers and suppliers carry ``null`` where list items carry ``""``."""
    customer = parse.customer({"CustomerNumber": "7", "Name": "Kund", "Active": True,
                               "OrganisationNumber": "", "Address1": None, "Phone1": None,
                               "SalesAccount": 3001, "Currency": "SEK"})
    assert (customer.customer_number, customer.organisation_number) == ("7", "")
    supplier = parse.supplier({"SupplierNumber": 3, "Name": "Lev", "OrganisationNumber": None,
                               "Active": "true"})
    assert (supplier.supplier_number, supplier.organisation_number, supplier.active) == (
        "3", "", True)
    assert parse.cost_center({"Code": "100", "Description": "Sälj", "Active": False}).active \
        is False
    assert not parse.project({"ProjectNumber": "1", "Status": "COMPLETED",
                              "StartDate": None, "EndDate": None}).active
