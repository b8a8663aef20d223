"""The import history: what each ImportSie / ImportLedgers call did, kept for callers to query."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from core.errors import DeadlineExceeded, DomainError, ImportInterrupted, StorageUnavailable
from core.voucher_digest import DigestBatch

Event = TypeVar("Event")
_log = logging.getLogger(__name__)


class Stage(StrEnum):
    """The step an import is in (the contract's ``ImportProgress.Stage``)."""

    AUTHORIZING = "authorizing"
    RESOLVING_YEARS = "resolving_years"
    DOWNLOADING = "downloading"
    CONTROLLING = "controlling"
    FETCHING_LEDGER = "fetching_ledger"
    FETCHING_DOCUMENTS = "fetching_documents"
    DONE = "done"


@dataclass(frozen=True)
class Progress:
    """A progress event of an import, frequent enough to draw a progress bar."""

    stage: Stage
    financial_year_id: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    items_done: int = 0
    items_total: int = 0
    message: str = ""


class ImportKind(StrEnum):
    """What an import fetched: the kind of an import history entry, and which last successful
    import time a connection remembers. The values are stored in the history's rows."""

    SIE = "sie"
    LEDGERS = "ledgers"


class ImportStatus(StrEnum):
    """Where an import stands; only ``SUCCEEDED`` data can be trusted."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ImportedYear:
    """What one import recorded about one financial year (or one ledger)."""

    financial_year_id: int
    start_date: date | None = None
    end_date: date | None = None
    sha256: str = ""
    byte_size: int = 0
    voucher_count: int = 0
    error_count: int = 0
    warning_count: int = 0
    ledger: str = ""
    open_item_count: int = 0


@dataclass(frozen=True)
class ImportRecord:
    """One import run."""

    import_id: str
    tenant: str
    kind: ImportKind
    status: ImportStatus
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    error_reason: str
    error_message: str
    years: tuple[ImportedYear, ...]
    balance_date: date | None


class ChangeKind(StrEnum):
    """How a year's file differs from the one its previous successful import read."""

    FIRST_IMPORT = "first_import"  # the year was never imported before for the tenant
    UNCHANGED = "unchanged"  # the same bytes, or other bytes holding the same vouchers
    CHANGED = "changed"  # the counts say how
    UNKNOWN = "unknown"  # the previous import kept no fingerprints to count against


@dataclass(frozen=True)
class VoucherChanges:
    """How a year's vouchers differ from the previous successful import of that year.

    ``other_changed`` covers fingerprints that are not vouchers (keys starting with ``~``,
    e.g. the stated balances). ``counted`` is False when the previous import kept no
    fingerprints to count against (they are kept from the release that fingerprints vouchers
    by their text); the counts are then zero and mean nothing.
    """

    previous_import_id: str | None
    previous_sha256: str | None
    added: int
    changed: int
    removed: int
    other_changed: bool = False
    counted: bool = True

    def kind(self, sha256: str) -> ChangeKind:
        """What the changes amount to for the year's file, whose hash is ``sha256``."""
        if self.previous_import_id is None:
            return ChangeKind.FIRST_IMPORT
        if self.previous_sha256 == sha256:
            return ChangeKind.UNCHANGED
        if not self.counted:
            return ChangeKind.UNKNOWN
        if self.added or self.changed or self.removed or self.other_changed:
            return ChangeKind.CHANGED
        return ChangeKind.UNCHANGED


@dataclass(frozen=True)
class ImportPage:
    """A page of imports, newest first, and the cursor of the next page (empty on the last)."""

    imports: tuple[ImportRecord, ...]
    next_cursor: str


class ImportHistory(Protocol):
    """Where imports are recorded (SQLite or PostgreSQL); every method may raise
    ``StorageUnavailable``.

    A running import signals every ``heartbeat_every_s`` seconds; one whose signals stop (its
    worker died) is ended as failed by whoever sweeps the history (``fail_abandoned``), in any
    process sharing the database. Signals and sweeps are dated by the database's clock, never
    a replica's, so a replica whose clock is off neither sweeps a live import nor is swept.
    """

    @property
    def heartbeat_every_s(self) -> float:
        """How often a running import must signal that it is alive."""
        ...

    async def start(
        self, tenant: str, kind: ImportKind, requested_by: str, balance_date: date | None = None
    ) -> ImportRecord:
        """Records a new running import and returns it."""
        ...

    async def heartbeat(self, import_id: str) -> bool:
        """Marks the import as still alive (a crashed worker's imports stop being refreshed);
        ``False`` if it is not running any more (it was swept)."""
        ...

    async def add_year(self, import_id: str, year: ImportedYear) -> None:
        """Records what the import did for one year."""
        ...

    async def finish(
        self, import_id: str, status: ImportStatus, reason: str = "", message: str = ""
    ) -> bool:
        """Ends a running import (an ended one stays as it is: ``False``); on success its
        staged voucher digests become the year's reference, otherwise they are dropped."""
        ...

    async def drop_superseded(self, import_id: str) -> None:
        """Drops the digests a succeeded import replaced as the reference of its years (the
        next success of the same years drops them too, should this never run)."""
        ...

    async def get(self, tenant: str, import_id: str) -> ImportRecord | None:
        """The tenant's import with that id, if any."""
        ...

    async def list_imports(
        self, tenant: str, kind: ImportKind | None, limit: int, cursor: str
    ) -> ImportPage:
        """The tenant's imports, newest first; ``InvalidRequest`` for a foreign cursor."""
        ...

    async def stage_voucher_digests(
        self, import_id: str, financial_year_id: int, digests: DigestBatch
    ) -> None:
        """Keeps a batch of a running import's fingerprints for the change comparison (a
        batch staged again, from the same ``start``, replaces the first)."""
        ...

    async def compare_year(
        self, tenant: str, import_id: str, financial_year_id: int, sha256: str
    ) -> VoucherChanges:
        """Compares the staged digests with the last successful import of the same year
        (whose file, if it has the same ``sha256``, needs no counting)."""
        ...

    async def fail_abandoned(self) -> int:
        """Ends running imports whose worker stopped signalling as failed
        (``IMPORT_INTERRUPTED``) and drops their digests; returns how many."""
        ...


async def recorded(
    history: ImportHistory, import_id: str, events: AsyncIterator[Event]
) -> AsyncIterator[Event]:
    """Passes an import's events on, signals the history that it is alive meanwhile, and
    records how it ended if it did not succeed: cancelled (the caller went away, or its
    deadline passed) or failed with the reason.

    Success is recorded by the import itself, before it sends its final summary.
    """
    beat = asyncio.create_task(_heartbeat(history, import_id))
    try:
        async for event in events:
            yield event
    except (asyncio.CancelledError, GeneratorExit, DeadlineExceeded):
        await _finish(history, import_id, ImportStatus.CANCELLED, "CANCELLED",
                      "The caller cancelled the import or its deadline passed.")
        raise
    except DomainError as exc:
        await _finish(history, import_id, ImportStatus.FAILED, exc.reason, exc.message)
        raise
    except Exception:
        await _finish(history, import_id, ImportStatus.FAILED, "INTERNAL_ERROR",
                      "The service failed unexpectedly; the error is logged.")
        raise
    finally:
        beat.cancel()


async def record_success(history: ImportHistory, import_id: str) -> None:
    """Records that the import succeeded, before its summary goes out; ``ImportInterrupted``
    if it was swept meanwhile (its digests are gone, so no success may be reported)."""
    if not await history.finish(import_id, ImportStatus.SUCCEEDED):
        raise ImportInterrupted(
            "The import was recorded as interrupted while it ran; its result is not kept."
            " Import again.", metadata={"import_id": import_id})


async def _finish(
    history: ImportHistory, import_id: str, status: ImportStatus, reason: str, message: str
) -> None:
    """Records the end, shielded, so a second cancel cannot stop the record half-way. When
    the storage is away the import's own error goes on to the caller; the sweeper ends the
    record later (its heartbeats have stopped)."""
    try:
        await asyncio.shield(history.finish(import_id, status, reason, message))
    except StorageUnavailable:
        _log.warning("could not record the end of an import", extra={"import_id": import_id})


async def _heartbeat(history: ImportHistory, import_id: str) -> None:
    """Signals until cancelled; a signal lost to a storage fault is tried at the next beat."""
    while True:
        await asyncio.sleep(history.heartbeat_every_s)
        try:
            if not await history.heartbeat(import_id):
                _log.warning("a running import was recorded as ended meanwhile",
                             extra={"import_id": import_id})
        except StorageUnavailable:
            _log.warning("could not record an import's heartbeat",
                         extra={"import_id": import_id})
