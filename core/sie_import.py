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
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

from opentelemetry import trace

from core.chunks import CHUNK_BYTES, pieces
from core.connections import ConnectionRecords, require_connected
from core.errors import FortnoxScopeMissing, SieInvalid
from core.fortnox_api import FinancialYear, FortnoxApi
from core.imports import (
    ChangeKind,
    ImportedYear,
    ImportHistory,
    ImportKind,
    ImportRecord,
    Progress,
    Stage,
    VoucherChanges,
    record_success,
    recorded,
)
from core.sie_parse import (
    EncodedRecords,
    Parsed,
    ParseOptions,
    RecordBatch,
    SieParsers,
    YearFinding,
    YearParsed,
    YearParsing,
)
from core.voucher_digest import BALANCES_KEY, DigestBatch
from core.voucher_documents import document_counts
from core.year_selection import YearChoice, select_years
from sie import (
    Account,
    Balance,
    Code,
    Finding,
    Flag,
    OrgNumber,
    ReadSummary,
    SieReader,
    SieType,
    Voucher,
)
from sie import FinancialYear as SieYear
from sie.controls import ControlFinding, ControlsResult, cross_year_findings
from sie.values import org_number_digits

#: How often (in bytes received) a progress event is sent while downloading.
PROGRESS_EVERY_BYTES = 256 * 1024
#: How many voucher digests are written to the history at a time (one row of a few hundred
#: KiB: the history's cost is per batch, not per voucher).
STAGE_EVERY = 20_000
#: Raw bytes go to the caller in pieces as large as a message may carry, or at least this often
#: (seconds) while a slow download has not filled one: a message costs the service the same
#: whether it carries 32 KiB or 1 MiB.
RAW_AT_LEAST_EVERY_S = 0.1
#: The parser process is handed at least this many bytes at a time (or what came within
#: ``RAW_AT_LEAST_EVERY_S``): each hand-over costs both processes a frame, whatever its size,
#: and downloads arrive in pieces of a few KiB.
PARSE_AT_LEAST_BYTES = 256 * 1024
#: How far into a file its ``#RAR 0`` is looked for before the caller gets any byte of it.
YEAR_CHECK_BYTES = 64 * 1024
#: The check reads a chunk this much at a time and stops once the head is over: a file's head
#: is a few hundred bytes, and reading a whole 64 KiB chunk of vouchers in the service's event
#: loop cost some 16 ms an import (a fifth of the service's CPU with 20 tenants at once).
YEAR_CHECK_STEP = 4 * 1024
#: How often (seconds) progress is sent while the file is in and the records wait for the
#: listing of the vouchers' documents.
LISTING_PROGRESS_EVERY_S = 1.0


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
        connections: ConnectionRecords,
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
        connection = require_connected(await self._connections.connection(request.tenant))
        yield Progress(Stage.AUTHORIZING, message="the Fortnox connection is usable")
        record = await self._history.start(request.tenant, ImportKind.SIE, request.requested_by)
        span.set_attribute("import.id", record.import_id)
        years = self._years(request, record, connection.organisation_number)
        async for event in recorded(self._history, record.import_id, years):
            yield event

    async def _years(
        self, request: SieImportRequest, record: ImportRecord, organisation_number: str
    ) -> AsyncIterator[ImportEvent]:
        span = trace.get_current_span()
        yield Progress(Stage.RESOLVING_YEARS, message="resolving financial years")
        available = await self._api.financial_years(request.tenant, deadline=request.deadline)
        years = select_years(available, request.years, self._clock().date())
        span.set_attribute("fortnox.financial_years", [y.id for y in years])
        summaries = []
        for year in years:
            summary: YearSummary | None = None
            async for event in self._import_year(request, record.import_id, year,
                                                 organisation_number):
                if isinstance(event, YearSummary):
                    summary = event
                elif isinstance(event, Progress) and event.message:
                    span.add_event(event.message, {"financial_year_id": event.financial_year_id,
                                                   "bytes": event.bytes_done})
                yield event
            assert summary is not None
            summaries.append(summary)
        await record_success(self._history, record.import_id)
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
        self, request: SieImportRequest, import_id: str, year: FinancialYear,
        organisation_number: str,
    ) -> AsyncIterator[ImportEvent]:
        with self._tracer.start_as_current_span("sie.import_year") as span:
            span.set_attribute("fortnox.financial_year_id", year.id)
            # With records, the vouchers' document counts are listed beside the download
            # (``_CountListing``); the parser holds the record batches until they come.
            options = ParseOptions(year.id, request.allow_unbalanced, request.include_records,
                                   counts_to_come=request.include_records)
            if self._parsers.busy():
                yield Progress(Stage.DOWNLOADING, year.id,
                               message="waiting for a free SIE parser (other imports run)")
            async with self._parsers.parse(options) as parsing:
                received = _Received()
                async for event in self._download(request, import_id, year, parsing, received,
                                                  organisation_number):
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
        organisation_number: str,
    ) -> AsyncIterator[ImportEvent]:
        """Streams the year's file to the caller and the parser; digests go to the history."""
        sha = hashlib.sha256()
        taken = _Taken()
        staging: list[asyncio.Future[None]] = []  # SQLite writes beside the download
        size = 0
        next_progress = 0
        # The newest bytes, sent once we know the year, that they are not the last, and (so
        # that a message carries as much as it may) that they fill whole pieces.
        held: list[bytes] = []
        held_size = 0
        unparsed: list[bytes] = []  # not yet handed to the parser
        unparsed_size = 0
        loop = asyncio.get_running_loop()
        flush_at = parse_at = loop.time() + RAW_AT_LEAST_EVERY_S
        check = _YearCheck(year, organisation_number)
        stream = await self._api.open_sie_export(
            request.tenant, year.id, request.sie_type, deadline=request.deadline
        )
        # Started once the download is (not before: the file is what the caller waits for).
        listing = (_CountListing(self._api, request.tenant, year.id, request.deadline)
                   if request.include_records else None)
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
                    unparsed.append(chunk)
                    unparsed_size += len(chunk)
                    parsed_meanwhile: list[Parsed] = []
                    if unparsed_size >= PARSE_AT_LEAST_BYTES or loop.time() >= parse_at:
                        parse_at = loop.time() + RAW_AT_LEAST_EVERY_S
                        parsed_meanwhile = await parsing.feed(b"".join(unparsed))
                        unparsed, unparsed_size = [], 0
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
                    for event in taken.events(parsed_meanwhile):
                        yield event
                    if listing is not None and listing.ready():
                        async for released in listing.hand_over(parsing):
                            for event in taken.events(released):
                                yield event
                    if taken.pending >= STAGE_EVERY:
                        staging.append(self._stage(import_id, year.id, taken.digests))
                        taken.digests, taken.pending = [], 0
                    if size >= next_progress:
                        next_progress = size + PROGRESS_EVERY_BYTES
                        yield Progress(Stage.DOWNLOADING, year.id, size, total, taken.vouchers)
            check.feed(b"", last=True)
            if unparsed:
                for event in taken.events(await parsing.feed(b"".join(unparsed))):
                    yield event
            if request.stream_raw:
                for piece in pieces(b"".join(held), size - held_size, last=True):
                    yield RawChunk(year.id, *piece)
            if listing is not None and not listing.handed_over:
                # The records wait for the listing: Fortnox's rate bounds it.
                while not await listing.wait(LISTING_PROGRESS_EVERY_S):
                    yield Progress(Stage.FETCHING_DOCUMENTS, year.id, size, size,
                                   taken.vouchers,
                                   message=f"listing the vouchers' documents for the records: "
                                           f"{listing.listed} so far")
                async for released in listing.hand_over(parsing):
                    for event in taken.events(released):
                        yield event
            rest, received.year = await parsing.close()
            for event in taken.events(rest):
                yield event
            taken.digests.append(DigestBatch.of(
                [(BALANCES_KEY, received.year.balances_digest)], start=taken.fingerprints))
            staging.append(self._stage(import_id, year.id, taken.digests))
        finally:  # no write of this import may land after it is finished
            if listing is not None:
                await listing.aclose()
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


@dataclass
class _Taken:
    """What the parser's answers of a year brought so far: fingerprints not yet staged, and
    how many vouchers it has read."""

    digests: list[DigestBatch] = field(default_factory=list)
    pending: int = 0  # fingerprints in ``digests``
    fingerprints: int = 0  # of the whole file so far
    vouchers: int = 0

    def events(self, answers: list[Parsed]) -> list[RecordBatch | EncodedRecords | YearFinding]:
        """Takes the answers' fingerprints; returns their events for the caller."""
        events: list[RecordBatch | EncodedRecords | YearFinding] = []
        for parsed in answers:
            self.vouchers = parsed.vouchers
            self.digests.append(parsed.digests)
            self.pending += len(parsed.digests)
            self.fingerprints += len(parsed.digests)
            events += parsed.events
        return events


class _CountListing:
    """A year's voucher file connections listed beside its download, for the document counts
    of its records. Fortnox lists connections in no stated order, so no voucher's count is
    known before the listing ends: the parser holds the records until then, while the file is
    downloaded, parsed, fingerprinted and streamed on."""

    def __init__(self, api: FortnoxApi, tenant: str, year_id: int,
                 deadline: float | None) -> None:
        self.listed = 0  # connections so far
        self._handed_over = False
        self._task = asyncio.ensure_future(self._counts(api, tenant, year_id, deadline))

    async def _counts(self, api: FortnoxApi, tenant: str, year_id: int,
                      deadline: float | None) -> Counter[tuple[str, int]] | None:
        def listed() -> None:
            self.listed += 1
        try:
            return await document_counts(api, tenant, year_id, deadline=deadline,
                                         listed=listed)
        except FortnoxScopeMissing:  # the records say nothing of documents
            return None

    @property
    def handed_over(self) -> bool:
        """Whether the parser has the counts."""
        return self._handed_over

    def ready(self) -> bool:
        """Whether the listing ended (or failed) and its counts are not handed over yet."""
        return not self._handed_over and self._task.done()

    async def wait(self, seconds: float) -> bool:
        """Waits at most ``seconds`` for the listing; whether it ended."""
        await asyncio.wait({self._task}, timeout=seconds)
        return self._task.done()

    async def hand_over(self, parsing: YearParsing) -> AsyncIterator[list[Parsed]]:
        """Gives the ended listing's counts to the parser (raises what failed the listing);
        yields what it sends back, the held records piece by piece."""
        counts = self._task.result()
        self._handed_over = True
        async for parsed in parsing.counts(counts):
            yield parsed

    async def aclose(self) -> None:
        """Stops the listing if it still runs (the import failed or was cancelled)."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class _YearCheck:
    """Reads a file's identification records and fails the year when the file is not the one
    asked for: no SIE at all (its head holds neither ``#FLAGGA`` nor ``#SIETYP``, or its first
    line is no record: UTF-16, random bytes, an HTML page), whatever the caller's policy, since
    such a file would otherwise pass as a year of no vouchers; its ``#RAR 0`` another year
    (Fortnox ignoring ``financialyear`` would otherwise import another year under this one's
    id); or its ``#ORGNR`` another company than the connection's (compared on the 10 digits,
    however each is written). The caller gets none of the file's bytes before the check is done
    (``done``): once the file is marked SIE, ``#RAR 0`` is read and the head is over (``#ORGNR``
    read, or a chart, balance or voucher record reached), or after ``YEAR_CHECK_BYTES``; what
    the head lacks besides the mark is left to the parser's findings."""

    def __init__(self, year: FinancialYear, organisation_number: str = "") -> None:
        self._year = year
        self._company = org_number_digits(organisation_number)
        self._reader: SieReader | None = SieReader()
        self._seen = 0
        self._marked = False  # #FLAGGA or #SIETYP read
        self._found_year: SieYear | None = None
        self._found_org: OrgNumber | None = None
        self._head_over = self._company is None  # nothing to compare #ORGNR with

    @property
    def done(self) -> bool:
        """Whether the file is checked (or cannot be, within ``YEAR_CHECK_BYTES``)."""
        return self._reader is None

    @property
    def seen(self) -> int:
        """How many of the file's bytes the check has read."""
        return self._seen

    def feed(self, chunk: bytes, *, last: bool = False) -> None:
        """Reads the next bytes of the head, ``YEAR_CHECK_STEP`` at a time until the head is
        over; raises ``SieInvalid`` on another year or company."""
        head = memoryview(chunk)[:max(0, YEAR_CHECK_BYTES - self._seen)]
        for start in range(0, len(head), YEAR_CHECK_STEP):
            if self._reader is None:
                return
            step = head[start:start + YEAR_CHECK_STEP]
            self._step(bytes(step), last=last and start + len(step) >= len(head))
        if not head:
            self._step(b"", last=last)

    def _step(self, head: bytes, *, last: bool) -> None:
        if self._reader is None:
            return
        self._seen += len(head)
        ended = last or self._seen >= YEAR_CHECK_BYTES
        events = list(self._reader.feed(head))
        if ended:
            events += self._reader.close()
        for event in events:
            if isinstance(event, Flag | SieType):
                self._marked = True
            elif isinstance(event, Finding) and event.code == Code.NOT_SIE:
                self._not_sie(event.message)
            elif isinstance(event, SieYear) and event.index == 0:
                self._found_year = self._found_year or event
            elif isinstance(event, OrgNumber):
                self._found_org = self._found_org or event
                self._head_over = True
            elif isinstance(event, Account | Balance | Voucher):
                self._head_over = True
        if ended and not self._marked:
            self._not_sie(f"neither #FLAGGA nor #SIETYP in its first {self._seen} bytes")
        if ended or (self._marked and self._found_year is not None and self._head_over):
            self._reader = None
            if self._found_year is not None:
                self._compare(self._found_year)
            if self._found_org is not None:
                self._compare_company(self._found_org)

    def _not_sie(self, problem: str) -> None:
        year = self._year
        raise SieInvalid(
            f"Fortnox sent a file for financial year {year.id} that is not a SIE file.",
            reason="SIE_NOT_SIE",
            metadata={"financial_year_id": str(year.id), "problem": problem[:200]},
        )

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

    def _compare_company(self, found: OrgNumber) -> None:
        digits = org_number_digits(found.number)
        if self._company is None or digits is None or digits == self._company:
            return  # a #ORGNR that is no number is the parser's finding
        expected, received = (f"{d[:6]}-{d[6:]}" for d in (self._company, digits))
        raise SieInvalid(
            f"Fortnox sent the SIE file of organisation number {received} for the company"
            f" {expected} the tenant is connected to.",
            reason="SIE_COMPANY_MISMATCH",
            metadata={"financial_year_id": str(self._year.id), "expected": expected,
                      "received": received, "line": str(found.line)},
        )


@dataclass
class _Received:
    """What a year's download left for its summary."""

    sha256: str = ""
    year: YearParsed = field(init=False)
