"""ExportVouchers' own logic, every branch, on fakes of its two ports (``tests/harness/fakes``):
the claim, a busy claim waited for or answered EXPORT_IN_PROGRESS, the take-over of a dead
worker's claim, the look-up by marker in every series and year an unsettled attempt used, lost
answers, a lost claim, Fortnox's refusals, and what a request may and may not repeat.

The fake history's clock is the database's: a test moves it to end a lease. A request whose
deadline has passed waits for no busy claim, so EXPORT_IN_PROGRESS comes at once."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import cast

import pytest

from core.errors import (
    FortnoxOutcomeUnknown,
    FortnoxRateLimited,
    InvalidRequest,
    RequestIdReused,
)
from core.fortnox_api import FortnoxApi, Voucher
from core.voucher_export.exporter import VoucherExporter
from core.voucher_export.history import (
    ClaimStatus,
    ExportHistory,
    ExportInProgress,
    ExportRecord,
    ExportStatus,
    Place,
)
from core.voucher_export.model import (
    ExportRequest,
    ExportRow,
    ExportVoucher,
    Outcome,
    Target,
    VoucherResult,
    voucher_marker,
)
from tests.harness.fakes.clock import ManualClock
from tests.harness.fakes.exports import MemoryExportHistory
from tests.harness.fakes.fortnox import Answer, Books, ScriptedFortnox

TENANT = "t1"
LEASE = timedelta(seconds=60)
DAY = date(2026, 3, 1)  # in year 3


def _voucher(ext: str = "v1", day: date = DAY, *, cost_center: str = "", project: str = "",
             account: int = 1910) -> ExportVoucher:
    return ExportVoucher(ext, day, "Bokslut", (
        ExportRow(account, debit=12_550, cost_center=cost_center, project=project),
        ExportRow(3000, credit=12_550)))


def _request(*vouchers: ExportVoucher, request_id: str = "r1", series: str = "",
             deadline: float | None = None, validate_only: bool = False,
             target: Target = Target.FORTNOX_API, tenant: str = TENANT) -> ExportRequest:
    return ExportRequest(tenant, request_id, vouchers or (_voucher(),), series=series,
                         validate_only=validate_only, target=target, requested_by="me",
                         deadline=deadline)


def _passed() -> float:
    """A deadline already passed: a busy claim is answered at once."""
    return time.monotonic()


class World:
    """One Fortnox company and one export database, and exporters (each a process) on them."""

    def __init__(self, books: Books | None = None) -> None:
        self.clock = ManualClock()
        self.history = MemoryExportHistory(self.clock)
        self.fortnox = ScriptedFortnox(books or Books())

    def exporter(self) -> VoucherExporter:
        return VoucherExporter(cast(FortnoxApi, self.fortnox),
                               cast(ExportHistory, self.history), "I", lease=LEASE,
                               clock=self.clock)

    def record(self, ext: str = "v1") -> ExportRecord:
        record = self.history.record(TENANT, ext)
        assert record is not None
        return record

    async def held_by_a_dead_worker(self, voucher: ExportVoucher, *, series: str = "I",
                                    year: int = 3, status: ExportStatus = ExportStatus.PENDING
                                    ) -> None:
        """A claim whose worker died after (maybe) posting: ``PENDING`` or ``UNKNOWN``."""
        claim = await self.history.claim(
            TENANT, voucher.external_id, "r0", voucher.digest(),
            voucher_marker(TENANT, voucher.external_id), year, "me", series=series,
            owner="dead", lease=LEASE)
        assert claim.status is ClaimStatus.TAKEN and claim.fence is not None
        if status is ExportStatus.UNKNOWN:
            await self.history.mark_unknown(TENANT, voucher.external_id, claim.fence)

    def booked_elsewhere(self, voucher: ExportVoucher, series: str, year: int = 3) -> None:
        """The dead worker's POST reached Fortnox: the voucher is booked with its marker."""
        marker = voucher_marker(TENANT, voucher.external_id)
        number = 1 + sum(1 for v in self.fortnox.booked if (v.series, v.year) == (series, year))
        self.fortnox.booked.append(Voucher(series, number, year, DAY, voucher.description,
                                           f"{marker} {voucher.external_id}"))


@pytest.fixture
def world() -> World:
    return World()


# -- the plain path ----------------------------------------------------------------------------

async def test_a_voucher_is_claimed_posted_once_and_recorded(world: World) -> None:
    result = await world.exporter().export(_request())
    (only,) = result.results
    assert (only.outcome, only.series, only.number, only.financial_year_id) == (
        Outcome.CREATED, "I", 1, 3)
    assert len(world.fortnox.posts) == 1
    year_id, posted = world.fortnox.posts[0]
    assert year_id == 3 and posted.series == "I"
    assert posted.comments.startswith(voucher_marker(TENANT, "v1"))
    assert [r.debit for r in posted.rows] == [Decimal("125.50"), 0]
    record = world.record()
    assert record.status is ExportStatus.CREATED and record.lease_expires_at is None
    assert world.fortnox.lookups == []  # a first attempt looks nothing up
    assert (TENANT, "r1") in world.history.finished


async def test_the_same_request_again_posts_nothing_and_answers_the_same(world: World) -> None:
    exporter = world.exporter()
    first = await exporter.export(_request())
    again = await exporter.export(_request())
    assert again.results == first.results
    assert len(world.fortnox.posts) == 1


async def test_another_request_for_an_exported_voucher_is_already_exported(world: World
                                                                           ) -> None:
    await world.exporter().export(_request())
    (result,) = (await world.exporter().export(_request(request_id="r2"))).results
    assert (result.outcome, result.number, result.request_id) == (
        Outcome.ALREADY_EXPORTED, 1, "r1")
    assert len(world.fortnox.posts) == 1


async def test_a_request_id_with_other_vouchers_is_refused_before_anything(world: World
                                                                          ) -> None:
    await world.exporter().export(_request())
    with pytest.raises(RequestIdReused):
        await world.exporter().export(_request(_voucher("v2")))
    assert len(world.fortnox.posts) == 1 and world.history.record(TENANT, "v2") is None


async def test_the_named_series_is_used_and_must_exist(world: World) -> None:
    (result,) = (await world.exporter().export(_request(series="A"))).results
    assert result.series == "A"
    with pytest.raises(InvalidRequest) as caught:
        await world.exporter().export(_request(_voucher("v2"), request_id="r2", series="X"))
    assert caught.value.reason == "VOUCHERS_INVALID"
    assert [v.field for v in caught.value.violations] == ["voucher_series"]


async def test_what_only_fortnox_knows_is_checked_before_any_post() -> None:
    world = World(Books(locked_until=date(2026, 3, 31)))
    vouchers = (_voucher("v1"), _voucher("v2", date(2030, 1, 1)), _voucher("v3", account=1000),
                _voucher("v4", date(2026, 4, 1), account=1234))
    with pytest.raises(InvalidRequest) as caught:
        await world.exporter().export(_request(*vouchers))
    assert {v.field for v in caught.value.violations} == {
        "vouchers[0].transaction_date", "vouchers[1].transaction_date",
        "vouchers[2].transaction_date", "vouchers[2].rows[0].account",
        "vouchers[3].rows[0].account"}
    assert world.fortnox.posts == [] and world.history.rows == {}


async def test_cost_centres_and_projects_are_read_only_when_rows_name_them(world: World
                                                                          ) -> None:
    fetched: list[str] = []
    real_cc, real_pr = world.fortnox.cost_centers, world.fortnox.projects

    async def cost_centers(tenant: str, **kw: object) -> object:
        fetched.append("cost_centers")
        return await real_cc(tenant)

    async def projects(tenant: str, **kw: object) -> object:
        fetched.append("projects")
        return await real_pr(tenant)

    world.fortnox.cost_centers = cost_centers  # type: ignore[method-assign,assignment]
    world.fortnox.projects = projects  # type: ignore[method-assign,assignment]
    await world.exporter().export(_request())
    assert fetched == []
    await world.exporter().export(_request(_voucher("v2", cost_center="CC1", project="P1"),
                                           request_id="r2"))
    assert fetched == ["cost_centers", "projects"]
    with pytest.raises(InvalidRequest) as caught:
        await world.exporter().export(_request(_voucher("v3", cost_center="NONE"),
                                               request_id="r3"))
    assert [v.field for v in caught.value.violations] == ["vouchers[0].rows[0].cost_center"]


async def test_validate_only_posts_nothing_and_says_what_is_stored(world: World) -> None:
    await world.exporter().export(_request())
    result = await world.exporter().export(_request(
        _voucher("v1"), _voucher("v2"), request_id="r2", validate_only=True))
    assert [(r.external_id, r.outcome) for r in result.results] == [
        ("v1", Outcome.ALREADY_EXPORTED), ("v2", Outcome.VALID)]
    assert len(world.fortnox.posts) == 1 and world.history.record(TENANT, "v2") is None
    assert (TENANT, "r2") not in world.history.requests


async def test_a_request_of_only_settled_vouchers_asks_fortnox_nothing(world: World) -> None:
    await world.exporter().export(_request())
    world.fortnox.books.years = ()  # any question about the books would now fail validation
    (result,) = (await world.exporter().export(_request(request_id="r2"))).results
    assert result.outcome is Outcome.ALREADY_EXPORTED


async def test_results_come_in_request_order_whatever_order_they_settle_in(world: World
                                                                          ) -> None:
    gate = asyncio.Event()

    async def slow_first() -> None:
        await gate.wait()

    async def open_gate() -> None:
        gate.set()

    world.fortnox.before_post.extend([slow_first, open_gate])
    result = await world.exporter().export(_request(_voucher("v1"), _voucher("v2")))
    assert [r.external_id for r in result.results] == ["v1", "v2"]
    assert [r.number for r in result.results] == [2, 1]  # v2 reached Fortnox first


# -- the SIE file target ---------------------------------------------------------------------

async def test_a_sie_file_names_the_connected_company_or_none(world: World) -> None:
    result = await world.exporter().export(_request(target=Target.SIE_4I_FILE))
    assert b"Fake AB" in result.sie_file and world.fortnox.posts == []
    world.fortnox.unknown_tenants.add("file-only")
    alone = await world.exporter().export(_request(target=Target.SIE_4I_FILE,
                                                   tenant="file-only"))
    assert alone.sie_file and b"Fake AB" not in alone.sie_file
    assert world.history.rows == {}


# -- Fortnox refuses -------------------------------------------------------------------------

async def test_a_refused_voucher_is_recorded_with_fortnox_reason_and_tried_again_later(
    world: World,
) -> None:
    world.fortnox.posts_answer.append(Answer.REJECT)
    (refused,) = (await world.exporter().export(_request())).results
    assert (refused.outcome, refused.reason, refused.fortnox_code, refused.fortnox_message) == (
        Outcome.REJECTED, "FORTNOX_REJECTED", "2000423", "Kan inte hitta kontot.")
    assert world.record().status is ExportStatus.REJECTED
    (same,) = (await world.exporter().export(_request())).results  # the same request: its answer
    assert same == refused and len(world.fortnox.posts) == 1
    (later,) = (await world.exporter().export(_request(request_id="r2"))).results
    assert later.outcome is Outcome.CREATED and len(world.fortnox.posts) == 2
    assert world.fortnox.lookups == []  # a refusal is settled: nothing to look up


async def test_a_refused_attempts_series_is_not_looked_in_again(world: World) -> None:
    """Fortnox refused the voucher in I (booked nothing); a later answer lost in A is looked
    for in A alone."""
    world.fortnox.posts_answer.extend([Answer.REJECT, Answer.NOT_BOOKED_UNKNOWN])
    await world.exporter().export(_request())
    (result,) = (await world.exporter().export(_request(request_id="r2", series="A"))).results
    assert (result.outcome, result.series) == (Outcome.CREATED, "A")
    assert world.fortnox.lookups == [(3, "A")]


# -- lost answers ----------------------------------------------------------------------------

async def test_a_lost_answer_is_looked_up_by_marker_and_not_posted_again(world: World) -> None:
    world.fortnox.posts_answer.append(Answer.LOST)
    (result,) = (await world.exporter().export(_request())).results
    assert (result.outcome, result.series, result.number) == (Outcome.CREATED, "I", 1)
    assert len(world.fortnox.posts) == 1 and len(world.fortnox.booked) == 1
    assert world.fortnox.lookups == [(3, "I")]
    assert world.record().generation == 2  # claimed again for the look-up


@pytest.mark.parametrize("answer", [Answer.NOT_BOOKED_UNKNOWN, Answer.UNAVAILABLE,
                                    Answer.RATE_LIMITED])
async def test_an_unsettled_post_that_booked_nothing_is_posted_again_after_the_look_up(
    world: World, answer: Answer,
) -> None:
    world.fortnox.posts_answer.append(answer)
    (result,) = (await world.exporter().export(_request())).results
    assert result.outcome is Outcome.CREATED and result.number == 1
    assert len(world.fortnox.posts) == 2 and len(world.fortnox.booked) == 1
    assert world.fortnox.lookups == [(3, "I")]


async def test_answers_lost_on_every_attempt_leave_the_record_unknown(world: World) -> None:
    world.fortnox.posts_answer.extend([Answer.NOT_BOOKED_UNKNOWN, Answer.RATE_LIMITED,
                                       Answer.NOT_BOOKED_UNKNOWN])
    with pytest.raises(FortnoxOutcomeUnknown):
        await world.exporter().export(_request())
    assert len(world.fortnox.posts) == 3
    record = world.record()
    assert record.status is ExportStatus.UNKNOWN
    assert record.result.reason == "FORTNOX_OUTCOME_UNKNOWN"
    assert (TENANT, "r1") not in world.history.finished
    # The next call looks it up first and, as nothing was booked, posts it.
    (result,) = (await world.exporter().export(_request())).results
    assert result.outcome is Outcome.CREATED and len(world.fortnox.booked) == 1


async def test_the_last_error_of_the_attempts_is_the_one_raised(world: World) -> None:
    world.fortnox.posts_answer.extend([Answer.NOT_BOOKED_UNKNOWN] * 2 + [Answer.RATE_LIMITED])
    with pytest.raises(FortnoxRateLimited):
        await world.exporter().export(_request())


async def test_one_failing_voucher_fails_the_request_after_the_others_settle(world: World
                                                                            ) -> None:
    world.fortnox.posts_answer.extend([Answer.BOOK] + [Answer.NOT_BOOKED_UNKNOWN] * 3)
    with pytest.raises(FortnoxOutcomeUnknown):
        await world.exporter().export(_request(_voucher("v1"), _voucher("v2")))
    assert world.record("v1").status is ExportStatus.CREATED
    assert world.record("v2").status is ExportStatus.UNKNOWN


# -- a dead worker's claim -------------------------------------------------------------------

@pytest.mark.parametrize("status", [ExportStatus.PENDING, ExportStatus.UNKNOWN])
async def test_a_dead_workers_voucher_found_by_marker_is_recorded_not_posted(
    world: World, status: ExportStatus,
) -> None:
    voucher = _voucher()
    await world.held_by_a_dead_worker(voucher, status=status)
    world.booked_elsewhere(voucher, "I")
    world.clock.advance(LEASE.total_seconds() + 1)  # its lease ran out (an UNKNOWN's at once)
    (result,) = (await world.exporter().export(_request(request_id="r2"))).results
    assert (result.outcome, result.series, result.number) == (Outcome.CREATED, "I", 1)
    assert world.fortnox.posts == [] and len(world.fortnox.booked) == 1
    assert world.fortnox.lookups == [(3, "I")]


async def test_a_dead_workers_voucher_fortnox_never_got_is_posted_after_the_look_up(
    world: World,
) -> None:
    await world.held_by_a_dead_worker(_voucher())
    world.clock.advance(LEASE.total_seconds() + 1)
    (result,) = (await world.exporter().export(_request(request_id="r2"))).results
    assert result.outcome is Outcome.CREATED and len(world.fortnox.posts) == 1
    assert world.fortnox.lookups == [(3, "I")]


async def test_a_series_switch_looks_where_the_earlier_attempt_could_have_booked(
    world: World,
) -> None:
    voucher = _voucher()
    await world.held_by_a_dead_worker(voucher, series="I", status=ExportStatus.UNKNOWN)
    world.booked_elsewhere(voucher, "I")
    (result,) = (await world.exporter().export(_request(request_id="r2", series="A"))).results
    assert (result.series, result.number) == ("I", 1)  # where it is, not where it would go
    assert world.fortnox.lookups == [(3, "I")] and world.fortnox.posts == []


async def test_after_a_series_switch_found_nowhere_it_is_posted_in_the_new_series(
    world: World,
) -> None:
    await world.held_by_a_dead_worker(_voucher(), series="I", status=ExportStatus.UNKNOWN)
    (result,) = (await world.exporter().export(_request(request_id="r2", series="A"))).results
    assert (result.outcome, result.series) == (Outcome.CREATED, "A")
    assert world.fortnox.lookups == [(3, "I")]  # no attempt went to A before this one
    assert world.record().places == (Place("I", 3), Place("A", 3))  # kept until settled


async def test_a_record_from_before_places_were_kept_is_looked_up_in_its_year(world: World
                                                                            ) -> None:
    voucher = _voucher()
    marker = voucher_marker(TENANT, "v1")
    world.history.seed(ExportRecord(
        TENANT, "v1", "r0", voucher.digest(), marker, ExportStatus.UNKNOWN,
        VoucherResult("v1", Outcome.NOT_ATTEMPTED, financial_year_id=2, request_id="r0"),
        "me", datetime(2026, 1, 1, tzinfo=UTC), "old", None, generation=1, places=()))
    world.booked_elsewhere(voucher, "A", year=2)
    (result,) = (await world.exporter().export(_request(request_id="r2", series="A"))).results
    assert (result.series, result.number, result.financial_year_id) == ("A", 1, 2)
    assert world.fortnox.lookups == [(2, "A")]


# -- a busy claim ----------------------------------------------------------------------------

async def test_a_live_claim_of_another_call_is_answered_export_in_progress(world: World
                                                                          ) -> None:
    await world.held_by_a_dead_worker(_voucher())  # alive, as far as its lease says
    world.clock.advance(0.5)
    with pytest.raises(ExportInProgress) as caught:
        await world.exporter().export(_request(request_id="r2", deadline=_passed()))
    assert caught.value.metadata == {"external_id": "v1"}
    assert caught.value.retry_after_s == pytest.approx(2.5)  # a typical export's 3 s, less 0.5
    assert world.fortnox.posts == [] and world.fortnox.lookups == []


@pytest.mark.parametrize(("held_s", "lease_s", "delay"), [
    (2.9, 60, 1.0),  # the holder is nearly done: the shortest delay
    (0.0, 1.5, 1.5),  # its lease ends first
    (0.0, 0.01, 0.1),  # never less than one poll
])
async def test_export_in_progress_suggests_when_the_holder_is_likely_done(
    world: World, held_s: float, lease_s: float, delay: float,
) -> None:
    voucher = _voucher()
    await world.history.claim(TENANT, "v1", "r0", voucher.digest(), "m", 3, "me", series="I",
                              owner="other", lease=timedelta(seconds=held_s + lease_s))
    world.clock.advance(held_s)
    with pytest.raises(ExportInProgress) as caught:
        await world.exporter().export(_request(request_id="r2", deadline=_passed()))
    assert caught.value.retry_after_s == pytest.approx(delay)


async def test_a_busy_claim_is_waited_for_and_its_answer_taken(world: World) -> None:
    """The other call posts while this one waits: the answer is the other's, no second POST."""
    other, this = world.exporter(), world.exporter()
    posting, release = asyncio.Event(), asyncio.Event()

    async def hold_the_post() -> None:
        posting.set()
        await release.wait()

    world.fortnox.before_post.append(hold_the_post)
    first = asyncio.create_task(other.export(_request()))
    await posting.wait()

    async def found_busy() -> None:  # this call's first claim: the other's lease runs
        world.history.hooks["claim"] = other_done_meanwhile

    async def other_done_meanwhile() -> None:  # its next claim, after a poll's wait
        release.set()
        await first

    world.history.hooks["claim"] = found_busy
    (result,) = (await this.export(_request(request_id="r2",
                                            deadline=time.monotonic() + 30))).results
    assert result.outcome is Outcome.ALREADY_EXPORTED and result.number == 1
    assert (await first).results[0].outcome is Outcome.CREATED
    assert len(world.fortnox.posts) == 1


async def test_a_claim_whose_lease_runs_out_while_waited_for_is_taken_over(world: World
                                                                          ) -> None:
    await world.held_by_a_dead_worker(_voucher())

    async def lease_ends() -> None:
        world.clock.advance(LEASE.total_seconds())

    async def after_this_claim() -> None:  # the first claim finds it busy, the next one not
        world.history.hooks["claim"] = lease_ends

    world.history.hooks["claim"] = after_this_claim
    (result,) = (await world.exporter().export(_request(
        request_id="r2", deadline=time.monotonic() + 30))).results
    assert result.outcome is Outcome.CREATED and len(world.fortnox.posts) == 1
    assert world.fortnox.lookups == [(3, "I")]


# -- a lost claim ----------------------------------------------------------------------------

async def _take_over(world: World, *, settle: bool) -> None:
    """Another worker takes the voucher over (the holder was paused past its lease) and, with
    ``settle``, exports it to the end."""
    world.clock.advance(LEASE.total_seconds() + 1)
    if settle:
        (result,) = (await world.exporter().export(_request(request_id="r2"))).results
        assert result.outcome is Outcome.CREATED
    else:
        voucher = _voucher()
        claim = await world.history.claim(TENANT, "v1", "r2", voucher.digest(), "m", 3, "me",
                                          series="I", owner="other", lease=LEASE)
        assert claim.status is ClaimStatus.TAKEN


async def test_a_claim_lost_before_the_post_posts_nothing_and_answers_the_record(
    world: World,
) -> None:
    async def paused() -> None:
        await _take_over(world, settle=True)

    world.fortnox.before_post.append(paused)
    (result,) = (await world.exporter().export(_request())).results
    assert (result.outcome, result.request_id) == (Outcome.ALREADY_EXPORTED, "r2")
    assert len(world.fortnox.posts) == 1  # the other worker's only


async def test_a_claim_lost_to_a_worker_still_at_work_is_export_in_progress(world: World
                                                                           ) -> None:
    async def paused() -> None:
        await _take_over(world, settle=False)

    world.fortnox.before_post.append(paused)
    with pytest.raises(ExportInProgress):
        await world.exporter().export(_request(deadline=time.monotonic() + 0.3))
    assert world.fortnox.posts == []


async def test_a_claim_lost_after_the_post_lets_the_taker_find_it_and_writes_nothing(
    world: World, caplog: pytest.LogCaptureFixture,
) -> None:
    async def paused_before_recording() -> None:
        await _take_over(world, settle=True)

    world.history.hooks["mark_created"] = paused_before_recording
    (result,) = (await world.exporter().export(_request())).results
    assert (result.outcome, result.number) == (Outcome.ALREADY_EXPORTED, 1)
    assert len(world.fortnox.booked) == 1  # the taker found it by its marker
    assert world.record().request_id == "r2"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_voucher_booked_twice_after_a_lost_claim_is_logged(
    world: World, caplog: pytest.LogCaptureFixture,
) -> None:
    """Fortnox's search did not show the paused worker's voucher yet: the taker booked it
    again. Nothing can undo that here; it is logged as an error, with both numbers."""
    world.fortnox.unsearchable.add(voucher_marker(TENANT, "v1"))

    async def paused_before_recording() -> None:
        await _take_over(world, settle=True)

    world.history.hooks["mark_created"] = paused_before_recording
    (result,) = (await world.exporter().export(_request())).results
    assert (result.outcome, result.number) == (Outcome.ALREADY_EXPORTED, 2)
    (logged,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert (logged.__dict__["booked"], logged.__dict__["recorded"]) == ("I 1", "I 2")
