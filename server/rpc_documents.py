"""DownloadVoucherDocuments and DownloadYearDocuments: protobuf in, use case, protobuf out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from google.protobuf.message import Message

from core.errors import FieldViolation, InvalidRequest
from core.money import to_kronor
from core.voucher_documents import (
    DocumentBytes,
    DocumentEvent,
    DocumentFailed,
    DocumentHeader,
    VoucherDocuments,
    VoucherKey,
    YearDocumentsRequest,
    YearDone,
    YearEvent,
    YearProgress,
)
from core.year_selection import YearChoice
from server.call import Context, deadline
from server.convert import from_proto_date, proto_date
from spiris.skattbokslut.fortnox.v1 import voucher_documents_pb2 as doc_pb


class DocumentRpcs:
    """Serves DownloadVoucherDocuments and DownloadYearDocuments."""

    def __init__(self, use_case: VoucherDocuments) -> None:
        self._use_case = use_case

    async def DownloadVoucherDocuments(
        self, request: doc_pb.DownloadVoucherDocumentsRequest, context: Context
    ) -> AsyncIterator[doc_pb.DownloadVoucherDocumentsResponse]:
        year = _year(request)
        problems = []
        if not request.voucher_series:
            problems.append(FieldViolation("voucher_series", "must not be empty"))
        if request.voucher_number < 1:
            problems.append(FieldViolation("voucher_number", "must be at least 1"))
        if problems:
            raise InvalidRequest("The voucher is not named in full.", violations=tuple(problems))
        events = self._use_case.voucher(request.tenant, year, request.voucher_series,
                                        request.voucher_number, deadline=deadline(context))
        async for event in events:
            response = doc_pb.DownloadVoucherDocumentsResponse()
            name, message = _document(event)
            getattr(response, name).CopyFrom(message)
            yield response

    async def DownloadYearDocuments(
        self, request: doc_pb.DownloadYearDocumentsRequest, context: Context
    ) -> AsyncIterator[doc_pb.DownloadYearDocumentsResponse]:
        year = _year(request)
        if request.min_amount_minor < 0:
            raise InvalidRequest("min_amount_minor must not be negative.", violations=(
                FieldViolation("min_amount_minor", "must be at least 0"),))
        if any(not series for series in request.voucher_series):
            raise InvalidRequest("A voucher series is empty.", violations=(
                FieldViolation("voucher_series", "each must be 1-10 characters"),))
        run = YearDocumentsRequest(
            tenant=request.tenant, year=year, series=frozenset(request.voucher_series),
            min_amount=(to_kronor(request.min_amount_minor)
                        if request.min_amount_minor else None),
            received=frozenset(request.received_file_ids), deadline=deadline(context))
        async for event in self._use_case.year(run):
            response = doc_pb.DownloadYearDocumentsResponse()
            name, message = _year_event(event)
            getattr(response, name).CopyFrom(message)
            yield response


def _year(request: doc_pb.DownloadVoucherDocumentsRequest | doc_pb.DownloadYearDocumentsRequest
          ) -> YearChoice:
    """The financial year the request names, by id or by a date inside it."""
    selector = request.year
    if selector.HasField("financial_year_id"):
        return selector.financial_year_id
    if selector.HasField("date_in_year"):
        return from_proto_date(selector.date_in_year, "year.date_in_year")
    raise InvalidRequest("year is required.", violations=(
        FieldViolation("year", "must name a financial year by id or by a date in it"),))


def _key(voucher: VoucherKey) -> doc_pb.VoucherKey:
    return doc_pb.VoucherKey(financial_year_id=voucher.financial_year_id,
                             series=voucher.series, number=voucher.number)


def _document(event: DocumentEvent) -> tuple[str, Message]:
    """The oneof field and message of a document event (both RPCs name them alike)."""
    if isinstance(event, DocumentHeader):
        return "document", doc_pb.VoucherDocument(
            file_id=event.file_id, file_name=event.file_name, content_type=event.content_type,
            size=event.size, sha256=event.sha256, voucher=_key(event.voucher))
    if isinstance(event, DocumentBytes):
        return "chunk", doc_pb.VoucherDocumentChunk(
            file_id=event.file_id, offset=event.offset, data=event.data, last=event.last)
    return "unavailable", _failed(event)


def _failed(event: DocumentFailed) -> doc_pb.VoucherDocumentUnavailable:
    return doc_pb.VoucherDocumentUnavailable(
        file_id=event.file_id, file_name=event.file_name, voucher=_key(event.voucher),
        reason=event.reason, message=event.message)


def _year_event(event: YearEvent) -> tuple[str, Message]:
    if isinstance(event, YearProgress):
        return "progress", doc_pb.YearDocumentsProgress(
            financial_year_id=event.financial_year_id, files_total=event.files_total,
            files_done=event.files_done, files_skipped=event.files_skipped,
            files_failed=event.files_failed, bytes_done=event.bytes_done,
            estimated_seconds_left=event.seconds_left)
    if isinstance(event, YearDone):
        return "summary", doc_pb.YearDocumentsSummary(
            financial_year_id=event.year.id, start_date=proto_date(event.year.from_date),
            end_date=proto_date(event.year.to_date), files_total=event.files_total,
            files_sent=event.files_sent, files_skipped=event.files_skipped,
            files_failed=event.files_failed, bytes_sent=event.bytes_sent)
    return _document(event)
