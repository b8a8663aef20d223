"""ImportLedgers: the open items of each ledger at a balance date, reconciled, as a stream of
events, recorded in the import history like ImportSie."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from core.chunks import pieces, whole_pieces
from core.clock import Clock, utc_now
from core.connections import ConnectionRecords
from core.errors import (
    FILE_FAILURES,
    FieldViolation,
    FortnoxError,
    FortnoxScopeMissing,
    InvalidRequest,
)
from core.fortnox_api import ByteStream, FileSource, FortnoxApi
from core.imports import (
    ImportedYear,
    ImportHistory,
    ImportKind,
    Progress,
    Stage,
    record_success,
    recorded,
)
from core.ledgers.model import Document, Ledger, LedgerTotals, OpenItem
from core.ledgers.open_items import open_items
from core.ledgers.reconciliation import reconcile
from core.ledgers.sources import customer_ledger, general_ledger, supplier_ledger


@dataclass(frozen=True)
class LedgerImportRequest:
    """What a caller asked to import: the open items of ``ledgers`` at ``balance_date`` (no
    ledger, or ``None`` among them, means both: ``chosen_ledgers``)."""

    tenant: str
    balance_date: date
    ledgers: tuple[Ledger | None, ...] = ()
    include_documents: bool = False
    requested_by: str = ""
    deadline: float | None = None


@dataclass(frozen=True)
class DocumentRef:
    """A document of an open item, streamed later in ``DocumentPart`` events."""

    document_id: str
    file_name: str


@dataclass(frozen=True)
class ItemFound:
    """An open item at the balance date, with its documents (when asked for)."""

    item: OpenItem
    documents: tuple[DocumentRef, ...] = ()


@dataclass(frozen=True)
class DocumentPart:
    """At most ``CHUNK_BYTES`` of a document."""

    ref: DocumentRef
    ledger: Ledger
    document_number: str
    content_type: str
    offset: int
    data: bytes
    last: bool


@dataclass(frozen=True)
class DocumentUnavailable:
    """A document Fortnox would not or could not hand over; sent in its place (after any
    parts already sent) and listed in the summary. ``reason`` is the error's stable reason."""

    ref: DocumentRef
    ledger: Ledger
    document_number: str
    reason: str
    message: str


#: A ledger's document refused for a missing scope is reported too: the ledger stays whole.
_DOCUMENT_FAILURES: tuple[type[FortnoxError], ...] = (*FILE_FAILURES, FortnoxScopeMissing)


@dataclass(frozen=True)
class LedgerDone:
    """The totals and reconciliation of one ledger."""

    totals: LedgerTotals


@dataclass(frozen=True)
class ImportDone:
    """The last event of a successful import."""

    import_id: str
    balance_date: date
    ledgers: tuple[LedgerTotals, ...]
    document_count: int
    started_at: datetime
    finished_at: datetime
    unavailable: tuple[DocumentUnavailable, ...] = ()


LedgerEvent = (Progress | ItemFound | DocumentPart | DocumentUnavailable | LedgerDone
               | ImportDone)


def chosen_ledgers(asked: Sequence[Ledger | None]) -> tuple[Ledger, ...]:
    """The ledgers to import, each once, in the order asked: no ledger asked for, or one left
    unspecified (``None``), means both."""
    both = (Ledger.CUSTOMER, Ledger.SUPPLIER)
    chosen = [ledger for one in asked for ledger in (both if one is None else (one,))]
    return tuple(dict.fromkeys(chosen or both))


class LedgerImport:
    """The ImportLedgers use case over the Fortnox port and the import history.

    Args:
        api: The Fortnox port.
        history: The import history (kind ``LEDGERS``, one entry per ledger).
        connections: Where each successful import is noted (the token store), when given.
    """

    def __init__(
        self,
        api: FortnoxApi,
        history: ImportHistory,
        connections: ConnectionRecords | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._api = api
        self._history = history
        self._connections = connections
        self._clock = clock

    async def run(self, request: LedgerImportRequest) -> AsyncIterator[LedgerEvent]:
        """Streams progress, open items, documents, per-ledger totals, then ``ImportDone``."""
        record = await self._history.start(request.tenant, ImportKind.LEDGERS,
                                           request.requested_by, request.balance_date)
        events = self._events(record.import_id, record.started_at, request)
        async for event in recorded(self._history, record.import_id, events):
            yield event

    async def _events(
        self, import_id: str, started_at: datetime, request: LedgerImportRequest
    ) -> AsyncIterator[LedgerEvent]:
        tenant, balance_date, deadline = request.tenant, request.balance_date, request.deadline
        yield Progress(Stage.AUTHORIZING,
                       message="Finding the financial year of the balance date.")
        year = await self._api.financial_year_for_date(tenant, balance_date, deadline=deadline)
        if year is None:
            raise InvalidRequest(
                f"{balance_date} is in no Fortnox financial year of the company.",
                reason="FINANCIAL_YEAR_NOT_FOUND",
                violations=(FieldViolation("balance_date", "must be inside a financial year"),))
        books = await general_ledger(self._api, tenant, year, deadline)
        done: list[LedgerTotals] = []
        documents_sent = 0
        unavailable: list[DocumentUnavailable] = []
        for ledger in chosen_ledgers(request.ledgers):
            yield Progress(Stage.FETCHING_LEDGER, message=f"Reading the {ledger.value} ledger.")
            fetch = customer_ledger if ledger is Ledger.CUSTOMER else supplier_ledger
            docs, payments = await fetch(self._api, tenant, balance_date, deadline)
            items, after = open_items(docs, payments, balance_date)
            refs = await self._document_refs(tenant, ledger, items,
                                             request.include_documents, deadline)
            for index, item in enumerate(items, start=1):
                yield ItemFound(item, refs.get(item.document.number, ()))
                if index % 100 == 0:
                    yield Progress(Stage.FETCHING_LEDGER, items_done=index,
                                   items_total=len(items), message=f"{ledger.value} open items")
            if request.include_documents:
                async for event in self._documents(tenant, ledger, items, refs, deadline):
                    documents_sent += isinstance(event, DocumentPart) and event.last
                    if isinstance(event, DocumentUnavailable):
                        unavailable.append(event)
                    yield event
            totals = LedgerTotals(ledger, tuple(items), tuple(after),
                                  reconcile(ledger, docs, payments, books[ledger], balance_date),
                                  balance_date)
            await self._history.add_year(import_id, ImportedYear(
                financial_year_id=year.id, start_date=year.from_date, end_date=year.to_date,
                ledger=ledger.value, open_item_count=len(items)))
            done.append(totals)
            yield LedgerDone(totals)
        yield Progress(Stage.DONE, message="Every ledger is read.")
        finished = self._clock()
        await record_success(self._history, import_id)
        if self._connections is not None:
            await self._connections.record_import(tenant, ImportKind.LEDGERS, finished)
        yield ImportDone(import_id, balance_date, tuple(done), documents_sent, started_at,
                         finished, tuple(unavailable))

    async def _document_refs(
        self, tenant: str, ledger: Ledger, items: Sequence[OpenItem], wanted: bool,
        deadline: float | None,
    ) -> dict[str, tuple[DocumentRef, ...]]:
        if not wanted:
            return {}
        if ledger is Ledger.CUSTOMER:
            return {i.document.number: (DocumentRef(f"invoice-{i.document.number}",
                                                    f"faktura-{i.document.number}.pdf"),)
                    for i in items}
        numbers = {i.document.number for i in items}
        refs: dict[str, list[DocumentRef]] = {}
        async for connection in self._api.supplier_invoice_file_connections(
                tenant, deadline=deadline):
            if connection.supplier_invoice_number in numbers:
                refs.setdefault(connection.supplier_invoice_number, []).append(
                    DocumentRef(connection.file_id, connection.name or connection.file_id))
        return {number: tuple(found) for number, found in refs.items()}

    async def _documents(
        self, tenant: str, ledger: Ledger, items: Sequence[OpenItem],
        refs: dict[str, tuple[DocumentRef, ...]], deadline: float | None,
    ) -> AsyncIterator[Progress | DocumentPart | DocumentUnavailable]:
        total = sum(len(refs.get(i.document.number, ())) for i in items)
        done = 0
        for item in items:
            for ref in refs.get(item.document.number, ()):
                yield Progress(Stage.FETCHING_DOCUMENTS, items_done=done, items_total=total,
                               message=ref.file_name)
                try:
                    stream = await self._open(tenant, ledger, item.document, ref, deadline)
                    async with stream:
                        async for part in _parts(stream, ref, item.document):
                            yield part
                except _DOCUMENT_FAILURES as exc:
                    yield DocumentUnavailable(ref, ledger, item.document.number, exc.reason,
                                              exc.message)
                done += 1

    async def _open(self, tenant: str, ledger: Ledger, document: Document, ref: DocumentRef,
                    deadline: float | None) -> ByteStream:
        if ledger is Ledger.CUSTOMER:
            return await self._api.open_invoice_pdf(tenant, document.number, deadline=deadline)
        return await self._api.open_file(tenant, ref.document_id, FileSource.CONNECTION,
                                         deadline=deadline)


async def _parts(stream: ByteStream, ref: DocumentRef, document: Document
                 ) -> AsyncIterator[DocumentPart]:
    """Re-chunks a download into parts of at most ``CHUNK_BYTES``, the last one flagged."""
    offset, pending = 0, b""
    async for chunk in stream:
        pending += chunk
        whole = whole_pieces(pending)
        for piece in pieces(pending[:whole], offset, last=False):
            yield DocumentPart(ref, document.ledger, document.number, stream.content_type, *piece)
        offset, pending = offset + whole, pending[whole:]
    for piece in pieces(pending, offset, last=True):
        yield DocumentPart(ref, document.ledger, document.number, stream.content_type, *piece)
