"""Fortnox's answers are not trusted in size, shape or time: the adapter over real HTTP against
the sandbox's hostile answers (gzip bombs, drips, nulls, non-JSON, lying 200s and
ErrorInformation under a 200), each ending in an error of its own."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from opentelemetry.sdk.trace import TracerProvider

from adapters.fortnox import FortnoxAdapter, bodies
from adapters.fortnox.errors import GrantAnswerLost
from adapters.sqlite.connections import SqliteTokenStore
from core.errors import (
    FortnoxAnswerMalformed,
    FortnoxAnswerTooLarge,
    FortnoxOutcomeUnknown,
    FortnoxRejected,
    FortnoxScopeMissing,
    FortnoxUnavailable,
)
from core.fortnox_api import NewVoucher, VoucherRow
from sandbox.testing import SandboxHandle
from tests.adapters.fortnox.conftest import TENANT, MovableClock, settings_for
from tests.harness.connect import connect_adapter
from tests.harness.sandbox import FAST_RETRY

T = TypeVar("T")
MiB = 1024 * 1024
#: Loose: what reading a bounded answer may add to the process's Python memory at its peak.
MEMORY_GROWTH_LIMIT = 100 * MiB
#: Generous: a call that must end does so long before this (its own limit is 5 s; the drips
#: below would take minutes to finish).
MUST_END_WITHIN_S = 60.0


@pytest.fixture
async def tight(
    sandbox: SandboxHandle, store: SqliteTokenStore, provider: TracerProvider,
    clock: MovableClock,
) -> AsyncIterator[FortnoxAdapter]:
    """An adapter with small time limits, beside ``adapter`` on the same token store (which
    connects and looks up, so only the call under test runs against the limits)."""
    settings = settings_for(sandbox, http_timeout_s=5.0, http_call_timeout_s=5.0,
                            http_download_timeout_s=5.0)
    async with FortnoxAdapter(settings, store, tracer_provider=provider, clock=clock,
                              retry=FAST_RETRY) as adapter:
        yield adapter


@pytest.fixture
async def small(
    sandbox: SandboxHandle, store: SqliteTokenStore, provider: TracerProvider,
    clock: MovableClock,
) -> AsyncIterator[FortnoxAdapter]:
    """An adapter that reads files of at most 32 MiB."""
    settings = settings_for(sandbox, max_download_bytes=32 * MiB)
    async with FortnoxAdapter(settings, store, tracer_provider=provider, clock=clock,
                              retry=FAST_RETRY) as adapter:
        yield adapter


async def _peak_growth(work: Awaitable[T]) -> tuple[T | BaseException, int]:
    """What ``work`` came to (its result or error), and the peak of Python memory it added."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        outcome: T | BaseException
        try:
            outcome = await work
        except Exception as exc:  # the caller asserts which
            outcome = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return outcome, peak - before


async def _year(adapter: FortnoxAdapter) -> tuple[int, date]:
    years = await adapter.api.financial_years(TENANT)
    return years[-1].id, years[-1].from_date


def _voucher(marker: str, day: date) -> NewVoucher:
    return NewVoucher(
        series="A", transaction_date=day, description="Bokslutsjustering",
        comments=f"export {marker}",
        rows=(VoucherRow(account=1930, debit=Decimal("100.00")),
              VoucherRow(account=3001, credit=Decimal("100.00"))),
    )


def _answer(sandbox: SandboxHandle, path: str, body: Any, **spec: Any) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    sandbox.add_fault("answer", path=path, body=text, **spec)


# -- size ----------------------------------------------------------------------------------

async def test_a_gzip_bomb_of_json_stops_at_its_bound_without_expanding_in_memory(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    """256 MiB of (valid) JSON in about 256 KiB of gzip: read to 16 MiB, then refused."""
    await connect_adapter(adapter, TENANT)
    sandbox.add_fault("gzip_bomb", path="/3/financialyears", bomb_bytes=256 * MiB)
    outcome, growth = await _peak_growth(adapter.api.financial_years(TENANT))
    assert isinstance(outcome, FortnoxAnswerTooLarge), outcome
    assert outcome.reason == "FORTNOX_ANSWER_TOO_LARGE"
    assert outcome.metadata["limit_bytes"] == str(16 * MiB)
    assert growth < MEMORY_GROWTH_LIMIT, f"{growth / MiB:.0f} MiB"


async def test_a_gzip_answer_within_its_bound_reads_as_usual(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    await connect_adapter(adapter, TENANT)
    plain = await adapter.api.financial_years(TENANT)
    sandbox.add_fault("gzip_bomb", path="/3/financialyears", bomb_bytes=MiB)
    assert await adapter.api.financial_years(TENANT) == plain


async def test_a_gzip_bombed_sie_file_streams_in_bounded_memory_and_stops_at_its_bound(
    small: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    await connect_adapter(small, TENANT)
    year_id, _ = await _year(small)
    async with await small.api.open_sie_export(TENANT, year_id) as stream:
        whole = b"".join([chunk async for chunk in stream])
    # Within the bound (32 MiB here): the file and its padding arrive whole.
    sandbox.add_fault("gzip_bomb", count=1, path="/3/sie", bomb_bytes=8 * MiB)

    async def size_of_download() -> tuple[int, bytes]:
        size, head = 0, b""
        async with await small.api.open_sie_export(TENANT, year_id) as stream:
            async for chunk in stream:
                head += chunk[:max(0, len(whole) - len(head))]
                size += len(chunk)
        return size, head

    fitting, growth = await _peak_growth(size_of_download())
    assert fitting == (len(whole) + 8 * MiB, whole)
    assert growth < MEMORY_GROWTH_LIMIT, f"{growth / MiB:.0f} MiB"
    # Past it: SIE_TOO_LARGE, with no more than a piece at a time in memory.
    sandbox.add_fault("gzip_bomb", count=1, path="/3/sie", bomb_bytes=256 * MiB)
    refused, growth = await _peak_growth(size_of_download())
    assert isinstance(refused, FortnoxAnswerTooLarge), refused
    assert refused.reason == "SIE_TOO_LARGE"
    assert refused.metadata["limit_bytes"] == str(32 * MiB)
    assert growth < MEMORY_GROWTH_LIMIT, f"{growth / MiB:.0f} MiB"


# -- time ----------------------------------------------------------------------------------

async def test_an_answer_dripping_a_byte_at_a_time_ends_at_the_call_time_limit(
    adapter: FortnoxAdapter, tight: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    """Each byte comes well within the read timeout (5 s), the whole never: the call ends at
    its own limit though the caller set no deadline."""
    await connect_adapter(adapter, TENANT)
    sandbox.add_fault("drip", path="/3/financialyears", chunk_bytes=1, chunk_delay_ms=300)
    with pytest.raises(FortnoxUnavailable) as failed:
        await asyncio.wait_for(tight.api.financial_years(TENANT), MUST_END_WITHIN_S)
    assert failed.value.reason == "FORTNOX_UNAVAILABLE"
    assert failed.value.metadata["transport_error"] == "AnswerTimedOut"


async def test_a_dripping_download_ends_at_the_download_time_limit(
    adapter: FortnoxAdapter, tight: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    await connect_adapter(adapter, TENANT)
    year_id, _ = await _year(adapter)
    sandbox.add_fault("drip", path="/3/sie", chunk_bytes=16, chunk_delay_ms=300)

    async def download() -> None:
        async with await tight.api.open_sie_export(TENANT, year_id) as stream:
            async for _ in stream:
                pass

    with pytest.raises(FortnoxUnavailable) as failed:
        await asyncio.wait_for(download(), MUST_END_WITHIN_S)
    assert failed.value.metadata["transport_error"] == "AnswerTimedOut"


async def test_a_dripping_answer_to_a_voucher_post_is_an_unknown_outcome_found_later(
    adapter: FortnoxAdapter, tight: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    connection = await connect_adapter(adapter, TENANT)
    year_id, day = await _year(adapter)
    sandbox.add_fault("drip", count=1, method="POST", path="/3/vouchers", chunk_bytes=1,
                      chunk_delay_ms=300)
    with pytest.raises(FortnoxOutcomeUnknown):
        await asyncio.wait_for(tight.api.create_voucher(TENANT, year_id, _voucher("d-1", day)),
                               MUST_END_WITHIN_S)
    assert len(sandbox.created_vouchers(int(connection.fortnox_tenant_id))) == 1
    assert len(await adapter.api.find_vouchers(TENANT, year_id, "d-1")) == 1


# -- shape ---------------------------------------------------------------------------------

_META = {"@TotalResources": 1, "@TotalPages": 1, "@CurrentPage": 1}


@pytest.mark.parametrize(("body", "problem"), [
    ({"MetaInformation": _META, "FinancialYears": [None]}, "FinancialYears[0] is null"),
    ({"MetaInformation": _META, "FinancialYears": None}, "FinancialYears is null"),
    ({"MetaInformation": _META}, "FinancialYears is null"),
    ({"MetaInformation": _META, "FinancialYears": [{"Id": None, "FromDate": "2025-01-01",
                                                    "ToDate": "2025-12-31"}]},
     "FinancialYears[0]: Id is missing"),
    ({"MetaInformation": _META, "FinancialYears": [{"Id": 1, "FromDate": None,
                                                    "ToDate": "2025-12-31"}]},
     "FinancialYears[0]"),
    ({"MetaInformation": _META, "FinancialYears": [{"Id": {"x": 1}, "FromDate": "2025-01-01",
                                                    "ToDate": "2025-12-31"}]},
     "FinancialYears[0]: Id is an object"),
    ({"MetaInformation": _META, "FinancialYears": [{"Id": True, "FromDate": "2025-01-01",
                                                    "ToDate": "2025-12-31"}]},
     "FinancialYears[0]: Id is a boolean"),
    ({"MetaInformation": "x", "FinancialYears": []}, ""),
    ("<html><body>502 Bad Gateway</body></html>", "the answer is not JSON"),
    ("", "the answer is not JSON"),
    ("[]", "the answer is not a JSON object"),
    ('{"FinancialYears": [', "the answer is not JSON"),
    ("[" * 100_000 + "]" * 100_000, "the answer is not JSON"),
])
async def test_a_malformed_list_answer_has_a_reason_of_its_own(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, body: Any, problem: str
) -> None:
    await connect_adapter(adapter, TENANT)
    _answer(sandbox, "/3/financialyears", body)
    with pytest.raises(FortnoxAnswerMalformed) as failed:
        await adapter.api.financial_years(TENANT)
    assert failed.value.reason == "FORTNOX_ANSWER_MALFORMED"
    assert failed.value.metadata["route"] == "/3/financialyears"
    assert problem in failed.value.metadata["problem"]


@pytest.mark.parametrize(("account", "problem"), [
    (None, "Accounts[0] is null"),
    ({"Number": None, "Description": "Kassa"}, "Accounts[0]: Number is missing"),
    ({"Number": "nittonhundra", "Description": "Kassa"}, "Accounts[0]: Number"),
    ({"Number": 1910, "BalanceBroughtForward": "NaN"}, "BalanceBroughtForward"),
    ({"Number": 1910, "BalanceBroughtForward": True}, "BalanceBroughtForward"),
    ({"Number": 1910, "Description": ["Kassa"]}, "Description is a list"),
])
async def test_nulls_and_odd_types_in_accounts_have_a_reason_of_their_own(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, account: Any, problem: str
) -> None:
    await connect_adapter(adapter, TENANT)
    year_id, _ = await _year(adapter)
    _answer(sandbox, "/3/accounts", {"MetaInformation": _META, "Accounts": [account]})
    with pytest.raises(FortnoxAnswerMalformed) as failed:
        await adapter.api.accounts(TENANT, year_id)
    assert problem in failed.value.metadata["problem"]


async def test_numbers_as_strings_and_empty_strings_read_as_recorded_fortnox_sends_them(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    await connect_adapter(adapter, TENANT)
    year_id, _ = await _year(adapter)
    _answer(sandbox, "/3/accounts", {"MetaInformation": _META, "Accounts": [
        {"Number": "1910", "Description": "Kassa", "Active": True, "Year": "3",
         "BalanceBroughtForward": "1250.50", "BalanceCarriedForward": "", "SRU": "",
         "VATCode": None}]})
    [account] = await adapter.api.accounts(TENANT, year_id)
    assert (account.number, account.year, account.sru) == (1910, 3, None)
    assert account.balance_brought_forward == Decimal("1250.50")
    assert account.balance_carried_forward is None


async def test_error_information_under_a_200_is_the_error_it_states(
    adapter: FortnoxAdapter, sandbox: SandboxHandle
) -> None:
    await connect_adapter(adapter, TENANT)
    refusal = {"ErrorInformation": {"error": 1, "message": "Ett fel uppstod.", "code": 2000359}}
    _answer(sandbox, "/3/financialyears", refusal, count=1)
    with pytest.raises(FortnoxRejected) as failed:
        await adapter.api.financial_years(TENANT)
    assert failed.value.metadata["http_status"] == "200"
    assert failed.value.metadata["fortnox_code"] == "2000359"
    # Not "no locked period": the locked-period call fails the same way.
    _answer(sandbox, "/3/settings/lockedperiod", refusal, count=1)
    with pytest.raises(FortnoxRejected):
        await adapter.api.locked_period_end(TENANT)
    _answer(sandbox, "/3/settings/lockedperiod",
            {"ErrorInformation": {"Error": 1, "Message": "Saknar behörighet", "Code": 2000663}},
            count=1)
    with pytest.raises(FortnoxScopeMissing):
        await adapter.api.locked_period_end(TENANT)
    _answer(sandbox, "/3/settings/lockedperiod", {"ErrorInformation": {"message": "?"}},
            count=1)
    with pytest.raises(FortnoxAnswerMalformed):
        await adapter.api.locked_period_end(TENANT)
    _answer(sandbox, "/3/settings/lockedperiod", {}, count=1)
    with pytest.raises(FortnoxAnswerMalformed):
        await adapter.api.locked_period_end(TENANT)


@pytest.mark.parametrize("body", [
    {},
    {"Voucher": None},
    {"Voucher": {"VoucherSeries": "A"}},
    {"Voucher": {"VoucherSeries": "B", "VoucherNumber": 1, "Year": 1}},
    {"ErrorInformation": {"error": 1, "message": "Ett fel uppstod.", "code": 2000359}},
    "<html>OK</html>",
])
async def test_a_200_to_a_voucher_post_that_does_not_show_it_is_an_unknown_outcome(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, body: Any
) -> None:
    """The voucher was booked: the lost-answer path's look-up finds it."""
    connection = await connect_adapter(adapter, TENANT)
    year_id, day = await _year(adapter)
    _answer(sandbox, "/3/vouchers", body, count=1, method="POST", status=201)
    with pytest.raises(FortnoxOutcomeUnknown):
        await adapter.api.create_voucher(TENANT, year_id, _voucher("l-1", day))
    created = sandbox.created_vouchers(int(connection.fortnox_tenant_id))
    found = await adapter.api.find_vouchers(TENANT, year_id, "l-1")
    assert [(v.series, v.number) for v in found] == [
        (c["VoucherSeries"], c["VoucherNumber"]) for c in created]
    assert len(found) == 1


def test_a_corrupt_stream_or_an_encoding_not_asked_for_is_unreadable() -> None:
    """The body decoder refuses them rather than handing on half of a body."""
    decoder = bodies._Decoder("gzip")
    with pytest.raises(bodies.BodyUnreadable):
        list(decoder.feed(b"\x1f\x8b\x08\x00not gzip at all"))
    with pytest.raises(bodies.BodyUnreadable):
        bodies._Decoder("br")


# -- the token endpoint (which the sandbox's faults do not reach): a small server of its own --

_GRANT = json.dumps({"access_token": "a", "expires_in": 3600, "token_type": "bearer",
                     "scope": "bookkeeping", "refresh_token": "r"}).encode()


@asynccontextmanager
async def _token_endpoint(mode: str) -> AsyncIterator[str]:
    """An HTTP server answering every request with a valid grant, sent as ``mode`` says:
    ``bomb`` (gzip, followed by 256 MiB of spaces) or ``drip`` (a byte every 300 ms)."""

    if mode == "bomb":  # made before serving, so the loop is not held up while serving
        packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        body = packer.compress(_GRANT) + b"".join(
            packer.compress(b" " * MiB) for _ in range(256)) + packer.flush()
        extra = b"Content-Encoding: gzip\r\n"
    else:
        body, extra = _GRANT + b" " * 1000, b""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra
                         + f"Content-Length: {len(body)}\r\n\r\n".encode())
            if mode == "bomb":
                writer.write(body)
            else:
                for start in range(len(body)):
                    writer.write(body[start:start + 1])
                    await writer.drain()
                    await asyncio.sleep(0.3)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/oauth-v1"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("mode", ["bomb", "drip"])
async def test_a_token_answer_is_read_within_its_bound_and_its_time(
    sandbox: SandboxHandle, store: SqliteTokenStore, provider: TracerProvider,
    clock: MovableClock, mode: str,
) -> None:
    """A grant may have been made (a code or refresh token spent): an answer that cannot be
    read whole in time and size is one whose outcome is unknown, never one taken half-read."""
    async with _token_endpoint(mode) as auth_url:
        settings = settings_for(sandbox, fortnox_auth_base_url=auth_url, http_timeout_s=5.0)
        async with FortnoxAdapter(settings, store, tracer_provider=provider, clock=clock,
                                  retry=FAST_RETRY) as adapter:
            exchange = adapter.oauth.exchange_code("code", sandbox.redirect_uri, None)
            outcome, growth = await _peak_growth(asyncio.wait_for(exchange, MUST_END_WITHIN_S))
    assert isinstance(outcome, GrantAnswerLost), outcome
    assert growth < MEMORY_GROWTH_LIMIT, f"{growth / MiB:.0f} MiB"
