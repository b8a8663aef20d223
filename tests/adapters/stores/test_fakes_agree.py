"""The unit tests' in-memory histories (``tests/harness/fakes``) answer as the stores do.

Export history: the same random sequences of requests, claims (live and run-out leases),
renewals and fenced writes (with the holder's token and with stale ones) go to the fake and to
each store backend, and every answer and every record after it must agree. Import history: the
same random imports (digests staged, years compared, ended each way, superseded digests
dropped, abandoned ones swept) must give the same change counts and records. A unit test over
a fake thus proves only what holds of the real stores too."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from core.errors import RequestIdReused
from core.imports import ImportedYear, ImportHistory, ImportKind, ImportStatus
from core.stores import Stores
from core.voucher_digest import DigestBatch, voucher_digest
from core.voucher_export.history import (
    ClaimLost,
    ExportClaim,
    ExportHistory,
    ExportRecord,
    Fence,
    Refusal,
)
from core.voucher_export.model import VoucherResult
from tests.adapters.stores.conftest import ManualClock
from tests.harness.fakes.exports import MemoryExportHistory
from tests.harness.fakes.imports import MemoryImportHistory

SEQUENCES = 40
STEPS = 14
#: A lease that runs while the sequence does, and one that has run out at once: either way the
#: fake (on the real clock) and the store (on the database's) judge it alike.
LEASES = (timedelta(seconds=600), timedelta(0))


def _seen(record: ExportRecord | None) -> tuple[Any, ...] | None:
    """What a record says, without the instants the two clocks write differently."""
    if record is None:
        return None
    r = record.result
    return (record.request_id, record.payload_sha256, record.marker, record.status,
            record.requested_by, record.owner, record.generation, record.places,
            record.lease_expires_at is None, r.outcome, r.series, r.number,
            r.financial_year_id, r.reason, r.message, r.fortnox_code, r.fortnox_message,
            r.exported_at is None, r.request_id)


async def _answer(call: Any) -> object:
    """A call's answer, or the contract's error it raised."""
    try:
        answer = await call
    except (ClaimLost, RequestIdReused) as exc:
        return type(exc).__name__
    if isinstance(answer, ExportRecord):
        return _seen(answer)
    if isinstance(answer, ExportClaim):
        return (answer.status, answer.fence, _seen(answer.record))
    if isinstance(answer, VoucherResult):
        return (answer.outcome, answer.series, answer.number, answer.reason,
                answer.fortnox_code, answer.request_id)
    return answer


def _step(rng: random.Random, ext: str, rid: str, fences: dict[str, Fence]
          ) -> tuple[str, Any]:
    """One random operation, as a name and a function of the history."""
    owner = rng.choice("abc")
    fence = fences.get(owner, Fence(owner, 1))
    if rng.random() < 0.3:
        fence = Fence(fence.owner, fence.generation - rng.choice((1, -1)))  # a stale token
    kind = rng.choice(("claim", "claim", "claim", "renew", "unknown", "created", "rejected",
                       "open", "get"))
    if kind == "claim":
        request_id, lease = rid + rng.choice("12"), rng.choice(LEASES)
        series, year = rng.choice("IA"), rng.choice((3, 4))
        return (f"claim {owner} {request_id} {series}:{year} {lease}",
                lambda h: h.claim("t1", ext, request_id, f"d{request_id}", "fnxb:m", year,
                                  "me", series=series, owner=owner, lease=lease))
    if kind == "renew":
        lease = rng.choice(LEASES)
        return f"renew {fence} {lease}", lambda h: h.renew("t1", ext, fence, lease)
    if kind == "unknown":
        return f"unknown {fence}", lambda h: h.mark_unknown("t1", ext, fence)
    if kind == "created":
        number = rng.randint(1, 9)
        return (f"created {fence} {number}",
                lambda h: h.mark_created("t1", ext, "I", number, 3, fence))
    if kind == "rejected":
        return (f"rejected {fence}", lambda h: h.mark_rejected(
            "t1", ext, Refusal("FORTNOX_REJECTED", "refused", "2000423",
                               "Kan inte hitta kontot."), fence))
    if kind == "open":
        request_id, digest = rid + rng.choice("12"), rng.choice(("x", "y"))
        return (f"open {request_id} {digest}",
                lambda h: h.open_request("t1", request_id, digest, "me"))
    return "get", lambda h: h.get("t1", ext)


@pytest.mark.parametrize("seed", [0, 1])
async def test_the_fake_export_history_answers_as_the_store_does(stores: Stores, seed: int
                                                                 ) -> None:
    store: ExportHistory = stores.exports
    fake = MemoryExportHistory()
    rng = random.Random(seed)
    for sequence in range(SEQUENCES):
        ext, rid = f"v{seed}-{sequence}", f"r{seed}-{sequence}-"
        fences: dict[str, Fence] = {}
        steps: list[str] = []
        for _ in range(STEPS):
            name, call = _step(rng, ext, rid, fences)
            steps.append(name)
            real, faked = await _answer(call(store)), await _answer(call(fake))
            assert faked == real, f"after {steps}"
            if isinstance(real, tuple) and len(real) == 3 and isinstance(real[1], Fence):
                fences[real[1].owner] = real[1]  # the claim's token, for the next writes
            assert _seen(fake.record("t1", ext)) == _seen(await store.get("t1", ext)), (
                f"after {steps}")
        for request_id in (rid + "1", rid + "2"):
            assert await fake.request_digest("t1", request_id) == await store.request_digest(
                "t1", request_id)


#: Voucher keys (``~`` ones are not vouchers) and the digests they may have.
_KEYS = ("A:1", "A:2", "A:3", "B:1", "~balances")


@pytest.mark.parametrize("seed", [0, 1])
async def test_the_fake_import_history_answers_as_the_store_does(
    stores: Stores, clock: ManualClock, seed: int,
) -> None:
    store: ImportHistory = stores.imports
    fake = MemoryImportHistory(clock)
    rng = random.Random(seed)
    ids: dict[str, str] = {}  # the store's import id -> the fake's
    tenant = f"t{seed}"
    for step in range(40):
        clock.advance(1)
        real, faked = (await store.start(tenant, ImportKind.SIE, "me"),
                       await fake.start(tenant, ImportKind.SIE, "me"))
        ids[real.import_id] = faked.import_id
        for year in rng.sample((1, 2), rng.randint(1, 2)):
            digests = [(k, voucher_digest(rng.choice("xyz"))) for k in _KEYS
                       if rng.random() < 0.7]
            sha = rng.choice(("s1", "s2", f"new{step}"))
            if rng.random() < 0.9:  # else an import from before vouchers had digests
                for batch in (DigestBatch.of(digests[:2]), DigestBatch.of(digests[2:], 2)):
                    await store.stage_voucher_digests(real.import_id, year, batch)
                    await fake.stage_voucher_digests(faked.import_id, year, batch)
            changes = await store.compare_year(tenant, real.import_id, year, sha)
            faked_changes = await fake.compare_year(tenant, faked.import_id, year, sha)
            previous = changes.previous_import_id
            assert faked_changes == replace(
                changes, previous_import_id=ids[previous] if previous else None), (
                f"step {step} year {year}")
            year_record = ImportedYear(financial_year_id=year, sha256=sha)
            await store.add_year(real.import_id, year_record)
            await fake.add_year(faked.import_id, year_record)
        ending = rng.choice((ImportStatus.SUCCEEDED, ImportStatus.SUCCEEDED,
                             ImportStatus.FAILED, ImportStatus.CANCELLED, None))
        if ending is not None:
            await store.finish(real.import_id, ending, "WHY", "why")
            await fake.finish(faked.import_id, ending, "WHY", "why")
        if ending is ImportStatus.SUCCEEDED and rng.random() < 0.7:
            await store.drop_superseded(real.import_id)
            await fake.drop_superseded(faked.import_id)
        # The sweep of abandoned imports is not compared here: the stores judge it by the
        # database's clock, which a test cannot move (test_imports.py sweeps on real time).
        for real_id, fake_id in ids.items():
            stored, kept = await store.get(tenant, real_id), await fake.get(tenant, fake_id)
            assert stored is not None and kept is not None
            assert (kept.status, kept.error_reason, kept.years, kept.finished_at) == (
                stored.status, stored.error_reason, stored.years, stored.finished_at)
