"""ExportVouchers: validate everything, then post each voucher at most once, ever.

Vouchers are posted a few at a time (Fortnox numbers them in the order they arrive, which may
differ from the request's); results are returned in request order.

Before each POST the voucher is claimed in the database for this call, with a lease: the
intent (``PENDING``) and a marker that the voucher also carries in its comments. A call of any
process that meets a live claim of another call waits briefly for its answer, then answers
EXPORT_IN_PROGRESS; it never posts. Whoever takes over an unsettled record - a lost answer, or
a claim whose process died between POST and recording, once its lease has run out - looks the
voucher up by its marker first (in every series and year an unsettled attempt used) and posts
only when Fortnox does not have it. A lost answer is resolved at once, inside the same call.

The claim is fenced (``held_claim``): renewed while the call waits, proved right before each
POST leaves, and named by every write of the record. A call whose claim was taken over while
it was paused posts nothing more and answers what the record says.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from core.clock import Clock, utc_now
from core.errors import (
    ConnectionNotFound,
    ConnectionRevoked,
    FortnoxOutcomeUnknown,
    FortnoxRateLimited,
    FortnoxRejected,
    FortnoxUnavailable,
    ReconnectRequired,
)
from core.fortnox_api import CompanyInformation, FortnoxApi, NewVoucher, Voucher, VoucherRow
from core.money import to_kronor
from core.voucher_export.held_claim import HeldClaim
from core.voucher_export.history import (
    ClaimLost,
    ClaimStatus,
    ExportClaim,
    ExportHistory,
    ExportInProgress,
    ExportRecord,
    Fence,
    Place,
    Refusal,
    request_id_reused,
)
from core.voucher_export.model import (
    ExportRequest,
    ExportResult,
    ExportVoucher,
    Outcome,
    Target,
    VoucherResult,
    voucher_marker,
)
from core.voucher_export.sie_file import sie_4i_file
from core.voucher_export.validation import (
    BookFacts,
    check_against_books,
    check_request,
    raise_if_any,
)

log = logging.getLogger(__name__)

#: Errors after which a POST may or may not have happened.
_UNSETTLED = (FortnoxOutcomeUnknown, FortnoxUnavailable, FortnoxRateLimited)
#: How long a call that meets another call's claim waits for its answer (looking again every
#: ``_POLL_S``) before it answers EXPORT_IN_PROGRESS.
_BUSY_WAIT_S = 2.0
_POLL_S = 0.1
#: The shortest retry delay EXPORT_IN_PROGRESS suggests, and how long a voucher's export
#: (claim to record) is taken to last until this process has seen some: Fortnox answers a POST
#: within a second or two.
_MIN_RETRY_S = 1.0
_TYPICAL_S = 3.0
#: The weight of each new export's duration in the running typical one.
_TYPICAL_WEIGHT = 0.1
#: POSTs per voucher within one call when answers get lost.
_ATTEMPTS = 3
#: Vouchers posted at the same time, so Fortnox's latency does not cap the rate below the
#: rate limit (the adapter's limiter still paces the calls).
_IN_FLIGHT = 8


class VoucherExporter:
    """The ExportVouchers use case over the Fortnox port and the export record.

    Args:
        api: The Fortnox port.
        history: Where each voucher's export is recorded.
        closing_series: The series used when a request names none.
        lease: How long a claim on a voucher keeps every other call, in any process, from
            posting it (at least the longest a POST can take, i.e. the HTTP timeout plus
            margin); a claim whose lease ran out is taken over.
    """

    def __init__(
        self,
        api: FortnoxApi,
        history: ExportHistory,
        closing_series: str,
        *,
        lease: timedelta = timedelta(seconds=60),
        clock: Clock = utc_now,
    ) -> None:
        self._api = api
        self._history = history
        self._closing_series = closing_series
        self._lease = lease
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._worker_id = uuid.uuid4().hex
        self._typical_s = _TYPICAL_S

    async def export(self, request: ExportRequest) -> ExportResult:
        """Validates, then posts (or writes the SIE file); see the module docstring."""
        raise_if_any(check_request(request))
        series = request.series or self._closing_series
        if request.target is Target.SIE_4I_FILE:
            company = await self._company(request.tenant, request.deadline)
            return sie_4i_file(request, series, self._clock(), company)
        digest = request.digest(series)
        lock = self._locks.setdefault(request.tenant, asyncio.Lock())
        async with lock:
            known = await self._history.request_digest(request.tenant, request.request_id)
            if known is not None and known != digest:
                raise request_id_reused(request.request_id)
            records = await self._history.get_many(
                request.tenant, [v.external_id for v in request.vouchers])
            todo = [(i, v) for i, (v, r) in enumerate(zip(request.vouchers, records, strict=True))
                    if not _settled_for(r, request.request_id)]
            facts = await self._facts(request.tenant, todo, request.deadline) if todo else None
            if facts is not None:
                raise_if_any(check_against_books(todo, series, facts))
            if request.validate_only:
                return ExportResult(request.request_id, tuple(
                    _verdict(v, r, request.request_id)
                    for v, r in zip(request.vouchers, records, strict=True)))
            await self._history.open_request(
                request.tenant, request.request_id, digest, request.requested_by)
            gate = asyncio.Semaphore(_IN_FLIGHT)
            owner = f"{self._worker_id}:{uuid.uuid4().hex}"  # this call, in this process

            async def settle(voucher: ExportVoucher, record: ExportRecord | None
                             ) -> VoucherResult:
                if _settled_for(record, request.request_id):
                    assert record is not None
                    return record.result_for(request.request_id)
                assert facts is not None and voucher.transaction_date is not None
                year = facts.year_for(voucher.transaction_date)
                assert year is not None, "validated above"
                async with gate:
                    return await self._export_one(request, voucher, series, year.id, owner)

            settled = await asyncio.gather(
                *(settle(v, r) for v, r in zip(request.vouchers, records, strict=True)),
                return_exceptions=True)
            failures = [s for s in settled if isinstance(s, BaseException)]
            if failures:
                raise failures[0]
            results = [s for s in settled if isinstance(s, VoucherResult)]
            await self._history.finish_request(request.tenant, request.request_id)
            return ExportResult(request.request_id, tuple(results))

    async def _company(self, tenant: str, deadline: float | None) -> CompanyInformation | None:
        """The connected Fortnox company, or None for a tenant that imports by file only."""
        try:
            return await self._api.company_information(tenant, deadline=deadline)
        except (ConnectionNotFound, ConnectionRevoked, ReconnectRequired):
            return None

    async def _facts(
        self, tenant: str, todo: Sequence[tuple[int, ExportVoucher]], deadline: float | None
    ) -> BookFacts:
        years = await self._api.financial_years(tenant, deadline=deadline)
        wanted = {y.id for _, v in todo for y in years
                  if v.transaction_date is not None and y.contains(v.transaction_date)}
        accounts, series = {}, {}
        for year_id in sorted(wanted):
            chart = await self._api.accounts(tenant, year_id, deadline=deadline)
            accounts[year_id] = {a.number: a for a in chart}
            codes = await self._api.voucher_series(tenant, year_id, deadline=deadline)
            series[year_id] = frozenset(s.code for s in codes)
        # Without the settings scope this fails (FORTNOX_SCOPE_MISSING) rather than posting
        # blind: a locked date refused at POST time would leave the request half booked.
        locked = await self._api.locked_period_end(tenant, deadline=deadline)
        rows = [row for _, v in todo for row in v.rows]
        cost_centers = ({c.code: c for c in await self._api.cost_centers(
            tenant, deadline=deadline)} if any(r.cost_center for r in rows) else None)
        projects = ({p.number: p for p in await self._api.projects(tenant, deadline=deadline)}
                    if any(r.project for r in rows) else None)
        return BookFacts(years, accounts, series, locked, cost_centers, projects)

    async def _export_one(
        self,
        request: ExportRequest,
        voucher: ExportVoucher,
        series: str,
        year_id: int,
        owner: str,
    ) -> VoucherResult:
        """Claims the voucher, settles a claim it took over from Fortnox, posts if it must."""
        tenant, ext, deadline = request.tenant, voucher.external_id, request.deadline
        marker = voucher_marker(tenant, ext)
        failure: Exception | None = None
        claim_it = partial(self._history.claim, tenant, ext, request.request_id,
                           voucher.digest(), marker, year_id, request.requested_by,
                           series=series, owner=owner, lease=self._lease)
        for _ in range(_ATTEMPTS):
            claim = await claim_it()
            waiting_ends = self._waiting_ends(deadline)
            while claim.status is ClaimStatus.BUSY and time.monotonic() < waiting_ends:
                await asyncio.sleep(_POLL_S)  # the other call's answer is near
                claim = await claim_it()
            if claim.status is not ClaimStatus.TAKEN:
                assert claim.record is not None
                if claim.status is ClaimStatus.BUSY:
                    raise self._in_progress(ext, claim)
                return claim.record.result_for(request.request_id)
            assert claim.fence is not None
            held = HeldClaim(self._history, tenant, ext, claim.fence, self._lease)
            started = time.monotonic()
            attempt = _Attempt()
            try:
                async with held.kept():
                    result = await self._attempt(request, voucher, series, year_id, claim.record,
                                                 held, attempt)
            except ClaimLost:
                return await self._after_losing(request, ext, attempt.created)
            if isinstance(result, Exception):
                failure = result  # the POST's answer was lost: look it up, then again
                continue
            self._observe(time.monotonic() - started)
            return result
        assert failure is not None
        raise failure

    async def _attempt(
        self, request: ExportRequest, voucher: ExportVoucher, series: str, year_id: int,
        previous: ExportRecord | None, held: HeldClaim, attempt: _Attempt,
    ) -> VoucherResult | Exception:
        """One claim's work: the look-up of an unsettled earlier attempt, then the POST, each
        write fenced by the claim's token. A POST whose outcome is unknown is marked so and
        its error returned, for another round."""
        tenant, ext, deadline = request.tenant, voucher.external_id, request.deadline
        marker = voucher_marker(tenant, ext)
        if previous is not None and not previous.status.settled:
            found = await self._find(tenant, previous, marker, series, deadline, held.fence)
            if found is not None:
                return found.result_for(request.request_id)
        try:
            created = await self._api.create_voucher(
                tenant, year_id, _new_voucher(voucher, series, marker), deadline=deadline,
                proof=held.still_held)
        except FortnoxRejected as exc:
            return await self._history.mark_rejected(tenant, ext, Refusal(
                exc.reason, "Fortnox refused the voucher.", exc.metadata.get("fortnox_code", ""),
                exc.metadata.get("fortnox_message", "")), held.fence)
        except _UNSETTLED as exc:
            await self._history.mark_unknown(tenant, ext, held.fence)
            return exc
        attempt.created = created
        return await self._history.mark_created(
            tenant, ext, created.series, created.number, created.year, held.fence)

    async def _after_losing(
        self, request: ExportRequest, ext: str, created: Voucher | None
    ) -> VoucherResult:
        """Another worker took the claim over (this one was paused past its lease): nothing
        more is posted or written; the answer is what the record, now the other worker's,
        says, once it is settled (waited for briefly, as for a busy claim)."""
        waiting_ends = self._waiting_ends(request.deadline)
        record = await self._history.get(request.tenant, ext)
        while (record is not None and not record.status.settled
               and time.monotonic() < waiting_ends):
            await asyncio.sleep(_POLL_S)
            record = await self._history.get(request.tenant, ext)
        assert record is not None, "a lost claim was taken over, not deleted"
        if created is not None and (record.result.series, record.result.number) != (
                created.series, created.number):
            log.error("voucher booked by a worker whose claim was taken over",
                      extra={"tenant": request.tenant, "external_id": ext,
                             "booked": f"{created.series} {created.number}",
                             "recorded": f"{record.result.series} {record.result.number}"})
        if not record.status.settled:
            raise ExportInProgress(
                f"Voucher {ext!r} is being exported by another worker.",
                metadata={"external_id": ext}, retry_after_s=self._typical_s)
        return record.result_for(request.request_id)

    def _waiting_ends(self, deadline: float | None) -> float:
        ends = time.monotonic() + _BUSY_WAIT_S
        return ends if deadline is None else min(ends, deadline - _POLL_S)

    def _in_progress(self, ext: str, claim: ExportClaim) -> ExportInProgress:
        """EXPORT_IN_PROGRESS with a retry delay near the holder's expected finish: its claim
        time (``held_for`` ago) plus a typical export's duration, never beyond its lease."""
        expected_left = self._typical_s - claim.held_for.total_seconds()
        delay = min(max(expected_left, _MIN_RETRY_S), claim.retry_after.total_seconds())
        return ExportInProgress(
            f"Voucher {ext!r} is being exported by another worker.",
            metadata={"external_id": ext}, retry_after_s=max(delay, _POLL_S))

    def _observe(self, seconds: float) -> None:
        """Folds one export's duration (claim to record) into the typical one."""
        self._typical_s += (seconds - self._typical_s) * _TYPICAL_WEIGHT

    async def _find(
        self, tenant: str, record: ExportRecord, marker: str, series: str,
        deadline: float | None, fence: Fence,
    ) -> ExportRecord | None:
        """Settles an unsettled record from Fortnox: the stored record if the voucher exists.

        It is looked for wherever the earlier attempts could have booked it (their series
        and years), not only where this request would; records from before places were kept
        name none, and are looked for in this request's series of their year."""
        places = record.places or (Place(series, record.result.financial_year_id),)
        for place in places:
            matches = await self._api.find_vouchers(
                tenant, place.financial_year_id, marker, series=place.series,
                deadline=deadline)
            if matches:
                first = min(matches, key=lambda v: v.number)
                await self._history.mark_created(tenant, record.external_id, first.series,
                                                 first.number, first.year, fence)
                return await self._history.get(tenant, record.external_id)
        return None


@dataclass
class _Attempt:
    """What one claim's work did at Fortnox: the voucher its POST booked, if it is known."""

    created: Voucher | None = None


def _settled_for(record: ExportRecord | None, request_id: str) -> bool:
    return record is not None and record.settles(request_id)


def _verdict(voucher: ExportVoucher, record: ExportRecord | None, request_id: str
             ) -> VoucherResult:
    """A validate-only result: the stored answer where there is one, else "valid"."""
    if record is not None and _settled_for(record, request_id):
        return record.result_for(request_id)
    return VoucherResult(voucher.external_id, Outcome.VALID)


def _new_voucher(voucher: ExportVoucher, series: str, marker: str) -> NewVoucher:
    assert voucher.transaction_date is not None
    return NewVoucher(
        series=series,
        transaction_date=voucher.transaction_date,
        description=voucher.description,
        rows=tuple(
            VoucherRow(
                account=row.account,
                debit=to_kronor(row.debit),
                credit=to_kronor(row.credit),
                transaction_information=row.description,
                cost_center=row.cost_center,
                project=row.project,
            )
            for row in voucher.rows
        ),
        comments=f"{marker} {voucher.external_id}"[:1000],
    )

