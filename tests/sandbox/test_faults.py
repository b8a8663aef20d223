"""Rate limit and every injected fault, seen from a plain httpx client."""

from __future__ import annotations

import time

import httpx
import pytest

from sandbox.testing import SandboxHandle


def test_rate_limit_is_a_sliding_window_per_tenant(sandbox: SandboxHandle,
                                                   api: httpx.Client) -> None:
    sandbox.set_rate_limit(5, 0.5)
    statuses = [api.get("companyinformation").status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429, 429]
    body = api.get("companyinformation").json()
    assert body["ErrorInformation"]["code"] == 2003377
    other = sandbox.tokens(sandbox.tenants[1].id)["access_token"]
    elsewhere = httpx.get(f"{sandbox.api_url}/companyinformation",
                          headers={"Authorization": f"Bearer {other}"})
    assert elsewhere.status_code == 200
    time.sleep(0.55)
    assert api.get("companyinformation").status_code == 200


def test_failing_requests_count_too(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.set_rate_limit(3, 0.5)
    assert [api.get("invoices/999999").status_code for _ in range(3)] == [404] * 3
    assert api.get("companyinformation").status_code == 429


def test_error_fault_for_the_next_n_requests(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.add_fault("error", status=503, count=2)
    first, second, third = (api.get("companyinformation") for _ in range(3))
    assert first.status_code == 503
    assert "ErrorInformation" in first.json()
    assert second.status_code == 503
    assert third.status_code == 200
    assert sandbox.faults() == []
    sandbox.add_fault("error", status=500, count=1, path="/3/invoices")
    assert api.get("companyinformation").status_code == 200
    assert api.get("invoices").status_code == 500


def test_error_share_is_deterministic(sandbox: SandboxHandle, api: httpx.Client) -> None:
    def run() -> list[int]:
        sandbox.clear_faults()
        sandbox.add_fault("error", status=500, probability=0.5)
        return [api.get("companyinformation").status_code for _ in range(20)]

    first = run()
    assert 0 < first.count(500) < 20
    assert run() == first


def test_fault_for_one_tenant_only(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.add_fault("rate_limit", tenant=sandbox.tenants[1].id)
    assert api.get("companyinformation").status_code == 200
    other = sandbox.tokens(sandbox.tenants[1].id)["access_token"]
    storm = httpx.get(f"{sandbox.api_url}/companyinformation",
                      headers={"Authorization": f"Bearer {other}"})
    assert storm.status_code == 429


def test_latency(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.add_fault("latency", latency_ms=300, count=1)
    started = time.monotonic()
    assert api.get("companyinformation").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_drop_mid_body(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.add_fault("drop", count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        api.get("invoices")
    assert api.get("invoices").status_code == 200
    sandbox.add_fault("drop", count=1, path="/3/sie")
    with pytest.raises(httpx.RemoteProtocolError):
        api.get("sie/4", params={"financialyear": 2})


def test_slow_sie(sandbox: SandboxHandle, api: httpx.Client) -> None:
    whole = api.get("sie/4", params={"financialyear": 2}).content
    sandbox.add_fault("slow_sie", chunk_bytes=8192, chunk_delay_ms=20, count=1)
    started = time.monotonic()
    chunks = 0
    received = b""
    with api.stream("GET", "sie/4", params={"financialyear": 2}) as answer:
        for chunk in answer.iter_raw():
            received += chunk
            chunks += 1
    assert received == whole
    expected_chunks = len(whole) // 8192
    assert time.monotonic() - started >= expected_chunks * 0.02
    assert chunks >= expected_chunks


def test_commit_then_drop_the_answer(sandbox: SandboxHandle, api: httpx.Client) -> None:
    sandbox.add_fault("commit_drop", count=1, method="POST", path="/3/vouchers")
    body = {"Voucher": {"Description": "Exportmarkör ext-42", "TransactionDate": "2026-02-01",
                        "VoucherSeries": "I", "VoucherRows": [
                            {"Account": 6110, "Debit": 10}, {"Account": 1930, "Credit": 10}]}}
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("vouchers", json=body)
    created = sandbox.created_vouchers(sandbox.tenants[0].id)
    assert [v["Description"] for v in created] == ["Exportmarkör ext-42"]
    listed = api.get("vouchers/sublist/I", params={"financialyear": 3}).json()["Vouchers"]
    assert any(v["Description"] == "Exportmarkör ext-42" for v in listed)


def test_bad_fault_specs_are_refused(sandbox: SandboxHandle) -> None:
    with pytest.raises(httpx.HTTPStatusError):
        sandbox.add_fault("explode")
    with pytest.raises(httpx.HTTPStatusError):
        sandbox.add_fault("error", status=404)
    fault = sandbox.add_fault("latency", latency_ms=1)
    sandbox.remove_fault(fault)
    assert sandbox.faults() == []


def test_amend_changes_what_the_api_shows(sandbox: SandboxHandle, api: httpx.Client) -> None:
    tenant = sandbox.tenants[0].id
    sandbox.amend_voucher(tenant, 2, "A", 2, rows=[
        {"Account": 6110, "Debit": 5}, {"Account": 1930, "Credit": 5}])
    voucher = api.get("vouchers/A/2", params={"financialyear": 2}).json()["Voucher"]
    live = [r for r in voucher["VoucherRows"] if not r["Removed"]]
    assert [(r["Account"], r["Debit"], r["Credit"]) for r in live] == [
        (6110, 5, 0), (1930, 0, 5)]
    assert any(r["Removed"] for r in voucher["VoucherRows"])
