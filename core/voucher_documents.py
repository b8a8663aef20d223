"""Voucher documents (underlag): the files connected to vouchers in Fortnox, for one voucher on
demand or for a whole financial year.

Which files belong to which voucher comes from Fortnox's voucher file connections (one paged
listing, filtered by Fortnox by the year, or for one voucher by its number, and here by the
rest, since Fortnox may honour only one filter per request). Each file is then one archive
download, which at Fortnox's 25 requests per 5 s makes a year of receipts a matter of minutes:
the year stream reports progress with an estimate of the time left, and a caller that
reconnects names the files it already has, which are not fetched again. A file that cannot be
fetched is reported in its place and the others follow; a connection without the
``connectfile`` or ``archive`` scope fails at once with ``FORTNOX_SCOPE_MISSING`` naming the scope.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from opentelemetry import trace

from core.connections import Connection, ConnectionRecords, require_connected
from core.document_spool import spool_file
from core.errors import (
    FILE_FAILURES,
    FieldViolation,
    FortnoxScopeMissing,
    InvalidRequest,
)
from core.fortnox_api import FileConnection, FinancialYear, FortnoxApi
from core.year_selection import YearChoice
from sie import RowKind, SieReader, Voucher

#: The scopes voucher documents need: the connections, and the archive the files are in.
SCOPES = ("connectfile", "archive")


@dataclass(frozen=True)
class VoucherKey:
    """A voucher in Fortnox: its financial year's id, series and number."""

    financial_year_id: int
    series: str
    number: int


@dataclass(frozen=True)
class DocumentHeader:
    """What a document is, sent before its bytes."""

    file_id: str
    file_name: str
    content_type: str
    size: int
    sha256: str
    voucher: VoucherKey


@dataclass(frozen=True)
class DocumentBytes:
    """At most ``CHUNK_BYTES`` of a document, and where they start in it."""

    file_id: str
    offset: int
    data: bytes
    last: bool


@dataclass(frozen=True)
class DocumentFailed:
    """A document Fortnox would not or could not hand over, sent in its place."""

    file_id: str
    file_name: str
    voucher: VoucherKey
    reason: str
    message: str


@dataclass(frozen=True)
class YearProgress:
    """How far a year's documents are: after the listing, and after every file."""

    financial_year_id: int
    files_total: int
    files_done: int
    files_skipped: int
    files_failed: int
    bytes_done: int
    seconds_left: int


@dataclass(frozen=True)
class YearDone:
    """The last event of a year's documents."""

    year: FinancialYear
    files_total: int
    files_sent: int
    files_skipped: int
    files_failed: int
    bytes_sent: int


DocumentEvent = DocumentHeader | DocumentBytes | DocumentFailed
YearEvent = DocumentEvent | YearProgress | YearDone


@dataclass(frozen=True)
class YearDocumentsRequest:
    """A year's documents, optionally of some series or of vouchers of at least an amount."""

    tenant: str
    year: YearChoice
    series: frozenset[str] = frozenset()
    min_amount: Decimal | None = None
    received: frozenset[str] = frozenset()
    deadline: float | None = None


@dataclass(frozen=True)
class RateLimit:
    """Fortnox's window the client keeps within: ``requests`` per ``window_s`` seconds."""

    requests: int = 25
    window_s: float = 5.0

    @property
    def seconds_per_request(self) -> float:
        """The least time one more request takes, with the window full."""
        return self.window_s / self.requests


def require_scopes(connection: Connection) -> None:
    """Fails before any call when the connection's granted scopes (as Fortnox stated them at
    connect) lack one documents need; a connection whose scopes are unknown is left to
    Fortnox's 403, which the client names the same way."""
    missing = [s for s in SCOPES if connection.scopes and s not in connection.scopes]
    if missing:
        raise FortnoxScopeMissing(
            f"The Fortnox connection lacks the scope {' and '.join(missing)} that voucher "
            "documents need; connect the tenant again (Connect) asking for it.",
            metadata={"scope": " ".join(missing), "tenant": connection.tenant})


class VoucherDocuments:
    """The two use cases: one voucher's documents, and a year's."""

    def __init__(self, api: FortnoxApi, connections: ConnectionRecords, *,
                 rate_limit: RateLimit = RateLimit(),
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._api = api
        self._connections = connections
        self._rate = rate_limit
        self._monotonic = monotonic

    async def voucher(self, tenant: str, year: YearChoice, series: str, number: int, *,
                      deadline: float | None = None) -> AsyncIterator[DocumentEvent]:
        """A voucher's documents; none is an empty stream, not an error."""
        trace.get_current_span().set_attribute("skattbokslut.tenant", tenant)
        require_scopes(require_connected(await self._connections.connection(tenant)))
        found = await self._year(tenant, year, deadline)
        # One filter (the rarest match) and the rest here: Fortnox may honour only one.
        listed = self._api.voucher_file_connections(tenant, number=number, deadline=deadline)
        wanted = [c async for c in listed
                  if _key(c, found.id) == VoucherKey(found.id, series, number)]
        for connection in _unique(wanted):
            async for event in self._fetch(tenant, connection, found.id, deadline):
                yield event

    async def year(self, request: YearDocumentsRequest) -> AsyncIterator[YearEvent]:
        """A year's documents with progress, leaving out those in ``request.received``; the
        last event is ``YearDone``."""
        tenant, deadline = request.tenant, request.deadline
        trace.get_current_span().set_attribute("skattbokslut.tenant", tenant)
        require_scopes(require_connected(await self._connections.connection(tenant)))
        found = await self._year(tenant, request.year, deadline)
        listed = [c async for c in self._api.voucher_file_connections(
            tenant, financial_year_id=found.id, deadline=deadline)
            if (c.voucher_year in (None, found.id))
            and (not request.series or c.voucher_series in request.series)]
        if request.min_amount is not None:
            amounts = await voucher_amounts(self._api, tenant, found.id, deadline)
            listed = [c for c in listed if amounts.get(_key(c, found.id), Decimal(0))
                      >= request.min_amount]
        files = _unique(listed)
        todo = [c for c in files if c.file_id not in request.received]
        skipped = len(files) - len(todo)
        done = failed = size = 0
        started = self._monotonic()

        def progress() -> YearProgress:
            left = len(todo) - done
            pace = self._rate.seconds_per_request
            if done:
                pace = max(pace, (self._monotonic() - started) / done)
            return YearProgress(found.id, len(files), done + skipped, skipped, failed, size,
                                math.ceil(left * pace))

        yield progress()
        for connection in todo:
            async for event in self._fetch(tenant, connection, found.id, deadline):
                if isinstance(event, DocumentBytes):
                    size += len(event.data)
                failed += isinstance(event, DocumentFailed)
                yield event
            done += 1
            yield progress()
        yield YearDone(found, len(files), done - failed, skipped, failed, size)

    async def _year(self, tenant: str, choice: YearChoice,
                    deadline: float | None) -> FinancialYear:
        if isinstance(choice, date):
            found = await self._api.financial_year_for_date(tenant, choice, deadline=deadline)
        else:
            years = await self._api.financial_years(tenant, deadline=deadline)
            found = next((y for y in years if y.id == choice), None)
        if found is None:
            raise InvalidRequest(
                "The financial year does not exist in Fortnox.",
                reason="FINANCIAL_YEAR_NOT_FOUND",
                violations=(FieldViolation("year", f"no Fortnox financial year matches "
                                                   f"{choice}"),))
        return found

    async def _fetch(self, tenant: str, connection: FileConnection, year_id: int,
                     deadline: float | None) -> AsyncIterator[DocumentEvent]:
        voucher = _key(connection, year_id)
        try:
            spooled = await spool_file(self._api, tenant, connection.file_id,
                                       deadline=deadline)
        except FILE_FAILURES as exc:
            yield DocumentFailed(connection.file_id, connection.name, voucher, exc.reason,
                                 exc.message)
            return
        # The download's own name (Content-Disposition), else the one the listing gave.
        name = spooled.file_name
        if name in ("", connection.file_id):
            name = connection.name or connection.file_id
        with spooled:
            yield DocumentHeader(connection.file_id, name, spooled.content_type, spooled.size,
                                 spooled.sha256, voucher)
            for piece in spooled.pieces():
                yield DocumentBytes(connection.file_id, *piece)


def _key(connection: FileConnection, year_id: int) -> VoucherKey:
    return VoucherKey(connection.voucher_year or year_id, connection.voucher_series,
                      connection.voucher_number or 0)


def _unique(connections: Collection[FileConnection]) -> list[FileConnection]:
    """Each file once (a file connected to two vouchers goes with the first), in voucher
    order."""
    ordered = sorted(connections, key=lambda c: (c.voucher_series, c.voucher_number or 0,
                                                 c.file_id))
    return list({c.file_id: c for c in reversed(ordered)}.values())[::-1]


async def document_counts(api: FortnoxApi, tenant: str, year_id: int, *,
                          deadline: float | None = None,
                          listed: Callable[[], None] | None = None,
                          ) -> Counter[tuple[str, int]]:
    """How many files each voucher of a year has, by (series, number), from one paged listing
    of the year's connections; ``listed`` is called for each connection as it arrives."""
    counts: Counter[tuple[str, int]] = Counter()
    async for c in api.voucher_file_connections(tenant, financial_year_id=year_id,
                                                deadline=deadline):
        if listed is not None:
            listed()
        if c.voucher_year in (None, year_id):
            counts[(c.voucher_series, c.voucher_number or 0)] += 1
    return counts


async def voucher_amounts(api: FortnoxApi, tenant: str, year_id: int,
                          deadline: float | None) -> dict[VoucherKey, Decimal]:
    """Each voucher's amount (the sum of its debit rows) from the year's SIE 4 export: one
    download, where Fortnox's voucher list carries no amounts."""
    amounts: dict[VoucherKey, Decimal] = {}
    reader = SieReader()

    def take(events: Iterable[object]) -> None:
        for event in events:
            if isinstance(event, Voucher) and event.number.isdigit():
                amounts[VoucherKey(year_id, event.series, int(event.number))] = sum(
                    (r.amount for r in event.rows if r.kind is RowKind.TRANS and r.ore > 0),
                    Decimal(0))

    async with await api.open_sie_export(tenant, year_id, 4, deadline=deadline) as stream:
        async for chunk in stream:
            take(reader.feed(chunk))
    take(reader.close())
    return amounts
