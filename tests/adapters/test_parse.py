"""Fortnox's JSON quirks: error-body casings, string amounts, empty dates, exact JSON money."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import httpx
import pytest

from adapters.fortnox import jsonbody, parse
from adapters.fortnox.errors import error_for_response, parse_error_body
from core.errors import FortnoxLicenseMissing, FortnoxNotFound, FortnoxRejected


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
