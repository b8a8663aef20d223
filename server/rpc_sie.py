"""ImportSie, GetImport and ListImports: protobuf in, use case, protobuf out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from core.errors import ImportNotFound
from core.feed.changes import changed_since_imports
from core.feed.ports import FeedStore
from core.imports import (
    ChangeKind,
    ImportHistory,
    ImportKind,
    ImportRecord,
    ImportStatus,
    Progress,
)
from core.money import to_ore
from core.sie_import import (
    ImportEvent,
    ImportSummary,
    RawChunk,
    SieImport,
    SieImportRequest,
    YearSummary,
)
from core.sie_parse import EncodedRecords, RecordBatch, YearFinding
from core.year_selection import YearChoice
from server.bounds import page_size
from server.call import Context, deadline, requested_by
from server.convert import (
    from_proto_date,
    progress_message,
    proto_date,
    timestamp,
)
from sie import Balance, Finding, Severity, TransRow, Voucher
from sie.controls import ControlFinding
from sie.controls.model import money
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import import_history_pb2 as history_pb
from spiris.skattbokslut.fortnox.v1 import sie_import_pb2 as sie_pb

_CHECKSUM = {
    "absent": sie_pb.SieYearSummary.CHECKSUM_STATUS_ABSENT,
    "verified": sie_pb.SieYearSummary.CHECKSUM_STATUS_VERIFIED,
    "mismatch": sie_pb.SieYearSummary.CHECKSUM_STATUS_MISMATCH,
}
_STATUS = {
    ImportStatus.RUNNING: history_pb.Import.STATUS_RUNNING,
    ImportStatus.SUCCEEDED: history_pb.Import.STATUS_SUCCEEDED,
    ImportStatus.FAILED: history_pb.Import.STATUS_FAILED,
    ImportStatus.CANCELLED: history_pb.Import.STATUS_CANCELLED,
}
_KINDS = {ImportKind.SIE: history_pb.Import.KIND_SIE,
          ImportKind.LEDGERS: history_pb.Import.KIND_LEDGERS}
_CHANGE_KINDS = {
    ChangeKind.FIRST_IMPORT: sie_pb.YearChanges.KIND_FIRST_IMPORT,
    ChangeKind.UNCHANGED: sie_pb.YearChanges.KIND_UNCHANGED,
    ChangeKind.CHANGED: sie_pb.YearChanges.KIND_CHANGED,
    ChangeKind.UNKNOWN: sie_pb.YearChanges.KIND_UNSPECIFIED,
}
_SIE_TYPES = {pb.ImportSieRequest.SIE_TYPE_UNSPECIFIED: 4, pb.ImportSieRequest.SIE_TYPE_1: 1,
              pb.ImportSieRequest.SIE_TYPE_2: 2, pb.ImportSieRequest.SIE_TYPE_3: 3,
              pb.ImportSieRequest.SIE_TYPE_4: 4}


class EncodedAnswer:
    """An ``ImportSieResponse`` that a parser process already wrote (its records, by
    ``server.record_wire``), sent on as its bytes are: decoding them only for gRPC to encode
    them again cost the service about 7 ms per MB. ``serialize_answer`` writes it; an
    interceptor that looks at answers sees which event it is, and anything more decodes it."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializeToString(self) -> bytes:
        """The answer's bytes, as the parser wrote them."""
        return self.data

    def WhichOneof(self, oneof_group: Literal["event", b"event"]) -> Literal["records"]:
        """``records``, the one event a parser writes, without decoding it."""
        return "records"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._decoded(), name)

    def _decoded(self) -> pb.ImportSieResponse:
        return pb.ImportSieResponse.FromString(self.data)


def serialize_answer(answer: pb.ImportSieResponse | EncodedAnswer) -> bytes:
    """ImportSie's response serializer: a message as protobuf writes it, an ``EncodedAnswer``
    as it was written."""
    return answer.SerializeToString()


class SieRpcs:
    """Serves ImportSie, GetImport and ListImports."""

    def __init__(self, use_case: SieImport, history: ImportHistory,
                 changes: FeedStore | None = None) -> None:
        self._use_case = use_case
        self._history = history
        self._changes = changes

    async def ImportSie(
        self, request: pb.ImportSieRequest, context: Context
    ) -> AsyncIterator[pb.ImportSieResponse | EncodedAnswer]:
        choices: list[YearChoice] = []
        for index, selector in enumerate(request.years):
            if selector.HasField("financial_year_id"):
                choices.append(selector.financial_year_id)
            elif selector.HasField("date_in_year"):
                choices.append(from_proto_date(selector.date_in_year, f"years[{index}]"))
        policy = request.validation_policy
        run = SieImportRequest(
            tenant=request.tenant,
            years=tuple(choices),
            sie_type=_SIE_TYPES[request.sie_type],
            stream_raw=not request.omit_raw_chunks,
            include_records=request.include_records,
            allow_unbalanced=policy.allow_unbalanced_vouchers,
            fail_on_error=policy.fail_on_error,
            requested_by=requested_by(context),
            deadline=deadline(context),
        )
        async for event in self._use_case.run(run):
            yield _event(event)

    async def GetImport(
        self, request: pb.GetImportRequest, context: Context
    ) -> pb.GetImportResponse:
        record = await self._history.get(request.tenant, request.import_id)
        if record is None:
            raise ImportNotFound("No import with that id exists for the tenant.",
                                 metadata={"import_id": request.import_id})
        return pb.GetImportResponse(import_record=(await self._messages([record]))[0])

    async def ListImports(
        self, request: pb.ListImportsRequest, context: Context
    ) -> pb.ListImportsResponse:
        kind = {history_pb.Import.KIND_SIE: ImportKind.SIE,
                history_pb.Import.KIND_LEDGERS: ImportKind.LEDGERS}.get(request.kind)
        page = await self._history.list_imports(
            request.tenant, kind, page_size(request), request.page_token)
        return pb.ListImportsResponse(imports=await self._messages(page.imports),
                                      next_page_token=page.next_cursor)

    async def _messages(self, records: Sequence[ImportRecord]) -> list[history_pb.Import]:
        """The history entries, each year with ``changed_since`` where the feed knows it."""
        messages = [import_message(r) for r in records]
        if self._changes is None:
            return messages
        known = await changed_since_imports(self._changes, records)
        for message, changes in zip(messages, known, strict=True):
            if changes is None:
                continue
            for year in message.years:
                changed = changes.get(year.financial_year_id)
                year.changed_since.CopyFrom(history_pb.BooksChangedSince(
                    books_changed=changed is not None,
                    vouchers_changed=changed.changed_vouchers if changed else 0))
        return messages


def import_message(record: ImportRecord) -> history_pb.Import:
    """The history entry as the API shows it."""
    return history_pb.Import(
        import_id=record.import_id,
        tenant=record.tenant,
        kind=_KINDS[record.kind],
        status=_STATUS[record.status],
        requested_by=record.requested_by,
        started_at=timestamp(record.started_at),
        finished_at=timestamp(record.finished_at),
        error_reason=record.error_reason,
        error_message=record.error_message,
        balance_date=proto_date(record.balance_date),
        years=[
            history_pb.ImportedYear(
                financial_year_id=y.financial_year_id, start_date=proto_date(y.start_date),
                end_date=proto_date(y.end_date), sha256=y.sha256, byte_size=y.byte_size,
                voucher_count=y.voucher_count, error_count=y.error_count,
                warning_count=y.warning_count, ledger=y.ledger, open_item_count=y.open_item_count,
            )
            for y in record.years
        ],
    )


def finding_message(
    finding: Finding | ControlFinding, financial_year_id: int
) -> history_pb.Finding:
    """A reader or controls finding as the API shows it."""
    severity = (history_pb.Finding.SEVERITY_ERROR if finding.severity is Severity.ERROR
                else history_pb.Finding.SEVERITY_WARNING)
    message = history_pb.Finding(
        severity=severity, code=str(finding.code), line=finding.line or 0,
        message=finding.message, financial_year_id=financial_year_id,
    )
    if isinstance(finding, ControlFinding):
        message.account = finding.account or ""
        message.year_index = finding.year
        message.expected = money(finding.expected) or ""
        message.found = money(finding.found) or ""
    return message


def _event(event: ImportEvent) -> pb.ImportSieResponse | EncodedAnswer:
    if isinstance(event, Progress):
        return pb.ImportSieResponse(progress=progress_message(event))
    if isinstance(event, RawChunk):
        return pb.ImportSieResponse(chunk=sie_pb.SieChunk(
            financial_year_id=event.financial_year_id, offset=event.offset, data=event.data,
            last=event.last,
        ))
    if isinstance(event, YearFinding):
        return pb.ImportSieResponse(
            finding=finding_message(event.finding, event.financial_year_id)
        )
    if isinstance(event, EncodedRecords):
        return EncodedAnswer(event.data)
    if isinstance(event, RecordBatch):
        return pb.ImportSieResponse(records=_records(event))
    if isinstance(event, YearSummary):
        return pb.ImportSieResponse(year_summary=_year_summary(event))
    return pb.ImportSieResponse(summary=_summary(event))


def _year_summary(summary: YearSummary) -> sie_pb.SieYearSummary:
    changes = summary.changes
    read = summary.read
    return sie_pb.SieYearSummary(
        financial_year_id=summary.year.id,
        start_date=proto_date(summary.year.from_date),
        end_date=proto_date(summary.year.to_date),
        sha256=summary.sha256,
        byte_size=summary.byte_size,
        encoding=read.encoding,
        sie_type=read.sie_type or 0,
        account_count=read.accounts,
        voucher_count=read.vouchers,
        transaction_count=read.transactions,
        checksum_status=_CHECKSUM[str(read.checksum)],
        error_count=summary.errors,
        warning_count=summary.warnings,
        changes=sie_pb.YearChanges(
            kind=_CHANGE_KINDS[summary.change_kind],
            previous_import_id=changes.previous_import_id or "",
            vouchers_added=changes.added, vouchers_changed=changes.changed,
            vouchers_removed=changes.removed,
        ),
        controls_passed=summary.controls_passed,
    )


def _summary(summary: ImportSummary) -> sie_pb.ImportSieSummary:
    return sie_pb.ImportSieSummary(
        import_id=summary.import_id,
        years=[_year_summary(y) for y in summary.years],
        cross_year_findings=[finding_message(f, 0) for f in summary.cross_year_findings],
        total_bytes=summary.total_bytes,
        total_vouchers=summary.total_vouchers,
        started_at=timestamp(summary.started_at),
        finished_at=timestamp(summary.finished_at),
    )


def _records(batch: RecordBatch) -> sie_pb.SieRecordBatch:
    """A batch parsed in this process (the parser processes write theirs with
    ``server.record_wire``, which the tests hold to this)."""
    counts = batch.document_counts
    return sie_pb.SieRecordBatch(
        financial_year_id=batch.financial_year_id,
        accounts=[sie_pb.SieAccount(number=a.number, name=a.name) for a in batch.accounts],
        balances=[_balance(b) for b in batch.balances],
        vouchers=[_voucher(v, counts[i] if counts is not None else None)
                  for i, v in enumerate(batch.vouchers)],
    )


def _objects(pairs: tuple[tuple[str, str], ...]) -> list[sie_pb.SieObjectRef]:
    return [sie_pb.SieObjectRef(dimension=d, object_id=o) for d, o in pairs]


def _balance(balance: Balance) -> sie_pb.SieBalance:
    return sie_pb.SieBalance(
        kind=str(balance.kind), year_index=balance.year, account=balance.account,
        period=balance.period.strftime("%Y%m") if balance.period else "",
        objects=_objects(balance.objects), amount_minor=to_ore(balance.amount),
        line=balance.line,
    )


def _row(row: TransRow) -> sie_pb.SieTransaction:
    return sie_pb.SieTransaction(
        account=row.account, objects=_objects(row.objects),
        amount_minor=row.ore, transaction_date=proto_date(row.date),
        text=row.text,
    )


def _voucher(voucher: Voucher, documents: int | None = None) -> sie_pb.SieVoucher:
    rows = {kind: [_row(r) for r in voucher.rows if r.kind == kind]
            for kind in ("TRANS", "RTRANS", "BTRANS")}
    return sie_pb.SieVoucher(
        series=voucher.series, number=voucher.number, voucher_date=proto_date(voucher.date),
        text=voucher.text, registration_date=proto_date(voucher.reg_date),
        transactions=rows["TRANS"], added_rows=rows["RTRANS"], removed_rows=rows["BTRANS"],
        line=voucher.line, document_count=documents,
    )
