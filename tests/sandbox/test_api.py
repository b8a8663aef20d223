"""Every /3/ endpoint, pagination, filters and voucher rules, driven with plain httpx."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from sandbox.testing import SandboxHandle


def _all(api: httpx.Client, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = api.get(path, params={**params, "page": page, "limit": 500}).json()
        items += body[key]
        if page >= body["MetaInformation"]["@TotalPages"]:
            return items
        page += 1


def test_company_years_and_locked_period(api: httpx.Client, sandbox: SandboxHandle) -> None:
    info = api.get("companyinformation").json()["CompanyInformation"]
    assert info["OrganizationNumber"] == sandbox.tenants[0].organisation_number
    years = api.get("financialyears").json()
    assert [y["Id"] for y in years["FinancialYears"]] == [1, 2, 3]
    assert years["MetaInformation"]["@TotalResources"] == 3
    by_date = api.get("financialyears", params={"Date": "2025-06-30"}).json()["FinancialYears"]
    assert [(y["FromDate"], y["ToDate"]) for y in by_date] == [("2025-01-01", "2025-12-31")]
    assert api.get("financialyears/2").json()["FinancialYear"]["Id"] == 2
    assert api.get("financialyears/9").status_code == 404
    assert api.get("settings/lockedperiod").json()["LockedPeriod"]["EndDate"] == "2024-12-31"


def test_pagination_of_vouchers(api: httpx.Client) -> None:
    first = api.get("vouchers", params={"financialyear": 2, "limit": 50}).json()
    meta = first["MetaInformation"]
    assert meta["@CurrentPage"] == 1
    assert len(first["Vouchers"]) == 50
    assert meta["@TotalPages"] == -(-meta["@TotalResources"] // 50)
    everything = _all(api, "vouchers", "Vouchers", financialyear=2)
    assert len(everything) == meta["@TotalResources"]
    keys = {(v["VoucherSeries"], v["VoucherNumber"]) for v in everything}
    assert len(keys) == len(everything)
    capped = api.get("vouchers", params={"financialyear": 2, "limit": 5000}).json()
    assert len(capped["Vouchers"]) == min(500, meta["@TotalResources"])
    beyond = api.get("vouchers", params={"financialyear": 2, "page": 999}).json()
    assert beyond["Vouchers"] == []
    series_c = api.get("vouchers/sublist/C", params={"financialyear": 2}).json()["Vouchers"]
    assert {v["VoucherSeries"] for v in series_c} == {"C"}
    dated = api.get("vouchers", params={"financialyear": 2, "fromdate": "2025-03-01",
                                        "todate": "2025-03-31"}).json()["Vouchers"]
    assert all(v["TransactionDate"].startswith("2025-03") for v in dated)


def test_single_voucher_has_balanced_rows_and_history(api: httpx.Client) -> None:
    answer = api.get("vouchers/A/8", params={"financialyear": 1}).json()["Voucher"]
    rows = answer["VoucherRows"]
    live = [r for r in rows if not r["Removed"]]
    assert sum(Decimal(str(r["Debit"])) - Decimal(str(r["Credit"])) for r in live) == 0
    assert any(r["Removed"] for r in rows)
    assert answer["Year"] == 1
    assert api.get("vouchers/A/99999", params={"financialyear": 1}).status_code == 404


def _post(api: httpx.Client, rows: list[dict[str, Any]], day: str = "2026-03-01",
          series: str = "A", **params: Any) -> httpx.Response:
    return api.post("vouchers", params=params, json={"Voucher": {
        "Description": "Test", "TransactionDate": day, "VoucherSeries": series,
        "VoucherRows": rows}})


GOOD: list[dict[str, Any]] = [
    {"Account": 6110, "Debit": 100.25, "CostCenter": "100", "Project": "P1001"},
    {"Account": 1930, "Credit": 100.25},
]


def test_post_voucher_numbers_and_rules(api: httpx.Client, sandbox: SandboxHandle) -> None:
    series = api.get("voucherseries/A").json()["VoucherSeries"]
    created = _post(api, GOOD)
    assert created.status_code == 201
    voucher = created.json()["Voucher"]
    assert voucher["VoucherNumber"] == series["NextVoucherNumber"]
    assert voucher["Year"] == 3
    assert _post(api, GOOD).json()["Voucher"]["VoucherNumber"] == voucher["VoucherNumber"] + 1
    fetched = api.get(f"vouchers/A/{voucher['VoucherNumber']}", params={"financialyear": 3})
    assert fetched.json()["Voucher"]["VoucherRows"][0]["Debit"] == 100.25
    created_list = sandbox.created_vouchers(sandbox.tenants[0].id)
    assert [v["VoucherNumber"] for v in created_list] == [voucher["VoucherNumber"],
                                                        voucher["VoucherNumber"] + 1]

    def code(answer: httpx.Response) -> int:
        assert answer.status_code == 400
        return int(answer.json()["ErrorInformation"]["code"])

    unbalanced = [{"Account": 6110, "Debit": 100}, {"Account": 1930, "Credit": 99}]
    assert code(_post(api, unbalanced)) == 2000722
    assert code(_post(api, [{"Account": 9999, "Debit": 1}, {"Account": 1930, "Credit": 1}])) \
        == 2000423
    inactive = [{"Account": 1250, "Debit": 1}, {"Account": 1930, "Credit": 1}]
    assert code(_post(api, inactive)) == 2000550
    assert code(_post(api, GOOD[:1])) == 2000724
    assert code(_post(api, GOOD, series="Q")) == 2000201
    assert code(_post(api, GOOD, day="2025-03-01")) == 2000931
    assert code(_post(api, GOOD, day="2030-01-01")) == 2000930
    assert code(_post(api, GOOD, day="2024-05-01", financialyear=1)) == 2000546
    assert _post(api, GOOD, day="2025-05-01", financialyear=2).status_code == 201
    bad_json = api.post("vouchers", content=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert code(bad_json) == 2000208
    message = _post(api, unbalanced).json()["ErrorInformation"]["message"]
    assert message == "Verifikationen är inte balanserad."


def test_accounts_and_series(api: httpx.Client) -> None:
    accounts = _all(api, "accounts", "Accounts", financialyear=2)
    by_number = {a["Number"]: a for a in accounts}
    assert by_number[1250]["Active"] is False
    assert by_number[1930]["Active"] is True
    assert "BalanceCarriedForward" not in by_number[1930]
    single = api.get("accounts/1930", params={"financialyear": 1}).json()["Account"]
    following = api.get("accounts/1930", params={"financialyear": 2}).json()["Account"]
    assert single["BalanceCarriedForward"] == following["BalanceBroughtForward"]
    assert api.get("accounts/4242").status_code == 400
    codes = [s["Code"] for s in api.get("voucherseries").json()["VoucherSeriesCollection"]]
    assert "I" in codes
    assert "A" in codes


def _sek(amount: Any, rate: Any) -> Decimal:
    value = Decimal(str(amount)) * Decimal(str(rate))
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


def test_invoices_filters_and_ledger_agreement(api: httpx.Client,
                                               sandbox: SandboxHandle) -> None:
    invoices = _all(api, "invoices", "Invoices")
    assert {i["Currency"] for i in invoices} == {"SEK", "EUR"}
    cancelled = _all(api, "invoices", "Invoices", filter="cancelled")
    assert cancelled
    assert all(i["Cancelled"] for i in cancelled)
    unpaid = _all(api, "invoices", "Invoices", filter="unpaid")
    overdue = _all(api, "invoices", "Invoices", filter="unpaidoverdue")
    assert 0 < len(overdue) < len(unpaid)
    today = date.today().isoformat()
    assert all(i["DueDate"] < today for i in overdue)
    paid = _all(api, "invoices", "Invoices", filter="fullypaid")
    assert all(i["Balance"] == 0 for i in paid)
    assert any(0 < Decimal(str(i["Balance"])) < Decimal(str(i["Total"])) for i in unpaid)
    assert api.get("invoices", params={"filter": "nonsense"}).status_code == 400
    march = _all(api, "invoices", "Invoices", fromdate="2025-03-01", todate="2025-03-31")
    assert all(i["InvoiceDate"].startswith("2025-03") for i in march)
    recent = _all(api, "invoices", "Invoices", lastmodified="2026-06-01 00:00")
    assert 0 < len(recent) < len(invoices)

    credit_notes = [api.get(f"invoices/{i['DocumentNumber']}").json()["Invoice"]
                    for i in invoices if Decimal(str(i["Total"])) < 0]
    assert credit_notes
    assert all(c["Credit"] == "true" for c in credit_notes)
    original = api.get(f"invoices/{credit_notes[0]['CreditInvoiceReference']}").json()
    assert original["Invoice"]["CreditInvoiceReference"] == credit_notes[0]["DocumentNumber"]

    # The ledger: account 1510 at year end equals the open invoices in SEK (at invoice rate).
    check = sandbox.reconciliation(sandbox.tenants[0].id, "2025-12-31")
    assert check["account_1510"] == check["open_customer_invoices_sek"]
    assert check["account_2440"] == check["open_supplier_invoices_sek"]
    payments = _all(api, "invoicepayments", "InvoicePayments")
    open_at = Decimal(0)
    for inv in invoices:
        if inv["Cancelled"] or inv["InvoiceDate"] > "2025-12-31":
            continue
        number = int(inv["DocumentNumber"])
        paid_amount = sum(Decimal(str(p["Amount"])) for p in payments
                          if p["InvoiceNumber"] == number and p["PaymentDate"] <= "2025-12-31"
                          and inv["Currency"] == "SEK")
        if inv["Currency"] == "SEK":
            remaining = Decimal(str(inv["Total"])) - paid_amount
        else:
            paid_any = any(p["InvoiceNumber"] == number and p["PaymentDate"] <= "2025-12-31"
                           for p in payments)
            remaining = Decimal(0) if paid_any else _sek(inv["Total"], inv["CurrencyRate"])
        single = api.get(f"invoices/{number}").json()["Invoice"]
        reference = int(single["CreditInvoiceReference"])
        if reference and single["Credit"] == "false":
            credit = api.get(f"invoices/{reference}").json()["Invoice"]
            if credit["InvoiceDate"] <= "2025-12-31":
                remaining = Decimal(0)
        if single["Credit"] == "true":
            remaining = Decimal(0)
        open_at += remaining
    assert open_at == Decimal(str(check["account_1510"]))


def test_planted_difference_is_visible(sandbox: SandboxHandle) -> None:
    planted = sandbox.tenants[2]
    assert "1510" in planted.planted_difference
    before = sandbox.reconciliation(planted.id, "2025-10-14")
    after = sandbox.reconciliation(planted.id, "2025-10-15")
    assert before["account_1510"] == before["open_customer_invoices_sek"]
    difference = Decimal(str(after["account_1510"])) - Decimal(
        str(after["open_customer_invoices_sek"]))
    assert difference == Decimal("1250")


def test_payments_parties_and_supplier_side(api: httpx.Client) -> None:
    payments = _all(api, "invoicepayments", "InvoicePayments")
    assert isinstance(payments[0]["Number"], str)
    assert isinstance(payments[0]["InvoiceNumber"], int)
    one = api.get(f"invoicepayments/{payments[0]['Number']}").json()["InvoicePayment"]
    assert "AmountCurrency" in one
    assert one["VoucherSeries"] == "C"
    narrowed = _all(api, "invoicepayments", "InvoicePayments",
                    invoicenumber=payments[0]["InvoiceNumber"])
    assert {p["InvoiceNumber"] for p in narrowed} == {payments[0]["InvoiceNumber"]}
    years = {p["PaymentDate"][:4] for p in payments}
    assert {"2024", "2025"} <= years

    customers = _all(api, "customers", "Customers")
    assert "Active" not in customers[0]
    assert api.get(f"customers/{customers[0]['CustomerNumber']}").json()["Customer"]["Active"]
    suppliers = _all(api, "suppliers", "Suppliers")
    assert "Currency" in suppliers[0]
    assert api.get("suppliers/1").json()["Supplier"]["SupplierNumber"] == "1"
    assert api.get("suppliers/999").status_code == 404

    sinv = _all(api, "supplierinvoices", "SupplierInvoices")
    assert isinstance(sinv[0]["Total"], str)
    assert "Cancel" in sinv[0]
    single = api.get(f"supplierinvoices/{sinv[0]['GivenNumber']}").json()["SupplierInvoice"]
    assert "Cancelled" in single
    assert _all(api, "supplierinvoices", "SupplierInvoices", filter="unpaid")
    spay = _all(api, "supplierinvoicepayments", "SupplierInvoicePayments")
    assert isinstance(spay[0]["Number"], int)
    assert isinstance(spay[0]["InvoiceNumber"], str)
    detail = api.get(f"supplierinvoicepayments/{spay[0]['Number']}").json()
    assert detail["SupplierInvoicePayment"]["VoucherSeries"] == "E"
    assert [c["Code"] for c in api.get("costcenters").json()["CostCenters"]] == [
        "100", "200", "300"]
    assert len(api.get("projects").json()["Projects"]) == 4


def test_documents(api: httpx.Client) -> None:
    pdf_only = {"Accept": "application/pdf"}
    assert api.get("invoices/1/preview").status_code == 406  # the client's Accept: JSON
    pdf = api.get("invoices/1/preview", headers=pdf_only)
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-1.4")
    assert pdf.content.rstrip().endswith(b"%%EOF")
    connections = api.get("supplierinvoicefileconnections",
                          params={"supplierinvoicenumber": "1"}).json()
    file_id = connections["SupplierInvoiceFileConnections"][0]["FileId"]
    # A connection's FileId is the ArchiveFileId: only ?fileid= takes it, not the path.
    assert api.get(f"archive/{file_id}", headers=pdf_only).status_code == 404
    attachment = api.get("archive", params={"fileid": file_id}, headers=pdf_only)
    assert attachment.content.startswith(b"%PDF")
    assert api.get(f"supplierinvoicefileconnections/{file_id}").status_code == 200
    assert api.get(f"inbox/{file_id}", headers=pdf_only).status_code == 404
    vouchers = api.get("voucherfileconnections").json()["VoucherFileConnections"]
    assert isinstance(vouchers[0]["VoucherNumber"], str)
    receipt = api.get("archive", params={"fileid": vouchers[0]["FileId"]}, headers=pdf_only)
    assert receipt.status_code == 200
    inbox = api.get("inbox").json()["Folder"]["Files"]
    assert len(inbox) == 3
    assert api.get(f"inbox/{inbox[0]['Id']}", headers=pdf_only).content.startswith(b"%PDF")
    archive = api.get("archive").json()["Folder"]
    row = next(f for f in archive["Files"] if f["ArchiveFileId"] == file_id)
    assert row["Id"] != file_id
    assert api.get(f"archive/{row['Id']}", headers=pdf_only).content.startswith(b"%PDF")


def test_scopes_are_enforced_per_endpoint(sandbox: SandboxHandle) -> None:
    token = sandbox.tokens(scopes=["invoice"])["access_token"]
    with httpx.Client(base_url=sandbox.api_url + "/",
                      headers={"Authorization": f"Bearer {token}"}) as limited:
        assert limited.get("invoices").status_code == 200
        for path in ("vouchers", "customers", "invoicepayments", "archive", "sie/4",
                     "supplierinvoices", "voucherfileconnections", "companyinformation"):
            answer = limited.get(path)
            assert answer.status_code == 403, path
            assert answer.json()["ErrorInformation"]["code"] == 2000663
