"""The error interceptor: domain errors become statuses with ErrorInfo, in every handler shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from core.errors import (
    DomainError,
    FieldViolation,
    FortnoxRateLimited,
    FortnoxUnavailable,
    InvalidRequest,
    StatusCode,
)
from server.errors import (
    ERROR_DOMAIN,
    MAX_DETAIL_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_STATUS_BYTES,
    MAX_VIOLATIONS,
    to_status_proto,
)
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import import_history_pb2
from tests.harness.errors import error_info


class FailingServicer(pb_grpc.FortnoxServiceServicer):
    """Fails in the ways the interceptor must handle: up front, mid-stream, unexpectedly."""

    async def GetConnection(self, request: Any, context: Any) -> Any:
        if request.tenant == "boom":
            raise RuntimeError("secret-token-abc leaked into an exception")
        if request.tenant == "huge":
            raise huge_error()
        raise InvalidRequest(
            "tenant is not valid",
            violations=(FieldViolation("tenant", "must not contain spaces"),),
        )

    async def ImportSie(self, request: Any, context: Any) -> AsyncIterator[Any]:
        yield pb.ImportSieResponse(progress=import_history_pb2.ImportProgress(message="first"))
        raise FortnoxUnavailable("Fortnox did not answer.", metadata={"attempts": "4"})


def huge_error() -> DomainError:
    """An error repeating large input back: long message, metadata and violations."""
    return InvalidRequest(
        "å" * 100_000,
        metadata={f"key{n}": "v" * 100_000 for n in range(40)},
        violations=tuple(FieldViolation(f"vouchers[{n}]." + "f" * 1000, "d" * 1000)
                         for n in range(10_000)),
    )


@pytest.fixture
def servicer() -> pb_grpc.FortnoxServiceServicer:
    return FailingServicer()  # type: ignore[abstract]  # the RPCs it leaves out go uncalled


async def test_unary_domain_error_has_code_reason_and_field_violations(
    channel: grpc.aio.Channel,
) -> None:
    stub = pb_grpc.FortnoxServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetConnection(pb.GetConnectionRequest(tenant="spaced"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).reason == "INVALID_REQUEST"
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("tenant", "must not contain spaces")
    ]


async def test_error_raised_while_iterating_a_stream_reaches_the_caller(
    channel: grpc.aio.Channel,
) -> None:
    stub = pb_grpc.FortnoxServiceStub(channel)
    call = stub.ImportSie(pb.ImportSieRequest(tenant="t"))
    received = [await call.read()]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert [m.progress.message for m in received] == ["first"]
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info(caught.value)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "FORTNOX_UNAVAILABLE",
        ERROR_DOMAIN,
        {"attempts": "4"},
    )


async def test_unexpected_exception_is_internal_with_a_generic_message(
    channel: grpc.aio.Channel,
) -> None:
    stub = pb_grpc.FortnoxServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetConnection(pb.GetConnectionRequest(tenant="boom"))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret-token" not in (caught.value.details() or "")
    assert error_info(caught.value).reason == "INTERNAL_ERROR"


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (InvalidRequest("x"), StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"),
        (FortnoxUnavailable("x"), StatusCode.UNAVAILABLE, "FORTNOX_UNAVAILABLE"),
        (DomainError("x", reason="SOMETHING_ELSE"), StatusCode.INTERNAL, "SOMETHING_ELSE"),
    ],
)
def test_status_proto_carries_code_message_and_reason(
    error: DomainError, code: StatusCode, reason: str
) -> None:
    status = to_status_proto(error)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (status.code, status.message, info.reason) == (int(code), "x", reason)


def test_rate_limited_status_tells_when_to_retry() -> None:
    status = to_status_proto(FortnoxRateLimited("slow down", retry_after_s=2.5))
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in status.details if d.Is(retry.DESCRIPTOR))
    assert retry.retry_delay.ToNanoseconds() == 2_500_000_000


def test_rate_limited_status_without_a_delay_says_one_window() -> None:
    status = to_status_proto(FortnoxRateLimited("slow down"))
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in status.details if d.Is(retry.DESCRIPTOR))
    assert retry.retry_delay.ToSeconds() == 5


def test_a_huge_error_is_cut_to_the_status_size_keeping_its_reason_and_count() -> None:
    status = to_status_proto(huge_error())
    assert status.ByteSize() <= MAX_STATUS_BYTES
    assert len(status.message.encode()) <= MAX_MESSAGE_BYTES
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert status.details[0].Unpack(info)
    assert status.details[1].Unpack(bad)
    assert info.reason == "INVALID_REQUEST"
    assert info.metadata["violations"] == "10000"
    assert 0 < len(bad.field_violations) <= MAX_VIOLATIONS
    assert all(len(v.field) <= MAX_DETAIL_CHARS for v in bad.field_violations)
    assert bad.field_violations[0].field.startswith("vouchers[0].fff")


def test_a_small_error_is_sent_whole() -> None:
    violations = tuple(FieldViolation(f"f{n}", "bad") for n in range(MAX_VIOLATIONS))
    status = to_status_proto(InvalidRequest("x", metadata={"k": "v"}, violations=violations))
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert status.details[0].Unpack(info) and status.details[1].Unpack(bad)
    assert dict(info.metadata) == {"k": "v", "violations": str(MAX_VIOLATIONS)}
    assert [v.field for v in bad.field_violations] == [v.field for v in violations]


async def test_a_huge_error_reaches_a_python_client_with_its_reason(
    channel: grpc.aio.Channel,
) -> None:
    stub = pb_grpc.FortnoxServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetConnection(pb.GetConnectionRequest(tenant="huge"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).metadata["violations"] == "10000"
