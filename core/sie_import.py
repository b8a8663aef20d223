"""ImportSie: download each year's SIE file from Fortnox, validate it as it streams, and report.

Download, parse and send are one pipeline: every chunk Fortnox sends is hashed, handed to the
caller, and handed to a parser (``SieParsers``, another process in production) without waiting
for it, so downloading and parsing overlap and memory stays bounded by a few chunks whatever the
file's size. The import is recorded in the history from start to end; a cancelled call (or a
passed deadline) closes the download, stops the parser and records ``cancelled``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

from opentelemetry import trace

from core.chunks import CHUNK_BYTES, pieces
from core.connections import FortnoxConnections, require_connected
from core.errors import SieInvalid
from core.fortnox_api import FinancialYear, FortnoxApi
from core.imports import (
    ChangeKind,
    ImportedYear,
    ImportHistory,
    ImportKind,
    ImportRecord,
    ImportStatus,
    Progress,
    Stage,
    VoucherChanges,
    recorded,
)
from core.sie_parse import (
    EncodedRecords,
    ParseOptions,
    RecordBatch,
    SieParsers,
    YearFinding,
    YearParsed,
    YearParsing,
)
from core.voucher_digest import BALANCES_KEY, DigestBatch
from core.year_selection import YearChoice, select_years
from sie import FinancialYear as SieYear
from sie import ReadSummary, SieReader
from sie.controls import ControlFinding, ControlsResult, cross_year_findings

#: How often (in bytes received) a progress event is sent while downloading.
PROGRESS_EVERY_BYTES = 256 * 1024
#: How many voucher digests are written to the history at a time (one row of a few hundred
#: KiB: the history's cost is per batch, not per voucher).
STAGE_EVERY = 20_000
#: Raw bytes go to the caller in pieces as large as a message may carry, or at least this often
#: (seconds) while a slow download has not filled one: a message costs the service the same
#: whether it carries 32 KiB or 1 MiB.
RAW_AT_LEAST_EVERY_S = 0.1
#: How far into a file its ``#RAR 0`` is looked for before the caller gets any byte of it.
YEAR_CHECK_BYTES = 64 * 1024


@dataclass(frozen=True)
class SieImportRequest:
    """What a caller asked to import."""

    tenant: str
    years: tuple[YearChoice, ...] = ()
    sie_type: int = 4
    stream_raw: bool = True
    include_records: bool = False
    allow_unbalanced: bool = False
    fail_on_error: bool = False
    requested_by: str = ""
    deadline: float | None = None


@dataclass(frozen=True)
class RawChunk:
    """Original bytes of a year's file."""

    financial_year_id: int
    offset: int
    data: bytes
    last: bool


@dataclass(frozen=True)
class YearSummary:
    """What one year's import produced."""

    year: FinancialYear
    sha256: str
    byte_size: int
    read: ReadSummary
    errors: int
    warnings: int
    changes: VoucherChanges
    controls: ControlsResult

    @property
    def change_kind(self) -> ChangeKind:
        """How the year's file differs from the one the previous import of the year read."""
        return self.changes.kind(self.sha256)

    @property
    def controls_passed(self) -> bool:
        """True when no year-end control found anything."""
        return not self.controls.findings


@dataclass(frozen=True)
class ImportSummary:
    """The last event of a successful import."""

    import_id: str
    years: tuple[YearSummary, ...]
    started_at: datetime
    finished_at: datetime
    cross_year_findings: tuple[ControlFinding, ...] = ()

    @property
    def total_bytes(self) -> int:
        """Bytes received over all years."""
        return sum(y.byte_size for y in self.years)

    @property
    def total_vouchers(self) -> int:
        """Vouchers read over all years."""
        return sum(y.read.vouchers for y in self.years)


ImportEvent = (Progress | RawChunk | RecordBatch | EncodedRecords | YearFinding | YearSummary
               | ImportSummary)


class SieImport:
    """The ImportSie use case."""

    def __init__(
        self,
        api: FortnoxApi,
        connections: FortnoxConnections,
        history: ImportHistory,
        parsers: SieParsers,
        clock: Callable[[], datetime],
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self._api = api
        self._connections = connections
        self._history = history
        self._parsers = parsers
        self._cleanups: set[asyncio.Future[None]] = set()  # held, so they are not collected
        self._clock = clock
        self._tracer = trace.get_tracer("fortnox-bridge.core", tracer_provider=tracer_provider)

    async def aclose(self) -> None:
        """Waits for the clean-ups still running, so none outlives the history's database."""
        await asyncio.gather(*self._cleanups, return_exceptions=True)

    async def run(self, request: SieImportRequest) -> AsyncIterator[ImportEvent]:
        """Imports the years; the last event is an ``ImportSummary`` unless an error is raised."""
        span = trace.get_current_span()
        span.set_attribute("skattbokslut.tenant", request.tenant)
        require_connected(await self._connections.get_connection(request.tenant))
        yield Progress(Stage.AUTHORIZING, message="the Fortnox connection is usable")
        record = await self._history.start(request.tenant, ImportKind.SIE, request.requested_by)
        span.set_attribute("import.id", record.import_id)
        async for event in recorded(self._history, record.import_id, self._years(request, record)):
            yield event

    async def _years(
        self, request: SieImportRequest, record: ImportRecord
    ) -> AsyncIterator[ImportEvent]:
        span = trace.get_current_span()
        yield Progress(Stage.RESOLVING_YEARS, message="resolving financial years")
        available = await self._api.financial_years(request.tenant, deadline=request.deadline)
        years = select_years(available, request.years, self._clock().date())
        span.set_attribute("fortnox.financial_years", [y.id for y in years])
        summaries = []
        for year in years:
            summary: YearSummary | None = None
            async for event in self._import_year(request, record.import_id, year):
                if isinstance(event, YearSummary):
                    summary = event
                elif isinstance(event, Progress) and event.message:
                    span.add_event(event.message, {"financial_year_id": event.financial_year_id,
                                                   "bytes": event.bytes_done})
                yield event
            assert summary is not None
            summaries.append(summary)
        await self._history.finish(record.import_id, ImportStatus.SUCCEEDED)
        # Dropping a large year's superseded digests takes a while: the caller need not wait.
        cleanup = asyncio.ensure_future(self._history.drop_superseded(record.import_id))
        self._cleanups.add(cleanup)
        cleanup.add_done_callback(self._cleanups.discard)
        finished = self._clock()
        await self._connections.record_import(request.tenant, ImportKind.SIE, finished)
        span.set_attribute("import.vouchers", sum(s.read.vouchers for s in summaries))
        yield Progress(Stage.DONE, message="import finished")
        crossing = tuple(cross_year_findings([s.controls for s in summaries]))
        yield ImportSummary(
            record.import_id, tuple(summaries), record.started_at, finished, crossing
        )

    async def _import_year(
        self, request: SieImportRequest, import_id: str, year: FinancialYear
    ) -> AsyncIterator[ImportEvent]:
        with self._tracer.start_as_current_span("sie.import_year") as span:
            span.set_attribute("fortnox.financial_year_id", year.id)
            options = ParseOptions(year.id, request.allow_unbalanced, request.include_records)
            if self._parsers.busy():
                yield Progress(Stage.DOWNLOADING, year.id,
                               message="waiting for a free SIE parser (other imports run)")
            async with self._parsers.parse(options) as parsing:
                received = _Received()
                async for event in self._download(request, import_id, year, parsing, received):
                    yield event
            read, checked = received.year.read, received.year.controls
            size = read.bytes_read
            yield Progress(Stage.DOWNLOADING, year.id, size, size, read.vouchers, read.vouchers,
                           message=f"financial year {year.from_date.year} received")
            yield Progress(Stage.CONTROLLING, year.id, size, size, read.vouchers, read.vouchers,
                           message="checking the trial balance and opening balances")
            for control in checked.findings:
                yield YearFinding(year.id, control)
            changes = await self._history.compare_year(
                request.tenant, import_id, year.id, received.sha256)
            summary = YearSummary(
                year=year, sha256=received.sha256, byte_size=size, read=read,
                errors=read.errors, warnings=read.warnings + len(checked.findings),
                changes=changes, controls=checked,
            )
            span.set_attribute("sie.bytes", size)
            span.set_attribute("sie.vouchers", read.vouchers)
            span.set_attribute("sie.errors", read.errors)
            await self._history.add_year(import_id, ImportedYear(
                financial_year_id=year.id, start_date=year.from_date, end_date=year.to_date,
                sha256=summary.sha256, byte_size=size, voucher_count=read.vouchers,
                error_count=summary.errors, warning_count=summary.warnings,
            ))
            yield summary
            if request.fail_on_error and summary.errors:
                raise SieInvalid(
                    f"The SIE file of financial year {year.id} has {summary.errors} errors.",
                    metadata={"financial_year_id": str(year.id), "errors": str(summary.errors)},
                )

    async def _download(
        self,
        request: SieImportRequest,
        import_id: str,
        year: FinancialYear,
        parsing: YearParsing,
        received: _Received,
    ) -> AsyncIterator[ImportEvent]:
        """Streams the year's file to the caller and the parser; digests go to the history."""
        sha = hashlib.sha256()
        digests: list[DigestBatch] = []
        pending = 0  # fingerprints in ``digests``
        fingerprints = 0  # of the whole file so far
        staging: list[asyncio.Future[None]] = []  # SQLite writes beside the download
        size = 0
        vouchers = 0
        next_progress = 0
        # The newest bytes, sent once we know the year, that they are not the last, and (so
        # that a message carries as much as it may) that they fill whole pieces.
        held: list[bytes] = []
        held_size = 0
        loop = asyncio.get_running_loop()
        flush_at = loop.time() + RAW_AT_LEAST_EVERY_S
        check = _YearCheck(year)
        stream = await self._api.open_sie_export(
            request.tenant, year.id, request.sie_type, deadline=request.deadline
        )
        total = stream.content_length or 0
        yield Progress(Stage.DOWNLOADING, year.id, 0, total,
                       message=f"downloading financial year {year.from_date.year}")
        try:
            async with stream:
                async for chunk in stream:
                    if not chunk:
                        continue
                    # The parser is the bottleneck: it gets the chunk before the caller, whose
                    # send may wait for flow control.
                    parsed_meanwhile = await parsing.feed(chunk)
                    sha.update(chunk)
                    check.feed(chunk)
                    if request.stream_raw:
                        if held and check.done and (
                            held_size >= CHUNK_BYTES or loop.time() >= flush_at
                        ):
                            flush_at = loop.time() + RAW_AT_LEAST_EVERY_S
                            whole = b"".join(held)
                            cut = (len(whole) if len(whole) < CHUNK_BYTES
                                   else len(whole) // CHUNK_BYTES * CHUNK_BYTES)
                            for piece in pieces(whole[:cut], size - held_size, last=False):
                                yield RawChunk(year.id, *piece)
                            held = [whole[cut:]] if cut < len(whole) else []
                            held_size -= cut
                        held.append(chunk)
                        held_size += len(chunk)
                    size += len(chunk)
                    for parsed in parsed_meanwhile:
                        vouchers = parsed.vouchers
                        digests.append(parsed.digests)
                        pending += len(parsed.digests)
                        fingerprints += len(parsed.digests)
                        for event in parsed.events:
                            yield event
                    if pending >= STAGE_EVERY:
                        staging.append(self._stage(import_id, year.id, digests))
                        digests, pending = [], 0
                    if size >= next_progress:
                        next_progress = size + PROGRESS_EVERY_BYTES
                        yield Progress(Stage.DOWNLOADING, year.id, size, total, vouchers)
            check.feed(b"", last=True)
            if request.stream_raw:
                for piece in pieces(b"".join(held), size - held_size, last=True):
                    yield RawChunk(year.id, *piece)
            rest, received.year = await parsing.close()
            for parsed in rest:
                digests.append(parsed.digests)
                fingerprints += len(parsed.digests)
                for event in parsed.events:
                    yield event
            digests.append(DigestBatch.of([(BALANCES_KEY, received.year.balances_digest)],
                                          start=fingerprints))
            staging.append(self._stage(import_id, year.id, digests))
        finally:  # no write of this import may land after it is finished
            await asyncio.gather(*staging, return_exceptions=True)
        for future in staging:
            future.result()
        received.sha256 = sha.hexdigest()

    def _stage(
        self, import_id: str, year_id: int, digests: list[DigestBatch]
    ) -> asyncio.Future[None]:
        """Writes digests while the download goes on (the history writes off the loop)."""
        return asyncio.ensure_future(self._history.stage_voucher_digests(
            import_id, year_id, DigestBatch.joined(digests)))


class _YearCheck:
    """Reads a file's head up to its ``#RAR 0`` (the year the file covers) and fails the year
    when that is not the year asked for: Fortnox ignoring ``financialyear`` would otherwise
    import another year under this one's id. The caller gets none of the file's bytes before
    the check is done (``done``); a head without ``#RAR 0`` is left to the parser's findings."""

    def __init__(self, year: FinancialYear) -> None:
        self._year = year
        self._reader: SieReader | None = SieReader()
        self._seen = 0

    @property
    def done(self) -> bool:
        """Whether the year is checked (or cannot be, within ``YEAR_CHECK_BYTES``)."""
        return self._reader is None

    def feed(self, chunk: bytes, *, last: bool = False) -> None:
        """Reads the next bytes of the head; raises ``SieInvalid`` on another year."""
        if self._reader is None:
            return
        head = chunk[:max(0, YEAR_CHECK_BYTES - self._seen)]
        self._seen += len(head)
        events = list(self._reader.feed(head))
        if last or self._seen >= YEAR_CHECK_BYTES:
            events += self._reader.close()
        current = next((e for e in events if isinstance(e, SieYear) and e.index == 0), None)
        if current is not None:
            self._reader = None
            self._compare(current)
        elif last or self._seen >= YEAR_CHECK_BYTES:
            self._reader = None

    def _compare(self, found: SieYear) -> None:
        year = self._year
        if (found.start, found.end) != (year.from_date, year.to_date):
            raise SieInvalid(
                f"Fortnox sent the SIE file of {found.start}..{found.end} when financial year "
                f"{year.id} ({year.from_date}..{year.to_date}) was asked for.",
                reason="SIE_YEAR_MISMATCH",
                metadata={"financial_year_id": str(year.id),
                          "expected": f"{year.from_date}..{year.to_date}",
                          "received": f"{found.start}..{found.end}"},
            )


@dataclass
class _Received:
    """What a year's download left for its summary."""

    sha256: str = ""
    year: YearParsed = field(init=False)
