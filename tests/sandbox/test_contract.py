"""The sandbox's answers held against real Fortnox: the recorded shapes where Fortnox was
recorded, the published read models everywhere else, and the error bodies of both. Every list
item and a sample of single resources in every state the seed has are checked, so a field
that is ``null`` in one state and set in another is seen both ways."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.testing import SandboxHandle
from tests.sandbox.contract import against_model, against_recording, model, recorded

#: Singles fetched per resource (the first ones plus one of each state found in the list).
SAMPLE = 6


def _pages(api: httpx.Client, path: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
    page = 1
    while True:
        answer = api.get(path, params={**params, "page": page, "limit": 500})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        yield body
        if page >= body["MetaInformation"]["@TotalPages"]:
            return
        page += 1


def _list(api: httpx.Client, path: str, resource: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, each checked against the model; the items."""
    spec = model(resource)
    items: list[dict[str, Any]] = []
    for body in _pages(api, path, spec["wrapper"], **params):
        assert set(body) == {"MetaInformation", spec["wrapper"]}
        for item in body[spec["wrapper"]]:
            assert against_model(item, spec["fields"], spec["wrapper"]) == [], item
            items.append(item)
    assert items, f"the seed has no {spec['wrapper']}"
    return items


def _single(api: httpx.Client, path: str, resource: str, **params: Any) -> dict[str, Any]:
    spec = model(resource)
    answer = api.get(path, params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == [spec["wrapper"]]
    assert against_model(body[spec["wrapper"]], spec["fields"], spec["wrapper"]) == []
    single: dict[str, Any] = body[spec["wrapper"]]
    return single


def _sample(items: list[dict[str, Any]], *state_keys: str) -> list[dict[str, Any]]:
    """The first items, and the first one for each value the ``state_keys`` take."""
    chosen = {id(i): i for i in items[:SAMPLE]}
    for key in state_keys:
        seen: set[str] = set()
        for item in items:
            marker = repr(item.get(key) is None) + repr(item.get(key) == 0)
            if marker not in seen:
                seen.add(marker)
                chosen.setdefault(id(item), item)
    return list(chosen.values())


def _not_found(answer: httpx.Response) -> None:
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    shape = recorded("GET", "/3/customers/{CustomerNumber}", "not_found")["body_shape"]
    assert against_recording(answer.json(), shape) == [], answer.text
    assert answer.json()["ErrorInformation"]["Error"] == 1


# -- recorded resources --------------------------------------------------------------------
def test_customers_as_recorded(api: httpx.Client) -> None:
    entry = recorded("GET", "/3/customers", "list")
    body = api.get("customers").json()
    assert against_recording(body, entry["body_shape"]) == []  # list items: exactly the keys
    found = recorded("GET", "/3/customers/{CustomerNumber}", "found")
    for item in body["Customers"][:SAMPLE]:
        single = api.get(f"customers/{item['CustomerNumber']}").json()
        assert against_recording(single, found["body_shape"], exact=False) == []
        assert "Phone" not in single["Customer"] and "Phone1" in single["Customer"]
    missing = api.get("customers/999999")
    _not_found(missing)
    assert missing.json()["ErrorInformation"]["Code"] in recorded(
        "GET", "/3/customers/{CustomerNumber}", "not_found")["error_codes"]
    empty = api.get("customers", params={"customernumber": "no-such"}).json()
    assert against_recording(empty, recorded("GET", "/3/customers", "list_empty")["body_shape"],
                             exact=False) == []
    assert empty["MetaInformation"] == {"@TotalResources": 0, "@TotalPages": 0,
                                        "@CurrentPage": 1}


def test_invoices_as_recorded(api: httpx.Client) -> None:
    shape = recorded("GET", "/3/invoices", "list")["body_shape"]
    items: list[dict[str, Any]] = []
    for body in _pages(api, "invoices", "Invoices"):
        assert against_recording(body, shape) == []
        items += body["Invoices"]
    unbooked = [i for i in items if not i["Booked"]]
    assert unbooked and all(i["VoucherNumber"] is None and i["VoucherSeries"] is None
                            and i["VoucherYear"] is None for i in unbooked)
    assert any(i["FinalPayDate"] is None for i in items)
    assert any(isinstance(i["FinalPayDate"], str) for i in items)
    found = recorded("GET", "/3/invoices/{DocumentNumber}", "found")["body_shape"]
    for item in _sample(items, "VoucherNumber", "FinalPayDate"):
        single = api.get(f"invoices/{item['DocumentNumber']}").json()
        assert against_recording(single, found, exact=False) == []
        for key in ("VoucherNumber", "VoucherSeries", "VoucherYear", "FinalPayDate",
                    "Credit", "CreditInvoiceReference", "CurrencyRate"):
            assert key in single["Invoice"], key
    filtered = api.get("invoices", params={"filter": "fullypaid"}).json()
    assert against_recording(filtered, recorded("GET", "/3/invoices", "list_filtered")[
        "body_shape"]) == []
    assert all(i["Balance"] == 0 and i["FinalPayDate"] for i in filtered["Invoices"])
    _not_found(api.get("invoices/999999"))
    assert api.get("invoices/999999").json()["ErrorInformation"]["Code"] == 2000434


def test_an_invalid_filter_is_a_lower_case_400(api: httpx.Client) -> None:
    entry = recorded("GET", "/3/invoices", "invalid_filter")
    for path in ("invoices", "supplierinvoices"):
        answer = api.get(path, params={"filter": "nonsense"})
        assert answer.status_code == entry["status"]
        assert against_recording(answer.json(), entry["body_shape"]) == []
        assert answer.json()["ErrorInformation"]["code"] in entry["error_codes"]


def test_projects_as_recorded(api: httpx.Client) -> None:
    shape = recorded("GET", "/3/projects", "list")["body_shape"]
    assert against_recording(api.get("projects").json(), shape) == []


def test_a_bad_access_token_gets_the_bare_unauthorized(sandbox: SandboxHandle) -> None:
    entry = recorded("GET", "/3/customers", "invalid_token")
    pair = sandbox.tokens()
    sandbox.advance_clock(3601)
    for token in (pair["access_token"], "not-a-token"):
        answer = httpx.get(f"{sandbox.api_url}/customers",
                           headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == entry["status"]
        assert answer.headers["content-type"] == entry["content_type"]
        assert answer.json() == entry["fixed_values"]


def test_token_endpoint_as_recorded(sandbox: SandboxHandle) -> None:
    pair = sandbox.tokens()

    def token(auth: tuple[str, str], refresh_token: str) -> httpx.Response:
        return httpx.post(f"{sandbox.auth_url}/token", auth=auth, data={
            "grant_type": "refresh_token", "refresh_token": refresh_token})

    client = (sandbox.client_id, sandbox.client_secret)
    cases = [("token_refreshed", token(client, pair["refresh_token"])),
             ("invalid_refresh_token", token(client, "spent-or-unknown")),
             ("invalid_client", token((sandbox.client_id, "wrong"), "whatever"))]
    for situation, answer in cases:
        entry = recorded("POST", "/oauth-v1/token", situation)
        assert answer.status_code == entry["status"], situation
        assert answer.headers["content-type"] == entry["content_type"], situation
        assert against_recording(answer.json(), entry["body_shape"]) == [], situation
        fixed = entry.get("fixed_values", {})
        assert {k: answer.json()[k] for k in fixed} == fixed, situation
    assert cases[0][1].headers["cache-control"] == "no-store"
    assert cases[0][1].headers["pragma"] == "no-cache"


def test_revoke_says_whether_it_revoked(sandbox: SandboxHandle) -> None:
    pair = sandbox.tokens()
    client = (sandbox.client_id, sandbox.client_secret)
    for token, revoked in ((pair["refresh_token"], True), ("unknown", False)):
        answer = httpx.post(f"{sandbox.auth_url}/revoke", auth=client, data={"token": token})
        assert answer.status_code == 200
        assert answer.json() == {"revoked": revoked}


# -- resources only the published model describes ------------------------------------------
def test_bookkeeping_resources_match_the_model(api: httpx.Client) -> None:
    _single(api, "companyinformation", "GET /3/companyinformation")
    years = _list(api, "financialyears", "GET /3/financialyears")
    _single(api, f"financialyears/{years[0]['Id']}", "GET /3/financialyears/{Id}")
    _single(api, "settings/lockedperiod", "GET /3/settings/lockedperiod")
    year = years[-1]["Id"]
    accounts = _list(api, "accounts", "GET /3/accounts", financialyear=year)
    for account in accounts[:SAMPLE]:
        _single(api, f"accounts/{account['Number']}", "GET /3/accounts/{Number}",
                financialyear=year)
    series = _list(api, "voucherseries", "GET /3/voucherseries", financialyear=year)
    _single(api, f"voucherseries/{series[0]['Code']}", "GET /3/voucherseries/{Code}",
            financialyear=year)
    vouchers = _list(api, "vouchers", "GET /3/vouchers", financialyear=year)
    for v in vouchers[:SAMPLE]:
        _single(api, f"vouchers/{v['VoucherSeries']}/{v['VoucherNumber']}",
                "GET /3/vouchers/{VoucherSeries}/{VoucherNumber}", financialyear=year)
    for path in ("financialyears/99", "vouchers/A/999999?financialyear=1",
                 "voucherseries/QQ"):
        _not_found(api.get(path))


def test_a_posted_voucher_answers_201_with_the_model(api: httpx.Client) -> None:
    body = {"Voucher": {"Description": "Kontrakt", "TransactionDate": "2025-06-30",
                        "VoucherSeries": "A", "VoucherRows": [
                            {"Account": 1930, "Debit": 100}, {"Account": 3001, "Credit": 100}]}}
    answer = api.post("vouchers", params={"financialyear": 2}, json=body)
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"] == "vouchers"  # a bare word, as every 201 recorded
    spec = model("POST /3/vouchers")
    assert against_model(answer.json()["Voucher"], spec["fields"], "Voucher") == []


def test_ledger_resources_match_the_model(api: httpx.Client) -> None:
    suppliers = _list(api, "suppliers", "GET /3/suppliers")
    for s in suppliers[:SAMPLE]:
        _single(api, f"suppliers/{s['SupplierNumber']}", "GET /3/suppliers/{SupplierNumber}")
    invoices = _list(api, "supplierinvoices", "GET /3/supplierinvoices")
    for i in _sample(invoices, "FinalPayDate"):
        single = _single(api, f"supplierinvoices/{i['GivenNumber']}",
                         "GET /3/supplierinvoices/{GivenNumber}")
        if not single["Booked"]:
            assert single["VoucherNumber"] is None
    for path, resource in (("invoicepayments", "GET /3/invoicepayments/{Number}"),
                           ("supplierinvoicepayments",
                            "GET /3/supplierinvoicepayments/{Number}")):
        payments = _list(api, path, f"GET /3/{path}")
        for p in payments[:SAMPLE]:
            _single(api, f"{path}/{p['Number']}", resource)
        _not_found(api.get(f"{path}/999999"))
    _not_found(api.get("suppliers/999999"))
    _not_found(api.get("supplierinvoices/999999"))


def test_file_resources_match_the_model(api: httpx.Client) -> None:
    connections = _list(api, "supplierinvoicefileconnections",
                        "GET /3/supplierinvoicefileconnections")
    _single(api, f"supplierinvoicefileconnections/{connections[0]['FileId']}",
            "GET /3/supplierinvoicefileconnections/{FileId}")
    # ``Name`` is returned though the published model leaves it out (fortnox-topics.md).
    receipts = api.get("voucherfileconnections", params={"limit": 500}).json()[
        "VoucherFileConnections"]
    spec = model("GET /3/voucherfileconnections")
    for receipt in receipts:
        assert isinstance(receipt.pop("Name"), str)
        assert against_model(receipt, spec["fields"], spec["wrapper"]) == [], receipt
    named = api.get(f"voucherfileconnections/{receipts[0]['FileId']}").json()[
        "VoucherFileConnection"]
    assert isinstance(named.pop("Name"), str) and named["FileId"] == receipts[0]["FileId"]
    spec = model("GET /3/voucherfileconnections/{FileId}")
    assert against_model(named, spec["fields"], spec["wrapper"]) == []
    _single(api, "archive", "GET /3/archive")
    _single(api, "inbox", "GET /3/inbox")
    _not_found(api.get("voucherfileconnections/no-such-file"))


# -- strictness ------------------------------------------------------------------------------
@pytest.mark.parametrize("params", [{"FinancialYear": "1"}, {"FINANCIALYEAR": "1"}])
def test_a_parameter_in_another_letter_case_is_ignored(api: httpx.Client,
                                                       params: dict[str, str]) -> None:
    """Like an unknown parameter: the call lands in the preselected (current) year."""
    years = api.get("financialyears").json()["FinancialYears"]
    answer = api.get("vouchers", params=params).json()["Vouchers"]
    assert {v["Year"] for v in answer} == {years[-1]["Id"]} != {1}


def test_accept_must_admit_what_the_endpoint_sends(api: httpx.Client) -> None:
    assert api.get("sie/4", params={"financialyear": 1}).status_code == 406
    sie = api.get("sie/4", params={"financialyear": 1},
                  headers={"Accept": "application/octet-stream"})
    assert sie.status_code == 200
    assert api.get("companyinformation", headers={"Accept": "text/csv"}).status_code == 406
    assert api.get("companyinformation", headers={"Accept": "*/*"}).status_code == 200
    refused = api.get("invoices/1/preview")
    assert refused.status_code == 406
    assert set(refused.json()["ErrorInformation"]) == {"error", "message", "code"}


def test_locked_period_needs_the_settings_scope(sandbox: SandboxHandle) -> None:
    for scopes, status in ((["bookkeeping"], 403), (["settings"], 200)):
        token = sandbox.tokens(scopes=scopes)["access_token"]
        answer = httpx.get(f"{sandbox.api_url}/settings/lockedperiod",
                           headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == status, scopes
