"""ExportVouchers and ListVoucherExports: protobuf in, use case, protobuf out."""

from __future__ import annotations

from dataclasses import fields

from core.voucher_export.answer import RESULT_TEXT_BYTES, cut
from core.voucher_export.exporter import VoucherExporter
from core.voucher_export.history import ExportHistory, ExportRecord
from core.voucher_export.model import (
    ExportRequest,
    ExportRow,
    ExportVoucher,
    Outcome,
    Target,
    VoucherResult,
)
from server.bounds import page_size
from server.call import Context, deadline, requested_by, uuid_field
from server.convert import from_proto_date, timestamp
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb

_TARGETS = {
    pb.ExportVouchersRequest.TARGET_UNSPECIFIED: Target.FORTNOX_API,
    pb.ExportVouchersRequest.TARGET_FORTNOX_API: Target.FORTNOX_API,
    pb.ExportVouchersRequest.TARGET_SIE_4I_FILE: Target.SIE_4I_FILE,
}
_OUTCOMES = {
    Outcome.VALID: v_pb.VoucherResult.OUTCOME_VALID,
    Outcome.CREATED: v_pb.VoucherResult.OUTCOME_CREATED,
    Outcome.ALREADY_EXPORTED: v_pb.VoucherResult.OUTCOME_ALREADY_EXPORTED,
    Outcome.REJECTED: v_pb.VoucherResult.OUTCOME_REJECTED,
    Outcome.NOT_ATTEMPTED: v_pb.VoucherResult.OUTCOME_NOT_ATTEMPTED,
}
#: A request row's fields by the ``ExportRow`` field each becomes: the same name but for these.
_ROW_FIELDS = tuple((f.name, {"debit": "debit_minor", "credit": "credit_minor"}.get(f.name, f.name))
                    for f in fields(ExportRow))
#: A result's fields the answer names otherwise or converts; each other field is copied to the
#: answer's field of the same name.
_RESULT_CONVERTED = frozenset({"outcome", "series", "number", "exported_at"})
_RESULT_COPIED = tuple(f.name for f in fields(VoucherResult) if f.name not in _RESULT_CONVERTED)


class ExportRpcs:
    """Serves ExportVouchers and ListVoucherExports."""

    def __init__(self, exporter: VoucherExporter, history: ExportHistory) -> None:
        self._exporter = exporter
        self._history = history

    async def ExportVouchers(
        self, request: pb.ExportVouchersRequest, context: Context
    ) -> pb.ExportVouchersResponse:
        export = ExportRequest(
            tenant=request.tenant,
            request_id=uuid_field(request.request_id, "request_id"),
            vouchers=tuple(_voucher(v, i) for i, v in enumerate(request.vouchers)),
            series=request.voucher_series.strip(),
            validate_only=request.validate_only,
            target=_TARGETS[request.target],
            requested_by=requested_by(context),
            deadline=deadline(context),
        )
        result = await self._exporter.export(export)
        return pb.ExportVouchersResponse(
            request_id=result.request_id,
            results=[_result(r) for r in result.results],
            sie_file=result.sie_file,
            sie_file_name=result.sie_file_name,
        )

    async def ListVoucherExports(
        self, request: pb.ListVoucherExportsRequest, context: Context
    ) -> pb.ListVoucherExportsResponse:
        page = await self._history.list_exports(
            request.tenant, request.request_id, request.external_id, page_size(request),
            request.page_token)
        return pb.ListVoucherExportsResponse(
            exports=[_export(r) for r in page.records], next_page_token=page.next_cursor)


def _voucher(message: v_pb.ExportVoucher, index: int) -> ExportVoucher:
    day = (from_proto_date(message.transaction_date, f"vouchers[{index}].transaction_date")
           if message.HasField("transaction_date") else None)
    return ExportVoucher(
        external_id=message.external_id,
        transaction_date=day,
        description=message.description,
        rows=tuple(ExportRow(**{name: getattr(r, field) for name, field in _ROW_FIELDS})
                   for r in message.rows),
    )


def _result(result: VoucherResult) -> v_pb.VoucherResult:
    """A result with its texts cut as ``core.voucher_export.answer`` counts them, so that no
    answer outgrows what a client takes."""
    copied = {name: getattr(result, name) for name in _RESULT_COPIED}
    for name, most in RESULT_TEXT_BYTES.items():
        copied[name] = cut(copied[name], most)
    return v_pb.VoucherResult(
        **copied, outcome=_OUTCOMES[result.outcome], voucher_series=result.series,
        voucher_number=result.number, exported_at=timestamp(result.exported_at))


def _export(record: ExportRecord) -> v_pb.VoucherExport:
    result = _result(record.result)
    if not record.status.settled:
        result.outcome = v_pb.VoucherResult.OUTCOME_UNSPECIFIED
    return v_pb.VoucherExport(external_id=record.external_id, request_id=record.request_id,
                              result=result, requested_by=record.requested_by)
