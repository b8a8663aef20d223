"""What the server counts for operators: RPCs by method, status and reason, and what the
answers carried (import bytes, vouchers and durations; exported vouchers by outcome).

The interceptor sits outside the error interceptor, so it sees the status a caller gets: the
code from the context and the ``ErrorInfo`` reason from the status details in the trailing
metadata. Attribute values are method names, status codes, reasons and enum names: never a
tenant, an id or a token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.metrics import Meter, MeterProvider

from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb

METER_NAME = "fortnox_bridge.server"
_SERVICE: str = pb.DESCRIPTOR.services_by_name["FortnoxService"].full_name

RPC_SYSTEM = "rpc.system"
RPC_SERVICE = "rpc.service"
RPC_METHOD = "rpc.method"
RPC_STATUS = "rpc.grpc.status_code"
ERROR_TYPE = "error.type"
EXPORT_OUTCOME = "fortnox_bridge.export.outcome"
EXPORT_TARGET = "fortnox_bridge.export.target"

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
#: gRPC's deadline timer fires up to a few milliseconds before ``time_remaining`` reaches 0.
_DEADLINE_TIMER_SLACK_S = 0.05
#: Imports run for seconds to minutes, so the buckets reach further than the SDK's (10 s).
_RPC_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000,
                   120_000, 300_000, 600_000)
_IMPORT_BUCKETS_S = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

Attributes = dict[str, str | int]
#: Looks at a request and one answer of a call that succeeded so far.
Observer = Callable[[Any, Any], None]


class MetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Records ``rpc.server.duration`` for every call, and what import and export answers
    carried."""

    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter(METER_NAME)
        self._duration = meter.create_histogram(
            "rpc.server.duration", unit="ms",
            description="Duration of inbound RPCs, by method, status code and error reason.",
            explicit_bucket_boundaries_advisory=_RPC_BUCKETS_MS,
        )
        answers = _Answers(meter)
        self._observers: dict[str, Observer] = {
            "ImportSie": answers.import_sie,
            "ExportVouchers": answers.export_vouchers,
        }

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:  # an unknown method: gRPC answers UNIMPLEMENTED itself
            return handler
        service, _, method = handler_call_details.method.lstrip("/").partition("/")
        attributes: Attributes = {RPC_SYSTEM: "grpc", RPC_SERVICE: service, RPC_METHOD: method}
        observe = self._observers.get(method) if service == _SERVICE else None
        if handler.unary_unary is not None:
            return handler._replace(
                unary_unary=self._timed_unary(handler.unary_unary, attributes, observe))
        if handler.stream_unary is not None:
            return handler._replace(
                stream_unary=self._timed_unary(handler.stream_unary, attributes, observe))
        if handler.unary_stream is not None:
            return handler._replace(
                unary_stream=self._timed_stream(handler.unary_stream, attributes, observe))
        return handler._replace(
            stream_stream=self._timed_stream(handler.stream_stream, attributes, observe))

    def _timed_unary(
        self, behavior: Callable[..., Awaitable[Any]], attributes: Attributes,
        observe: Observer | None,
    ) -> Callable[..., Awaitable[Any]]:
        async def timed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            try:
                response = await behavior(request, context)
            except BaseException as exc:
                self._record(started, attributes, context, exc)
                raise
            self._record(started, attributes, context, None)
            if observe is not None:
                observe(request, response)
            return response

        return timed

    def _timed_stream(
        self, behavior: Callable[..., AsyncIterator[Any]], attributes: Attributes,
        observe: Observer | None,
    ) -> Callable[..., AsyncIterator[Any]]:
        async def timed(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            started = time.perf_counter()
            try:
                async for response in behavior(request, context):
                    if observe is not None:
                        observe(request, response)
                    yield response
            except BaseException as exc:
                self._record(started, attributes, context, exc)
                raise
            self._record(started, attributes, context, None)

        return timed

    def _record(
        self, started: float, attributes: Attributes,
        context: grpc.aio.ServicerContext[Any, Any], exc: BaseException | None,
    ) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        code = _status_code(context, exc)
        recorded = attributes | {RPC_STATUS: code.value[0]}
        if code is not grpc.StatusCode.OK:
            recorded[ERROR_TYPE] = _reason(context) or code.name
        self._duration.record(elapsed_ms, recorded)


def _status_code(
    context: grpc.aio.ServicerContext[Any, Any], exc: BaseException | None
) -> grpc.StatusCode:
    """The code the caller gets: set by an abort, else from how the handler ended."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if exc is None:
        return grpc.StatusCode.OK
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):  # gRPC ended the call
        remaining = context.time_remaining()
        if remaining is not None and remaining < _DEADLINE_TIMER_SLACK_S:
            return grpc.StatusCode.DEADLINE_EXCEEDED
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


def _reason(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The ``ErrorInfo.reason`` of the status details, if the call ended with any."""
    for key, value in context.trailing_metadata() or ():
        if key != _STATUS_DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return str(info.reason)
    return ""


class _Answers:
    """Instruments fed from the answers of ImportSie and ExportVouchers."""

    def __init__(self, meter: Meter) -> None:
        self._bytes = meter.create_counter(
            "fortnox_bridge.import.bytes", unit="By",
            description="SIE bytes of imports that completed.",
        )
        self._vouchers = meter.create_counter(
            "fortnox_bridge.import.vouchers", unit="{voucher}",
            description="Vouchers in the SIE files of imports that completed.",
        )
        self._import_duration = meter.create_histogram(
            "fortnox_bridge.import.duration", unit="s",
            description="How long imports that completed took, start to summary.",
            explicit_bucket_boundaries_advisory=_IMPORT_BUCKETS_S,
        )
        self._exported = meter.create_counter(
            "fortnox_bridge.export.vouchers", unit="{voucher}",
            description="Vouchers of ExportVouchers answers, by outcome and target.",
        )

    def import_sie(self, request: pb.ImportSieRequest, answer: pb.ImportSieResponse) -> None:
        if answer.WhichOneof("event") != "summary":
            return
        summary = answer.summary
        self._bytes.add(summary.total_bytes)
        self._vouchers.add(summary.total_vouchers)
        took = summary.finished_at.ToNanoseconds() - summary.started_at.ToNanoseconds()
        self._import_duration.record(max(0, took) / 1e9)

    def export_vouchers(
        self, request: pb.ExportVouchersRequest, answer: pb.ExportVouchersResponse
    ) -> None:
        target = (request.target or pb.ExportVouchersRequest.TARGET_FORTNOX_API)
        target_name = _enum_value(pb.ExportVouchersRequest.Target.Name(target), "TARGET_")
        counts: dict[str, int] = {}
        for result in answer.results:
            outcome = _enum_value(v_pb.VoucherResult.Outcome.Name(result.outcome), "OUTCOME_")
            counts[outcome] = counts.get(outcome, 0) + 1
        for outcome, count in counts.items():
            self._exported.add(count, {EXPORT_OUTCOME: outcome, EXPORT_TARGET: target_name})


def _enum_value(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).lower()
