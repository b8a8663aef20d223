"""Reading the ``google.rpc.Status`` of a failed call the way a caller does."""

from __future__ import annotations

from collections.abc import Awaitable

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The ``ErrorInfo`` detail of ``error``; fails the test when there is none."""
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no google.rpc.Status"
    infos = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
    assert len(infos) == 1, f"expected exactly one ErrorInfo, got {len(infos)}"
    return infos[0]


async def fails(call: Awaitable[object], code: grpc.StatusCode, reason: str
                ) -> grpc.aio.AioRpcError:
    """Awaits a call that must fail with ``code`` and ErrorInfo ``reason``."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert (caught.value.code(), error_info(caught.value).reason) == (code, reason), (
        caught.value.details())
    return caught.value
