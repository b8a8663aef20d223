"""The SIE export: Fortnox's shape, and books that add up for every company and year."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from sandbox.testing import SandboxHandle
from tests.sandbox.sie_check import control_errors, parse

FORTNOX_HEADER = ["#FLAGGA", "#FORMAT", "#SIETYP", "#PROGRAM", "#GEN", "#FNR", "#FNAMN",
                  "#ADRESS", "#RAR", "#RAR", "#ORGNR", "#OMFATTN", "#KPTYP"]


def _client(sandbox: SandboxHandle, tenant: int) -> httpx.Client:
    token = sandbox.tokens(tenant, scopes=["bookkeeping"])["access_token"]
    return httpx.Client(base_url=sandbox.api_url + "/", timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def test_every_company_and_year_passes_the_controls(sandbox: SandboxHandle) -> None:
    for tenant in sandbox.tenants:
        with _client(sandbox, tenant.id) as client:
            previous_ub: dict[int, Decimal] = {}
            for year in tenant.financial_years:
                raw = client.get("sie/4", params={"financialyear": year["id"]}).content
                sie = parse(raw)
                assert control_errors(sie) == [], (tenant.name, year)
                assert sie.vouchers > 0
                if previous_ub:
                    opening = {a: v for (y, a), v in sie.ib.items() if y == 0}
                    assert opening == previous_ub
                previous_ub = {a: v for (y, a), v in sie.ub.items() if y == 0}


def test_export_is_shaped_like_fortnox(sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[0]
    with _client(sandbox, tenant.id) as client:
        answer = client.get("sie/4", params={"financialYear": 2})
        raw = answer.content
    assert answer.status_code == 200
    assert raw.endswith(b"}")
    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert "Sandlådan".encode("cp437") in raw
    sie = parse(raw)
    assert sie.header == FORTNOX_HEADER
    assert sie.rtrans > 0
    assert sie.btrans > 0
    assert b"#VER I 1 20251231" in raw


def test_current_year_is_the_default_and_types_differ(sandbox: SandboxHandle) -> None:
    with _client(sandbox, sandbox.tenants[0].id) as client:
        current = client.get("sie/4").content
        assert b"#RAR 0 20260101 20261231" in current
        type1 = client.get("sie/1", params={"financialyear": 2}).content
        type2 = client.get("sie/2", params={"financialyear": 2}).content
        type3 = client.get("sie/3", params={"financialyear": 2}).content
        assert b"#VER" not in type1
        assert b"#PSALDO" not in type1
        assert b"#OMFATTN" not in type1
        assert b"#PSALDO" in type2
        assert b"#OBJEKT" not in type2
        assert b"#OBJEKT 6" in type3
        assert b"{6 " in type3
        assert client.get("sie/5").status_code == 400
        assert client.get("sie/4", params={"financialyear": 99}).status_code == 400


def test_posted_and_amended_vouchers_appear_and_books_still_add_up(
        sandbox: SandboxHandle) -> None:
    tenant = sandbox.tenants[0].id
    with _client(sandbox, tenant) as client:
        before = client.get("sie/4", params={"financialyear": 2}).content
        posted = client.post("vouchers", params={"financialyear": 2}, json={"Voucher": {
            "Description": "Bokslutsjustering", "TransactionDate": "2025-12-31",
            "VoucherSeries": "I", "VoucherRows": [
                {"Account": 6110, "Debit": 1000.5}, {"Account": 2440, "Credit": 1000.5}]}})
        assert posted.status_code == 201
        sandbox.amend_voucher(tenant, 2, "A", 3, description="Ändrad text")
        after = client.get("sie/4", params={"financialyear": 2}).content
        following = client.get("sie/4", params={"financialyear": 3}).content
    assert before != after
    assert b'#VER I 2 20251231 "Bokslutsjustering"' in after
    assert "Ändrad text".encode("cp437") in after
    assert control_errors(parse(after)) == []
    assert control_errors(parse(following)) == []


def test_project_reader_finds_no_errors(sandbox: SandboxHandle) -> None:
    sie = pytest.importorskip("sie")
    with _client(sandbox, sandbox.tenants[1].id) as client:
        raw = client.get("sie/4", params={"financialyear": 2}).content
    document = sie.read_document(raw)
    errors = [f for f in document.findings if f.severity == sie.Severity.ERROR]
    assert errors == []
