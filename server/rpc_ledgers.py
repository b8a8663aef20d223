"""ImportLedgers: protobuf in, use case, protobuf out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from core.errors import FieldViolation, InvalidRequest
from core.imports import Progress
from core.ledgers.importer import (
    DocumentPart,
    DocumentUnavailable,
    ImportDone,
    ItemFound,
    LedgerDone,
    LedgerEvent,
    LedgerImport,
    LedgerImportRequest,
)
from core.ledgers.model import Ledger, LedgerTotals, OpenItem, Payment, Reconciliation
from core.money import to_ore
from server.call import Context, deadline, requested_by
from server.convert import from_proto_date, progress_message, proto_date, timestamp
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import ledgers_pb2 as l_pb

_LEDGERS = {l_pb.LEDGER_KIND_CUSTOMER: Ledger.CUSTOMER, l_pb.LEDGER_KIND_SUPPLIER: Ledger.SUPPLIER}
_KINDS = {ledger: kind for kind, ledger in _LEDGERS.items()}


class LedgerRpcs:
    """Serves ImportLedgers."""

    def __init__(self, use_case: LedgerImport) -> None:
        self._use_case = use_case

    async def ImportLedgers(
        self, request: pb.ImportLedgersRequest, context: Context
    ) -> AsyncIterator[pb.ImportLedgersResponse]:
        if not request.HasField("balance_date"):
            raise InvalidRequest("balance_date is required.", violations=(
                FieldViolation("balance_date", "must be set"),))
        run = LedgerImportRequest(
            tenant=request.tenant,
            balance_date=from_proto_date(request.balance_date, "balance_date"),
            # server.bounds refuses kinds the contract does not define; unspecified is None
            ledgers=tuple(_LEDGERS.get(kind) for kind in request.ledgers),
            include_documents=request.include_documents,
            requested_by=requested_by(context),
            deadline=deadline(context),
        )
        async for event in self._use_case.run(run):
            yield _message(event)


def _message(event: LedgerEvent) -> pb.ImportLedgersResponse:
    if isinstance(event, Progress):
        return pb.ImportLedgersResponse(progress=progress_message(event))
    if isinstance(event, ItemFound):
        item = _item(event.item)
        item.documents.extend(l_pb.DocumentRef(document_id=r.document_id, file_name=r.file_name)
                              for r in event.documents)
        return pb.ImportLedgersResponse(open_item=item)
    if isinstance(event, DocumentPart):
        return pb.ImportLedgersResponse(document_chunk=l_pb.DocumentChunk(
            document_id=event.ref.document_id, ledger=_KINDS[event.ledger],
            document_number=event.document_number, file_name=event.ref.file_name,
            content_type=event.content_type, offset=event.offset, data=event.data,
            last=event.last))
    if isinstance(event, DocumentUnavailable):
        return pb.ImportLedgersResponse(document_chunk=_unavailable(event))
    if isinstance(event, LedgerDone):
        return pb.ImportLedgersResponse(ledger_summary=_summary(event.totals))
    assert isinstance(event, ImportDone)
    return pb.ImportLedgersResponse(summary=l_pb.ImportLedgersSummary(
        import_id=event.import_id, balance_date=proto_date(event.balance_date),
        ledgers=[_summary(t) for t in event.ledgers], document_count=event.document_count,
        started_at=timestamp(event.started_at), finished_at=timestamp(event.finished_at),
        unavailable_documents=[_unavailable(u) for u in event.unavailable]))


def _unavailable(event: DocumentUnavailable) -> l_pb.DocumentChunk:
    return l_pb.DocumentChunk(
        document_id=event.ref.document_id, ledger=_KINDS[event.ledger],
        document_number=event.document_number, file_name=event.ref.file_name, last=True,
        unavailable=l_pb.DocumentUnavailable(reason=event.reason, message=event.message))


def _payment(payment: Payment) -> l_pb.LedgerPayment:
    return l_pb.LedgerPayment(
        payment_number=payment.number, payment_date=proto_date(payment.payment_date),
        amount_minor=to_ore(payment.amount), amount_sek_minor=to_ore(payment.amount_sek))


def _item(item: OpenItem) -> l_pb.OpenItem:
    doc = item.document
    return l_pb.OpenItem(
        ledger=_KINDS[doc.ledger], document_number=doc.number, invoice_number=doc.invoice_number,
        counterparty=l_pb.Counterparty(number=doc.counterparty_number,
                                       name=doc.counterparty_name,
                                       organisation_number=doc.organisation_number),
        invoice_date=proto_date(doc.invoice_date), due_date=proto_date(doc.due_date),
        days_overdue=item.days_overdue, currency=doc.currency, total_minor=to_ore(doc.total),
        total_sek_minor=to_ore(item.total_sek), open_minor=to_ore(item.open_amount),
        open_sek_minor=to_ore(item.open_sek), credit_note=doc.credit_note,
        payments_until_date=[_payment(p) for p in item.payments_until],
        payments_after_date=[_payment(p) for p in item.payments_after],
    )


def _reconciliation(rec: Reconciliation) -> l_pb.Reconciliation:
    return l_pb.Reconciliation(
        accounts=[str(a) for a in rec.accounts], general_ledger_minor=to_ore(rec.general_ledger),
        open_items_minor=to_ore(rec.open_items), difference_minor=to_ore(rec.difference),
        reconciled=rec.difference == 0, unexplained_minor=to_ore(rec.unexplained),
        notes=[l_pb.ReconciliationNote(code=n.code, message=n.message,
                                       amount_minor=to_ore(n.amount), voucher=n.voucher)
               for n in rec.notes],
    )


def _summary(totals: LedgerTotals) -> l_pb.LedgerSummary:
    summary = l_pb.LedgerSummary(
        ledger=_KINDS[totals.ledger], open_item_count=len(totals.items),
        open_total_sek_minor=to_ore(totals.open_total_sek),
        overdue_item_count=totals.overdue_count, payments_after_count=len(totals.payments_after),
        payments_after_total_sek_minor=sum(to_ore(p.amount_sek) for p in totals.payments_after))
    if totals.reconciliation is not None:
        summary.reconciliation.CopyFrom(_reconciliation(totals.reconciliation))
    return summary
