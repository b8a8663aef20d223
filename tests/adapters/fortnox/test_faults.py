"""Every sandbox fault, handled as specified: reads retried, writes never blindly repeated."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import pytest

from adapters.fortnox import FortnoxAdapter
from core.errors import (
    DeadlineExceeded,
    FortnoxOutcomeUnknown,
    FortnoxRateLimited,
    FortnoxRejected,
    FortnoxScopeMissing,
    FortnoxUnavailable,
)
from core.fortnox_api import NewVoucher, VoucherRow
from sandbox.testing import SandboxHandle
from tests.adapters.fortnox.conftest import TENANT, answers
from tests.harness.connect import connect_adapter


def _voucher(marker: str, day: date) -> NewVoucher:
    return NewVoucher(
        series="A", transaction_date=day, description="Bokslutsjustering",
        comments=f"export {marker}",
        rows=(VoucherRow(account=1930, debit=Decimal("1234.56")),
              VoucherRow(account=3001, credit=Decimal("1234.56"))),
    )


async def _current_year(adapter: FortnoxAdapter) -> tuple[int, date]:
    years = await adapter.api.financial_years(TENANT)
    return years[-1].id, years[-1].from_date


async def test_server_errors_on_reads_are_retried(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    await connect_adapter(adapter, TENANT)
    sandbox.add_fault("error", status=503, count=2)
    assert await adapter.api.financial_years(TENANT)
    sandbox.add_fault("error", status=500)
    with pytest.raises(FortnoxUnavailable) as failed:
        await adapter.api.financial_years(TENANT)
    assert failed.value.metadata["http_status"] == "500"
    assert failed.value.metadata["fortnox_code"] == "2000000"
    assert "Ett" not in failed.value.message  # Fortnox's Swedish text is metadata only


async def test_a_429_storm_ends_as_rate_limited(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    await connect_adapter(adapter, TENANT)
    sandbox.add_fault("rate_limit")
    with pytest.raises(FortnoxRateLimited):
        await adapter.api.financial_years(TENANT)
    assert answers(sandbox, 429) == 4  # FAST_RETRY's attempts, then it gives up


async def test_a_dropped_read_is_retried(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    await connect_adapter(adapter, TENANT)
    year_id, _ = await _current_year(adapter)
    sandbox.add_fault("drop", count=1, path="/3/accounts")
    accounts = await adapter.api.accounts(TENANT, year_id)
    assert accounts and all(a.number > 0 for a in accounts)


async def test_a_slow_fortnox_ends_the_call_at_its_deadline_and_says_so(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    await connect_adapter(adapter, TENANT)
    year_id, _ = await _current_year(adapter)
    sandbox.add_fault("latency", latency_ms=3000)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        await adapter.api.financial_years(TENANT, deadline=started + 0.5)
    assert time.monotonic() - started < 2.0
    assert caught.value.reason == "DEADLINE_EXCEEDED"
    sandbox.clear_faults()
    sandbox.add_fault("slow_sie", chunk_bytes=1024, chunk_delay_ms=3000)
    stream = await adapter.api.open_sie_export(TENANT, year_id, deadline=time.monotonic() + 1)
    with pytest.raises(DeadlineExceeded):
        async for _ in stream:
            pass
    await stream.aclose()


async def test_a_lost_voucher_answer_is_outcome_unknown_and_findable(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    connection = await connect_adapter(adapter, TENANT)
    year_id, day = await _current_year(adapter)
    sandbox.add_fault("commit_drop", count=1, method="POST", path="/3/vouchers")
    with pytest.raises(FortnoxOutcomeUnknown):
        await adapter.api.create_voucher(TENANT, year_id, _voucher("m-1", day))
    created = sandbox.created_vouchers(int(connection.fortnox_tenant_id))
    assert len(created) == 1  # booked once, never re-sent
    found = await adapter.api.find_vouchers(TENANT, year_id, "m-1")
    assert [(v.series, v.number) for v in found] == [
        (created[0]["VoucherSeries"], created[0]["VoucherNumber"])]
    assert await adapter.api.find_vouchers(TENANT, year_id, "m-2") == []


async def test_a_server_error_on_a_write_is_outcome_unknown(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    connection = await connect_adapter(adapter, TENANT)
    year_id, day = await _current_year(adapter)
    sandbox.add_fault("error", status=503, count=1, method="POST")
    with pytest.raises(FortnoxOutcomeUnknown):
        await adapter.api.create_voucher(TENANT, year_id, _voucher("m-3", day))
    assert answers(sandbox, 503) == 1
    assert sandbox.created_vouchers(int(connection.fortnox_tenant_id)) == []


async def test_a_429_on_a_write_is_retried_because_nothing_happened(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    connection = await connect_adapter(adapter, TENANT)
    year_id, day = await _current_year(adapter)
    sandbox.add_fault("rate_limit", count=2, method="POST")
    booked = await adapter.api.create_voucher(TENANT, year_id, _voucher("m-4", day))
    created = sandbox.created_vouchers(int(connection.fortnox_tenant_id))
    assert len(created) == 1
    assert (booked.series, booked.number, booked.year) == (
        created[0]["VoucherSeries"], created[0]["VoucherNumber"], year_id)
    assert [r.debit for r in booked.rows] == [Decimal("1234.56"), Decimal(0)]


async def test_a_business_rule_refusal_keeps_fortnox_code(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    await connect_adapter(adapter, TENANT)
    year_id, day = await _current_year(adapter)
    unbalanced = NewVoucher(series="A", transaction_date=day, description="Fel",
                            rows=(VoucherRow(account=1930, debit=Decimal(10)),
                                  VoucherRow(account=3001, credit=Decimal(9))))
    with pytest.raises(FortnoxRejected) as refused:
        await adapter.api.create_voucher(TENANT, year_id, unbalanced)
    assert refused.value.metadata["fortnox_code"] == "2000722"
    assert refused.value.metadata["fortnox_message"]


async def test_missing_scope_is_its_own_error(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    await connect_adapter(adapter, TENANT, scopes=("companyinformation",))
    with pytest.raises(FortnoxScopeMissing) as denied:
        await adapter.api.financial_years(TENANT)
    assert denied.value.reason == "FORTNOX_SCOPE_MISSING"
    assert denied.value.metadata["fortnox_code"] == "2000663"


async def test_slow_and_dropped_sie_downloads(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    await connect_adapter(adapter, TENANT)
    year_id, _ = await _current_year(adapter)
    async with await adapter.api.open_sie_export(TENANT, year_id) as stream:
        whole = b"".join([chunk async for chunk in stream])
    sandbox.add_fault("slow_sie", count=1, chunk_bytes=1024, chunk_delay_ms=1)
    async with await adapter.api.open_sie_export(TENANT, year_id) as stream:
        chunks = [chunk async for chunk in stream]
    assert b"".join(chunks) == whole
    assert len(chunks) > 1
    # One dropped connection: fetched again and continued after the bytes already given.
    sandbox.add_fault("drop", count=1, path="/3/sie")
    async with await adapter.api.open_sie_export(TENANT, year_id) as stream:
        resumed = [chunk async for chunk in stream]
    assert b"".join(resumed) == whole
    # Dropped on every attempt: the retries run out and the download fails.
    sandbox.add_fault("drop", path="/3/sie")
    stream = await adapter.api.open_sie_export(TENANT, year_id)
    with pytest.raises(FortnoxUnavailable):
        async for _ in stream:
            pass
    await stream.aclose()


async def test_a_download_that_changed_before_its_retry_is_not_spliced(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    """The file's head (its #GEN date) differs on the second fetch: the bytes already given
    cannot be continued, so the download fails instead of mixing two files."""
    await connect_adapter(adapter, TENANT)
    year_id, _ = await _current_year(adapter)
    sandbox.add_fault("slow_sie", path="/3/sie", chunk_bytes=256, chunk_delay_ms=0)
    sandbox.add_fault("drop", count=1, path="/3/sie")
    stream = await adapter.api.open_sie_export(TENANT, year_id)
    chunks = aiter(stream)
    first = await anext(chunks)
    sandbox.advance_clock(86_400)  # the export is generated on another day now
    with pytest.raises(FortnoxUnavailable, match="changed"):
        async for _ in chunks:
            pass
    await stream.aclose()
    assert first.startswith(b"#FLAGGA")
