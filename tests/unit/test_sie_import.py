"""ImportSie's own logic through its one public door (``SieImport.run``), on fakes of its ports
(``tests/harness/fakes``): which years are imported, a file of another year or company or no
SIE at all refused before any byte of it reaches the caller, how each year's vouchers changed
since its previous import, and how an import that did not succeed is recorded.

The SIE files are written here, small; the parser is the real one, run in this process."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date
from typing import cast

import pytest

from core.connections import ConnectionRecords, ConnectionState
from core.errors import (
    DeadlineExceeded,
    DomainError,
    FortnoxScopeMissing,
    FortnoxUnavailable,
    InvalidRequest,
    ReconnectRequired,
    SieInvalid,
    StorageUnavailable,
)
from core.fortnox_api import FileConnection, FinancialYear, FortnoxApi
from core.imports import (
    ChangeKind,
    ImportHistory,
    ImportKind,
    ImportRecord,
    ImportStatus,
    Progress,
)
from core.sie_import import (
    ImportEvent,
    ImportSummary,
    RawChunk,
    SieImport,
    SieImportRequest,
    YearSummary,
)
from core.sie_parse import RecordBatch, SieParsers
from core.year_selection import YearChoice
from tests.harness.fakes.clock import ManualClock
from tests.harness.fakes.fortnox import Books, ScriptedFortnox
from tests.harness.fakes.imports import (
    InlineParsers,
    MemoryConnections,
    MemoryImportHistory,
    connected,
)

TENANT = "t1"
ORG = "556677-8899"


def _year(year_id: int, year: int) -> FinancialYear:
    return FinancialYear(year_id, date(year, 1, 1), date(year, 12, 31), "BAS 2024", "ACCRUAL")


#: Fortnox lists them in no particular order; the clock says 2026-11-25, so 2027 has not begun.
YEARS = (_year(6, 2026), _year(2, 2022), _year(7, 2027), _year(4, 2024), _year(3, 2023),
         _year(5, 2025))

Voucher = tuple[str, int, str]  # series, number, the amount in kronor (debit 1910, credit 3000)


def sie(year: int, vouchers: Sequence[Voucher] = (("A", 1, "100.00"),), *, org: str = ORG,
        rar: int | None = None, head: str = "#FLAGGA 0\r\n", closing: str | None = None,
        unbalanced: bool = False, no_rar: bool = False) -> bytes:
    """A small SIE 4 file of ``year`` (its ``#RAR 0`` says ``rar`` if given)."""
    rar = rar or year
    total = sum(float(a) for _, _, a in vouchers)
    lines = [
        head.rstrip("\r\n"), '#PROGRAM "Fake" 1', "#FORMAT PC8", f"#GEN {year}0101",
        "#SIETYP 4", f"#ORGNR {org}", '#FNAMN "Fake AB"', f"#RAR 0 {rar}0101 {rar}1231",
        '#KONTO 1910 "Kassa"', '#KONTO 3000 "Försäljning"',
        "#IB 0 1910 0.00", f"#UB 0 1910 {closing or f'{total:.2f}'}",
        f"#RES 0 3000 {-total:.2f}",
    ]
    for series, number, amount in vouchers:
        lines += [f'#VER {series} {number} {year}0115 "Sale {number}"', "{",
                  f"#TRANS 1910 {{}} {amount}", f"#TRANS 3000 {{}} -{amount}", "}"]
    if no_rar:
        lines.remove(f"#RAR 0 {rar}0101 {rar}1231")
    if unbalanced:  # an error of the file: its rows do not sum to zero
        lines += [f'#VER B 1 {year}0116 "Bad"', "{", "#TRANS 1910 {} 10.00",
                  "#TRANS 3000 {} -5.00", "}"]
    return ("\r\n".join(lines) + "\r\n").encode("cp437")


class World:
    """One Fortnox company with a file per year, its connection, and the import history."""

    def __init__(self, years: tuple[FinancialYear, ...] = YEARS, org: str = ORG) -> None:
        self.clock = ManualClock()
        self.fortnox = ScriptedFortnox(Books(years=years))
        self.fortnox.sie_files = {y.id: sie(y.from_date.year) for y in years}
        self.connections = MemoryConnections(connected(TENANT, org))
        self.history = MemoryImportHistory(self.clock)
        self.parsers = InlineParsers()
        self.use_case = SieImport(cast(FortnoxApi, self.fortnox),
                                  cast(ConnectionRecords, self.connections),
                                  cast(ImportHistory, self.history),
                                  cast(SieParsers, self.parsers), self.clock)

    async def run(self, years: tuple[YearChoice, ...] = (), **options: object
                  ) -> list[ImportEvent]:
        request = SieImportRequest(TENANT, years, **options)  # type: ignore[arg-type]
        events = [e async for e in self.use_case.run(request)]
        await self.use_case.aclose()
        self.clock.advance(60)  # the next import starts later
        return events

    async def failing(self, years: tuple[YearChoice, ...] = (), **options: object
                      ) -> tuple[list[ImportEvent], DomainError]:
        """The events an import sent before the error it raised."""
        events: list[ImportEvent] = []
        request = SieImportRequest(TENANT, years, **options)  # type: ignore[arg-type]
        try:
            async for event in self.use_case.run(request):
                events.append(event)
        except DomainError as exc:
            error = exc
        else:
            pytest.fail("the import succeeded")
        await self.use_case.aclose()
        self.clock.advance(60)
        return events, error

    def last(self) -> ImportRecord:
        return max(self.history.imports.values(), key=lambda i: i.order).record


def _summaries(events: list[ImportEvent]) -> list[YearSummary]:
    return [e for e in events if isinstance(e, YearSummary)]


def _raw(events: list[ImportEvent], year_id: int) -> list[RawChunk]:
    return [e for e in events if isinstance(e, RawChunk) and e.financial_year_id == year_id]


@pytest.fixture
def world() -> World:
    return World()


# -- which years -----------------------------------------------------------------------------

async def test_by_default_the_current_year_and_the_two_before_it(world: World) -> None:
    events = await world.run()
    assert [s.year.id for s in _summaries(events)] == [4, 5, 6]  # oldest first; 2027 not begun
    summary = events[-1]
    assert isinstance(summary, ImportSummary)
    assert [y.id for y in (s.year for s in summary.years)] == [4, 5, 6]
    assert summary.total_vouchers == 3 and summary.total_bytes == sum(
        len(world.fortnox.sie_files[i]) for i in (4, 5, 6))


async def test_before_the_current_year_is_listed_the_latest_begun_ones_are_taken() -> None:
    world = World(years=(_year(2, 2022), _year(3, 2023)))  # nothing for 2024-2026
    assert [s.year.id for s in _summaries(await world.run())] == [2, 3]


async def test_years_named_by_id_or_by_a_date_are_taken_once_oldest_first(world: World) -> None:
    events = await world.run((6, date(2023, 6, 30), 3, 7))
    assert [s.year.id for s in _summaries(events)] == [3, 6, 7]
    assert [y.financial_year_id for y in world.last().years] == [3, 6, 7]


async def test_a_year_fortnox_does_not_have_fails_the_import_before_any_download(
    world: World,
) -> None:
    events, error = await world.failing((5, 99, date(2031, 1, 1)))
    assert isinstance(error, InvalidRequest) and error.reason == "FINANCIAL_YEAR_NOT_FOUND"
    assert [v.field for v in error.violations] == ["years[1]", "years[2]"]
    assert world.fortnox.downloads == [] and not _summaries(events)
    record = world.last()
    assert (record.status, record.error_reason) == (ImportStatus.FAILED,
                                                    "FINANCIAL_YEAR_NOT_FOUND")


async def test_a_company_whose_years_have_not_begun_has_nothing_to_import() -> None:
    world = World(years=(_year(7, 2027),))
    _, error = await world.failing()
    assert error.reason == "FINANCIAL_YEAR_NOT_FOUND" and world.fortnox.downloads == []


# -- the file is the one asked for -----------------------------------------------------------

@pytest.mark.parametrize("chunk_bytes", [7, 4096])
async def test_a_file_of_another_year_is_refused_before_any_byte_reaches_the_caller(
    world: World, chunk_bytes: int,
) -> None:
    world.fortnox.chunk_bytes = chunk_bytes
    world.fortnox.sie_files[6] = sie(2026, rar=2025)  # Fortnox ignored financialyear=
    events, error = await world.failing()
    assert isinstance(error, SieInvalid) and error.reason == "SIE_YEAR_MISMATCH"
    assert error.metadata == {"financial_year_id": "6", "expected": "2026-01-01..2026-12-31",
                              "received": "2025-01-01..2025-12-31"}
    assert _raw(events, 6) == [] and [s.year.id for s in _summaries(events)] == [4, 5]
    assert (world.last().status, world.last().error_reason) == (ImportStatus.FAILED,
                                                                "SIE_YEAR_MISMATCH")
    assert world.parsers.open == 0 and world.fortnox.downloads[-1].closed


@pytest.mark.parametrize("chunk_bytes", [5, 64, 100_000])
async def test_a_years_bytes_reach_the_caller_whole_and_in_order(world: World,
                                                                 chunk_bytes: int) -> None:
    world.fortnox.chunk_bytes = chunk_bytes
    events = await world.run((6,))
    raw = _raw(events, 6)
    assert b"".join(c.data for c in raw) == world.fortnox.sie_files[6]
    assert [c.offset for c in raw] == [sum(len(c.data) for c in raw[:i])
                                       for i in range(len(raw))]
    assert [c.last for c in raw] == [False] * (len(raw) - 1) + [True]


async def test_a_year_without_raw_bytes_asked_for_sends_none(world: World) -> None:
    assert _raw(await world.run((6,), stream_raw=False), 6) == []


@pytest.mark.parametrize("written", ["5566778899", "16556677-8899", "165566778899"])
async def test_the_connected_company_written_otherwise_is_the_same_company(
    world: World, written: str,
) -> None:
    world.fortnox.sie_files[6] = sie(2026, org=written)
    assert [s.year.id for s in _summaries(await world.run((6,)))] == [6]


async def test_a_file_of_another_company_is_refused_before_any_byte_reaches_the_caller(
    world: World,
) -> None:
    world.fortnox.sie_files[6] = sie(2026, org="212000-0142")
    events, error = await world.failing((6,))
    assert error.reason == "SIE_COMPANY_MISMATCH"
    assert (error.metadata["expected"], error.metadata["received"]) == (
        "556677-8899", "212000-0142")
    assert _raw(events, 6) == [] and world.last().error_reason == "SIE_COMPANY_MISMATCH"


async def test_a_connection_that_names_no_company_compares_none() -> None:
    world = World(org="")
    world.fortnox.sie_files[6] = sie(2026, org="212000-0142")
    assert [s.year.id for s in _summaries(await world.run((6,)))] == [6]


@pytest.mark.parametrize(("body", "problem"), [
    (b"<html><body>Logga in</body></html>\r\n", "the first line is not a #-record"),
    (b'#KONTO 1910 "Kassa"\r\n' * 10, "neither #FLAGGA nor #SIETYP"),
])
async def test_a_file_that_is_no_sie_is_refused_whatever_the_policy(
    world: World, body: bytes, problem: str,
) -> None:
    world.fortnox.sie_files[6] = body
    events, error = await world.failing((6,), allow_unbalanced=True)
    assert error.reason == "SIE_NOT_SIE" and problem in error.metadata["problem"]
    assert _raw(events, 6) == [] and world.last().error_reason == "SIE_NOT_SIE"


async def test_a_file_that_names_no_year_is_not_refused_for_it(world: World) -> None:
    world.fortnox.sie_files[6] = sie(2026, no_rar=True)
    events = await world.run((6,))
    (summary,) = _summaries(events)
    assert summary.read.financial_years == () and summary.read.vouchers == 1


async def test_empty_chunks_from_fortnox_are_passed_over(world: World) -> None:
    data = world.fortnox.sie_files[6]
    world.fortnox.sie_chunks[6] = [b"", data[:100], b"", data[100:], b""]
    events = await world.run((6,))
    assert b"".join(c.data for c in _raw(events, 6)) == data
    assert all(c.data for c in _raw(events, 6))


async def test_only_the_head_is_searched_for_the_sie_mark(world: World) -> None:
    """A mark past the head's bytes does not count: the file is judged on its head."""
    world.fortnox.sie_files[6] = b"#KONTO 1910 x\r\n" * 5000 + sie(2026)
    _, error = await world.failing((6,))
    assert error.reason == "SIE_NOT_SIE"


# -- what changed since the year's previous import -------------------------------------------

def _kinds(events: list[ImportEvent]) -> dict[int, ChangeKind]:
    return {s.year.id: s.change_kind for s in _summaries(events)}


async def test_each_years_changes_are_counted_against_its_last_successful_import(
    world: World,
) -> None:
    assert _kinds(await world.run((5, 6))) == {5: ChangeKind.FIRST_IMPORT,
                                               6: ChangeKind.FIRST_IMPORT}
    assert _kinds(await world.run((5, 6))) == {5: ChangeKind.UNCHANGED,
                                               6: ChangeKind.UNCHANGED}
    world.fortnox.sie_files[6] = sie(2026, [("A", 1, "100.00"), ("A", 2, "5.00")])
    (changed,) = _summaries(await world.run((6,)))
    assert changed.change_kind is ChangeKind.CHANGED
    assert (changed.changes.added, changed.changes.changed, changed.changes.removed) == (1, 0, 0)
    world.fortnox.sie_files[6] = sie(2026, [("A", 2, "7.00")])
    (again,) = _summaries(await world.run((6,)))
    assert (again.changes.added, again.changes.changed, again.changes.removed) == (0, 1, 1)


async def test_other_bytes_with_the_same_vouchers_are_unchanged(world: World) -> None:
    await world.run((6,))
    world.fortnox.sie_files[6] = sie(2026, head="#FLAGGA 1\r\n")  # another byte, same vouchers
    (same,) = _summaries(await world.run((6,)))
    assert same.change_kind is ChangeKind.UNCHANGED
    assert same.changes.previous_sha256 != same.sha256


async def test_stated_balances_changed_alone_are_a_change(world: World) -> None:
    await world.run((6,))
    world.fortnox.sie_files[6] = sie(2026, closing="90.00")
    (changed,) = _summaries(await world.run((6,)))
    assert changed.change_kind is ChangeKind.CHANGED and changed.changes.other_changed


async def test_a_year_of_many_vouchers_is_compared_whole(world: World) -> None:
    """Digests are written in batches while the file streams; every batch counts."""
    many = [("A", n, "1.00") for n in range(1, 6002)]
    world.fortnox.sie_files[6] = sie(2026, many)
    await world.run((6,))
    many[-1] = ("A", 6001, "2.00")
    many[0] = ("A", 1, "3.00")
    world.fortnox.sie_files[6] = sie(2026, many)
    (summary,) = _summaries(await world.run((6,)))
    assert (summary.changes.changed, summary.changes.added, summary.changes.removed) == (
        2, 0, 0)


async def test_a_failed_import_is_no_reference_for_the_next(world: World) -> None:
    await world.run((6,))
    world.fortnox.sie_files[6] = sie(2026, [("A", 1, "100.00"), ("A", 2, "5.00")])
    world.fortnox.sie_failures[6] = FortnoxUnavailable("Fortnox stopped sending.")
    await world.failing((6,))
    del world.fortnox.sie_failures[6]
    (summary,) = _summaries(await world.run((6,)))
    assert summary.changes.added == 1  # against the first import, not the failed one


async def test_a_previous_import_that_kept_no_fingerprints_makes_the_changes_unknown(
    world: World,
) -> None:
    await world.run((6,))
    world.history.digests.clear()  # an import from before vouchers were fingerprinted
    world.fortnox.sie_files[6] = sie(2026, [("A", 1, "100.00"), ("A", 2, "5.00")])
    (summary,) = _summaries(await world.run((6,)))
    assert summary.change_kind is ChangeKind.UNKNOWN


async def test_a_success_drops_the_fingerprints_it_supersedes(world: World) -> None:
    await world.run((5, 6))
    first = world.last().import_id
    await world.run((6,))
    assert (first, 5) in world.history.digests and (first, 6) not in world.history.digests


# -- how an import is recorded ---------------------------------------------------------------

async def test_a_success_is_recorded_with_its_years_and_on_the_connection(world: World
                                                                          ) -> None:
    started = world.clock()
    events = await world.run((6,))
    record = world.last()
    assert record.status is ImportStatus.SUCCEEDED and record.kind is ImportKind.SIE
    (year,) = record.years
    (summary,) = _summaries(events)
    assert (year.financial_year_id, year.sha256, year.byte_size, year.voucher_count) == (
        6, summary.sha256, len(world.fortnox.sie_files[6]), 1)
    connection = world.connections.connections[TENANT]
    assert connection.last_sie_import_at == started
    assert isinstance(events[-1], ImportSummary) and world.parsers.open == 0
    assert summary.controls_passed and summary.errors == 0


async def test_a_connection_that_must_log_in_again_starts_no_import(world: World) -> None:
    world.connections.connections[TENANT] = connected(
        TENANT, state=ConnectionState.RECONNECT_REQUIRED)
    _, error = await world.failing()
    assert isinstance(error, ReconnectRequired) and world.history.imports == {}


async def test_fortnox_failing_mid_file_is_recorded_failed_with_its_reason(world: World
                                                                          ) -> None:
    world.fortnox.chunk_bytes = 50
    world.fortnox.sie_failures[5] = FortnoxUnavailable("Fortnox stopped sending.")
    _, error = await world.failing()
    assert error.reason == "FORTNOX_UNAVAILABLE"
    record = world.last()
    assert (record.status, record.error_reason) == (ImportStatus.FAILED, "FORTNOX_UNAVAILABLE")
    assert [y.financial_year_id for y in record.years] == [4]
    assert not [k for k in world.history.digests if k[0] == record.import_id]  # dropped
    assert world.parsers.open == 0 and world.fortnox.downloads[-1].closed


async def test_an_unexpected_error_is_recorded_as_an_internal_one(world: World) -> None:
    world.fortnox.sie_failures[6] = RuntimeError("a bug")
    with pytest.raises(RuntimeError):
        await world.run((6,))
    record = world.last()
    assert (record.status, record.error_reason) == (ImportStatus.FAILED, "INTERNAL_ERROR")
    assert "a bug" not in record.error_message


async def test_a_passed_deadline_is_recorded_as_cancelled(world: World) -> None:
    world.fortnox.sie_failures[6] = DeadlineExceeded("The deadline passed.")
    _, error = await world.failing((6,))
    assert error.reason == "DEADLINE_EXCEEDED"
    assert (world.last().status, world.last().error_reason) == (ImportStatus.CANCELLED,
                                                                "CANCELLED")


async def test_a_caller_that_goes_away_leaves_the_import_cancelled(world: World) -> None:
    """The call is cancelled (the client went away) while Fortnox is mid-file."""
    world.fortnox.chunk_bytes = 64
    world.fortnox.sie_stall_after[6] = 3

    async def call() -> None:
        async for _ in world.use_case.run(SieImportRequest(TENANT, (6,))):
            pass

    task = asyncio.create_task(call())
    await asyncio.wait_for(world.fortnox.sie_stalled.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await world.use_case.aclose()
    record = world.last()
    assert (record.status, record.error_reason) == (ImportStatus.CANCELLED, "CANCELLED")
    assert world.parsers.open == 0 and world.fortnox.downloads[-1].closed
    assert world.history.digests == {}


async def test_an_end_the_history_cannot_record_is_left_to_the_sweeper(world: World) -> None:
    world.fortnox.sie_files[6] = sie(2026, rar=2025)
    world.history.failing["finish"] = StorageUnavailable("The database is away.")
    _, error = await world.failing((6,))
    assert error.reason == "SIE_YEAR_MISMATCH"  # the import's own error, not the storage's
    assert world.last().status is ImportStatus.RUNNING
    del world.history.failing["finish"]
    world.clock.advance(61)  # its heartbeats have stopped
    assert await world.history.fail_abandoned() == 1
    assert (world.last().status, world.last().error_reason) == (ImportStatus.FAILED,
                                                                "IMPORT_INTERRUPTED")


async def test_a_running_import_signals_and_survives_a_lost_signal() -> None:
    world = World()
    world.history = MemoryImportHistory(world.clock, heartbeat_every_s=0.01)
    world.history.failing["heartbeat"] = StorageUnavailable("The database is away.")
    gate = asyncio.Event()
    world.use_case = SieImport(cast(FortnoxApi, world.fortnox),
                               cast(ConnectionRecords, world.connections),
                               cast(ImportHistory, world.history),
                               cast(SieParsers, world.parsers), world.clock)
    events = world.use_case.run(SieImportRequest(TENANT, (6,)))
    while not isinstance(event := await anext(events), Progress) or event.stage != "downloading":
        pass  # on into the recorded part of the import: it signals while the caller waits

    async def heal_then_wait_for_a_signal() -> None:
        await asyncio.sleep(0.05)  # a few beats fail meanwhile
        del world.history.failing["heartbeat"]
        await world.history.beaten.wait()
        gate.set()

    await asyncio.wait_for(heal_then_wait_for_a_signal(), 30)
    rest = [e async for e in events]
    assert gate.is_set() and isinstance(rest[-1], ImportSummary)


async def test_errors_in_a_file_fail_the_import_only_when_asked(world: World) -> None:
    world.fortnox.sie_files[6] = sie(2026, unbalanced=True)
    (summary,) = _summaries(await world.run((6,)))
    assert summary.errors > 0
    events, error = await world.failing((6,), fail_on_error=True)
    assert error.reason == "SIE_INVALID" and error.metadata["financial_year_id"] == "6"
    assert _summaries(events)  # the year's summary came first
    assert world.last().status is ImportStatus.FAILED


# -- records and their documents -------------------------------------------------------------

async def test_records_carry_each_vouchers_number_of_documents(world: World) -> None:
    world.fortnox.file_connections[6] = [
        FileConnection("f1", voucher_series="A", voucher_number=1, voucher_year=6),
        FileConnection("f2", voucher_series="A", voucher_number=1, voucher_year=6)]
    events = await world.run((6,), include_records=True)
    batches = [e for e in events if isinstance(e, RecordBatch)]
    assert [b.document_counts for b in batches if b.vouchers] == [(2,)]


async def test_the_documents_are_listed_beside_the_download_and_hold_up_only_the_records(
        world: World) -> None:
    world.fortnox.sie_files[6] = sie(2026, [("A", n, "10.00") for n in range(1, 400)])
    world.fortnox.file_connections[6] = [
        FileConnection("f1", voucher_series="A", voucher_number=3, voucher_year=6),
        FileConnection("f2", voucher_series="A", voucher_number=3, voucher_year=6),
        FileConnection("f3", voucher_series="A", voucher_number=7, voucher_year=6)]
    world.fortnox.file_connections_gate = gate = asyncio.Event()
    run = world.use_case.run(SieImportRequest(TENANT, (6,), include_records=True))
    before: list[ImportEvent] = []
    async for event in run:  # the listing stands still after its first connection...
        before.append(event)
        if isinstance(event, RawChunk) and event.last:
            break
    # ...while the whole file was downloaded, sent and parsed, and no record went without
    # its count
    assert b"".join(e.data for e in _raw(before, 6)) == world.fortnox.sie_files[6]
    assert not [e for e in before if isinstance(e, RecordBatch)]
    gate.set()
    after = [e async for e in run]
    await world.use_case.aclose()
    batches = [e for e in after if isinstance(e, RecordBatch) and e.vouchers]
    counts = {v.number: c for b in batches
              for v, c in zip(b.vouchers, b.document_counts or (), strict=True)}
    assert len(counts) == 399 and all(b.document_counts is not None for b in batches)
    assert {n: c for n, c in counts.items() if c} == {"3": 2, "7": 1}
    assert isinstance(after[-1], ImportSummary)
    assert world.fortnox.calls == ["sie 6", "connections 6"]  # listed once the file came


async def test_the_listing_is_waited_for_with_progress_once_the_file_is_in(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.sie_import.LISTING_PROGRESS_EVERY_S", 0.01)
    world.fortnox.file_connections[6] = [
        FileConnection("f1", voucher_series="A", voucher_number=1, voucher_year=6),
        FileConnection("f2", voucher_series="A", voucher_number=1, voucher_year=6)]
    world.fortnox.file_connections_gate = gate = asyncio.Event()
    run = world.use_case.run(SieImportRequest(TENANT, (6,), include_records=True))
    async for event in run:
        if isinstance(event, Progress) and event.stage.value == "fetching_documents":
            assert "1 so far" in event.message
            break
    gate.set()
    rest = [e async for e in run]
    await world.use_case.aclose()
    assert [b.document_counts for b in rest if isinstance(b, RecordBatch) and b.vouchers] == [
        (2,)]


async def test_a_listing_that_fails_fails_the_import(world: World) -> None:
    world.fortnox.file_connections_failure = FortnoxUnavailable("Fortnox is down.")
    _, error = await world.failing((6,), include_records=True)
    assert error.reason == "FORTNOX_UNAVAILABLE"
    assert world.last().status is ImportStatus.FAILED


async def test_a_caller_that_goes_away_mid_listing_leaves_no_listing_running(
        world: World) -> None:
    world.fortnox.file_connections[6] = [
        FileConnection("f1", voucher_series="A", voucher_number=1, voucher_year=6),
        FileConnection("f2", voucher_series="A", voucher_number=1, voucher_year=6)]
    world.fortnox.file_connections_gate = asyncio.Event()  # never set
    waiting = asyncio.Event()

    async def call() -> None:
        async for event in world.use_case.run(SieImportRequest(TENANT, (6,),
                                                               include_records=True)):
            if isinstance(event, Progress) and event.stage.value == "fetching_documents":
                waiting.set()

    task = asyncio.create_task(call())
    await asyncio.wait_for(waiting.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await world.use_case.aclose()
    assert world.last().status is ImportStatus.CANCELLED
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_without_records_no_documents_are_listed(world: World) -> None:
    await world.run((6,))
    assert world.fortnox.calls == ["sie 6"]


async def test_without_the_scope_for_documents_their_numbers_are_unknown(world: World) -> None:
    world.fortnox.file_connections_failure = FortnoxScopeMissing("No connectfile scope.")
    events = await world.run((6,), include_records=True)
    batches = [e for e in events if isinstance(e, RecordBatch) and e.vouchers]
    assert batches and all(b.document_counts is None for b in batches)


async def test_a_wait_for_a_parser_is_said(world: World) -> None:
    world.parsers.all_busy = True
    events = await world.run((6,))
    assert any(isinstance(e, Progress) and "waiting for a free SIE parser" in e.message
               for e in events)
    assert {e.stage.value for e in events if isinstance(e, Progress)} >= _ALL_STAGES


_ALL_STAGES = {"authorizing", "resolving_years", "downloading", "controlling", "done"}
