"""ImportSie's other ports in memory: the import history, the tenant's connection and the SIE
parsers.

``MemoryImportHistory`` keeps what the stores' ``imports``, ``import_years`` and
``voucher_digests`` tables keep and answers as they do (``tests/adapters/stores/
test_imports.py`` states the contract): a finished import stays as it ended; a failed or
cancelled one's digests are dropped at once; a year is compared with the tenant's last
*successful* SIE import of the same year, by the file's hash first and then by each voucher's
digest (keys starting with ``~`` are not vouchers); running imports whose heartbeats stopped
are failed by ``fail_abandoned`` (``IMPORT_INTERRUPTED``). ``failing`` makes a method raise
(``StorageUnavailable``, as a database gone away).

``InlineParsers`` runs ``core.sie_parse.YearParse``, what the parser processes run, in this
process. ``MemoryConnections`` answers ``connection`` and ``record_import`` (the token store's
``ConnectionRecords`` side).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from core.clock import Clock, utc_now
from core.connections import Connection, ConnectionState
from core.imports import (
    ImportedYear,
    ImportKind,
    ImportPage,
    ImportRecord,
    ImportStatus,
    VoucherChanges,
)
from core.sie_parse import Parsed, ParseOptions, YearParse, YearParsed
from core.voucher_digest import DigestBatch


@dataclass
class _Import:
    record: ImportRecord
    heartbeat_at: datetime
    order: int


class MemoryImportHistory:
    """``core.imports.ImportHistory`` in dictionaries; see the module."""

    def __init__(self, clock: Clock = utc_now, stale_after: timedelta = timedelta(seconds=60),
                 heartbeat_every_s: float | None = None) -> None:
        self.clock = clock
        self.stale_after = stale_after
        self._every = (heartbeat_every_s if heartbeat_every_s is not None
                       else stale_after.total_seconds() / 4)
        self.imports: dict[str, _Import] = {}
        #: (import id, year id) -> voucher key -> digest
        self.digests: dict[tuple[str, int], dict[str, bytes]] = {}
        self.failing: dict[str, Exception] = {}
        self.heartbeats = 0
        self.beaten = asyncio.Event()  # set by each heartbeat recorded
        self._order = itertools.count()

    def _enter(self, method: str) -> None:
        failure = self.failing.get(method)
        if failure is not None:
            raise failure

    @property
    def heartbeat_every_s(self) -> float:
        return self._every

    async def start(self, tenant: str, kind: ImportKind, requested_by: str,
                    balance_date: date | None = None) -> ImportRecord:
        self._enter("start")
        now = self.clock()
        record = ImportRecord(str(uuid.uuid4()), tenant, kind, ImportStatus.RUNNING,
                              requested_by, now, None, "", "", (), balance_date)
        self.imports[record.import_id] = _Import(record, now, next(self._order))
        return record

    async def heartbeat(self, import_id: str) -> bool:
        self._enter("heartbeat")
        found = self.imports.get(import_id)
        if found is None or found.record.status is not ImportStatus.RUNNING:
            return False
        found.heartbeat_at = self.clock()
        self.heartbeats += 1
        self.beaten.set()
        return True

    async def add_year(self, import_id: str, year: ImportedYear) -> None:
        self._enter("add_year")
        found = self.imports[import_id]
        found.record = replace(found.record, years=(*found.record.years, year))

    async def finish(self, import_id: str, status: ImportStatus, reason: str = "",
                     message: str = "") -> bool:
        self._enter("finish")
        found = self.imports.get(import_id)
        if found is None or found.record.status is not ImportStatus.RUNNING:
            return False
        found.record = replace(found.record, status=status, finished_at=self.clock(),
                               error_reason=reason, error_message=message)
        if status is not ImportStatus.SUCCEEDED:
            self._drop(import_id)
        return True

    def _drop(self, import_id: str) -> None:
        for key in [k for k in self.digests if k[0] == import_id]:
            del self.digests[key]

    async def drop_superseded(self, import_id: str) -> None:
        self._enter("drop_superseded")
        this = self.imports[import_id].record
        years = {y.financial_year_id for y in this.years}
        for (other, year) in list(self.digests):
            record = self.imports[other].record
            if (other != import_id and record.tenant == this.tenant and year in years
                    and record.status is not ImportStatus.RUNNING):
                del self.digests[(other, year)]

    async def get(self, tenant: str, import_id: str) -> ImportRecord | None:
        self._enter("get")
        found = self.imports.get(import_id)
        return found.record if found is not None and found.record.tenant == tenant else None

    async def list_imports(self, tenant: str, kind: ImportKind | None, limit: int,
                           cursor: str) -> ImportPage:
        """One page of everything matching (the use cases under test never page)."""
        self._enter("list_imports")
        found = sorted((i for i in self.imports.values() if i.record.tenant == tenant
                        and kind in (None, i.record.kind)),
                       key=lambda i: (i.record.started_at, i.order), reverse=True)
        return ImportPage(tuple(i.record for i in found[:limit]), "")

    async def stage_voucher_digests(self, import_id: str, financial_year_id: int,
                                    digests: DigestBatch) -> None:
        self._enter("stage_voucher_digests")
        pairs = list(digests.pairs())  # in file order: a later fingerprint of a key wins
        if pairs:
            self.digests.setdefault((import_id, financial_year_id), {}).update(pairs)

    async def compare_year(self, tenant: str, import_id: str, financial_year_id: int,
                           sha256: str) -> VoucherChanges:
        self._enter("compare_year")
        previous = max(
            ((i, y) for i in self.imports.values() for y in i.record.years
             if i.record.tenant == tenant and i.record.status is ImportStatus.SUCCEEDED
             and i.record.kind is ImportKind.SIE and y.financial_year_id == financial_year_id),
            key=lambda found: (found[0].record.started_at, found[0].order), default=None)
        if previous is None:
            return VoucherChanges(None, None, 0, 0, 0)
        old, year = previous[0].record.import_id, previous[1]
        if year.sha256 == sha256:
            return VoucherChanges(old, year.sha256, 0, 0, 0)
        before = self.digests.get((old, financial_year_id), {})
        after = self.digests.get((import_id, financial_year_id), {})
        if not before:
            return VoucherChanges(old, year.sha256, 0, 0, 0, counted=False)

        def vouchers(d: dict[str, bytes], pseudo: bool) -> dict[str, bytes]:
            return {k: v for k, v in d.items() if k.startswith("~") == pseudo}

        old_v, new_v = vouchers(before, False), vouchers(after, False)
        old_o, new_o = vouchers(before, True), vouchers(after, True)
        return VoucherChanges(
            previous_import_id=old, previous_sha256=year.sha256,
            added=len(new_v.keys() - old_v.keys()),
            changed=sum(1 for k in new_v.keys() & old_v.keys() if new_v[k] != old_v[k]),
            removed=len(old_v.keys() - new_v.keys()),
            other_changed=any(new_o[k] != old_o[k] for k in new_o.keys() & old_o.keys()))

    async def fail_abandoned(self) -> int:
        self._enter("fail_abandoned")
        now = self.clock()
        failed = [i for i in self.imports.values() if i.record.status is ImportStatus.RUNNING
                  and i.heartbeat_at < now - self.stale_after]
        for found in failed:
            found.record = replace(
                found.record, status=ImportStatus.FAILED, finished_at=now,
                error_reason="IMPORT_INTERRUPTED",
                error_message="The service stopped during the import.")
            self._drop(found.record.import_id)
        return len(failed)


def connected(tenant: str, organisation_number: str = "556677-8899",
              state: ConnectionState = ConnectionState.CONNECTED) -> Connection:
    """A tenant's connection in ``state`` to the company ``organisation_number``."""
    return Connection(tenant, state, "", ("bookkeeping",), "fnx-1", "Fake AB",
                      organisation_number, datetime(2026, 1, 1, tzinfo=UTC), None, None, None,
                      None, None)


class MemoryConnections:
    """``ConnectionRecords`` as the imports use it: a connection per tenant, and the
    time of its last successful import of each kind."""

    def __init__(self, *connections: Connection) -> None:
        self.connections = {c.tenant: c for c in connections}

    async def connection(self, tenant: str) -> Connection | None:
        return self.connections.get(tenant)

    async def record_import(self, tenant: str, kind: ImportKind, at: datetime) -> None:
        found = self.connections[tenant]
        self.connections[tenant] = (
            replace(found, last_sie_import_at=at) if kind is ImportKind.SIE
            else replace(found, last_ledger_import_at=at))


class _InlineParsing:
    def __init__(self, options: ParseOptions) -> None:
        self._parse = YearParse(options)
        self.closed = False

    async def feed(self, chunk: bytes) -> list[Parsed]:
        return [self._parse.feed(chunk)]

    async def counts(self, document_counts: Mapping[tuple[str, int], int] | None
                     ) -> AsyncIterator[list[Parsed]]:
        for piece in self._parse.counts(document_counts):
            yield [piece]

    async def close(self) -> tuple[list[Parsed], YearParsed]:
        self.closed = True
        parsed, year = self._parse.close()
        return [parsed], year


class InlineParsers:
    """``SieParsers`` in this process; ``all_busy`` says every parser is taken."""

    def __init__(self) -> None:
        self.all_busy = False
        self.open = 0  # parsers handed out and not given back
        self.handed_out = 0

    @asynccontextmanager
    async def parse(self, options: ParseOptions) -> AsyncIterator[_InlineParsing]:
        self.open += 1
        self.handed_out += 1
        try:
            yield _InlineParsing(options)
        finally:
            self.open -= 1

    def busy(self) -> bool:
        return self.all_busy
