"""The one place where domain errors become gRPC statuses with ``ErrorInfo`` details.

An interceptor wraps every handler shape, including the iteration of a server stream, so an
error raised half-way through a stream reaches the caller the same way as one raised up front.
Unexpected exceptions become ``INTERNAL`` with a generic message; their details go to the log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from core.errors import DomainError, InternalError

#: The ``ErrorInfo.domain`` of every error this service reports.
ERROR_DOMAIN = "fortnox-bridge.skattbokslut.spiris.se"

_log = logging.getLogger(__name__)


def to_status_proto(error: DomainError) -> status_pb2.Status:
    """Builds the ``google.rpc.Status`` a caller receives for ``error``."""
    details: list[any_pb2.Any] = []
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
    )
    details.append(_pack(info))
    if error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        details.append(_pack(bad_request))
    if error.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after_s * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=int(error.code), message=error.message, details=details)


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def as_domain_error(exc: Exception) -> DomainError:
    """Returns ``exc`` if it is a domain error, else a generic internal error (and logs it)."""
    if isinstance(exc, DomainError):
        return exc
    _log.error("unexpected error in a handler", exc_info=exc)
    return InternalError("The service failed unexpectedly; the error is logged.")


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> None:
    """Ends the call with the status for ``exc`` (raises ``grpc.aio.AbortError``)."""
    status = rpc_status.to_status(to_status_proto(as_domain_error(exc)))
    await context.abort(status.code, status.details, status.trailing_metadata)


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Maps exceptions from every handler shape to statuses."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=_guard_unary(handler.unary_unary))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=_guard_stream(handler.unary_stream))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=_guard_unary(handler.stream_unary))
        return handler._replace(stream_stream=_guard_stream(handler.stream_stream))


def _guard_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # every error must become a status
            await abort_with(context, exc)

    return guarded


def _guard_stream(
    behavior: Callable[..., AsyncIterator[Any]],
) -> Callable[..., AsyncIterator[Any]]:
    async def guarded(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        try:
            async for message in behavior(request, context):
                yield message
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # every error must become a status
            await abort_with(context, exc)

    return guarded
