"""The one place where domain errors become gRPC statuses with ``ErrorInfo`` details.

An interceptor wraps every handler shape, including the iteration of a server stream, so an
error raised half-way through a stream reaches the caller the same way as one raised up front.
It also reads each request through ``server.bounds``, so a request refused as it is read is
answered here too. Unexpected exceptions become ``INTERNAL`` with a generic message; their
details go to the log.

A status travels in the call's trailers, which gRPC clients refuse beyond 8 KiB ("Stream
removed", and the reason is lost). So what an error carries is cut here, whatever raised it:
the message, every echoed value and violation text are shortened, at most
``MAX_VIOLATIONS`` field violations are listed (``ErrorInfo.metadata["violations"]`` counts
them all), and the whole ``google.rpc.Status`` stays within ``MAX_STATUS_BYTES``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from core.errors import DomainError, FieldViolation, InternalError
from server.bounds import Rejected, request_reader

#: The ``ErrorInfo.domain`` of every error this service reports.
ERROR_DOMAIN = "fortnox-bridge.skattbokslut.spiris.se"
#: The service whose requests are bounded field by field (health and reflection are not ours).
BOUNDED_SERVICE = "/spiris.skattbokslut.fortnox.v1.FortnoxService/"
#: The serialized status at most (4 KiB once base64-encoded into the trailer).
MAX_STATUS_BYTES = 3 * 1024
#: The message at most, in UTF-8 bytes (it travels percent-encoded in ``grpc-message`` too).
MAX_MESSAGE_BYTES = 256
#: Each metadata value, violation field and violation description at most, in characters.
MAX_DETAIL_CHARS = 200
#: Field violations listed at most.
MAX_VIOLATIONS = 20

_log = logging.getLogger(__name__)


def to_status_proto(error: DomainError) -> status_pb2.Status:
    """Builds the ``google.rpc.Status`` a caller receives for ``error``, cut to size."""
    metadata = {_cut(k, 64): _cut(v, MAX_DETAIL_CHARS) for k, v in error.metadata.items()}
    if error.violations:
        metadata["violations"] = str(len(error.violations))
    shown = [FieldViolation(_cut(v.field, MAX_DETAIL_CHARS), _cut(v.description, MAX_DETAIL_CHARS))
             for v in error.violations[:MAX_VIOLATIONS]]
    message = error.message.encode()
    if len(message) > MAX_MESSAGE_BYTES:  # a character cut in two is dropped by the decode
        message = message[:MAX_MESSAGE_BYTES - 3] + "…".encode()
    text = message.decode(errors="ignore")
    status = _status(error, text, metadata, shown)
    while status.ByteSize() > MAX_STATUS_BYTES:  # violations go first, but the first one last
        extra = [k for k in metadata if k != "violations"]
        if len(shown) > 1 or (shown and not extra):
            shown.pop()
        elif extra:
            del metadata[extra[-1]]
        else:
            break
        status = _status(error, text, metadata, shown)
    return status


def _status(
    error: DomainError, message: str, metadata: dict[str, str], violations: list[FieldViolation]
) -> status_pb2.Status:
    details = [_pack(error_details_pb2.ErrorInfo(
        reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata))]
    if violations:
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in violations
        ])))
    if error.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after_s * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=int(error.code), message=message, details=details)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


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
        if handler.request_deserializer is not None:
            bounded = handler_call_details.method.startswith(BOUNDED_SERVICE)
            handler = handler._replace(request_deserializer=request_reader(
                handler.request_deserializer, bounded=bounded))
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
            return await behavior(_accepted(request), context)
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
            async for message in behavior(_accepted(request), context):
                yield message
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # every error must become a status
            await abort_with(context, exc)

    return guarded


def _accepted(request: Any) -> Any:
    """The request, or a stream of requests, with what ``server.bounds`` refused raised."""
    if isinstance(request, Rejected):
        raise request.error
    if hasattr(request, "__aiter__"):
        return _each_accepted(request)
    return request


async def _each_accepted(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _accepted(request)
