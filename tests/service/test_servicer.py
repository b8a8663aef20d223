"""The servicer takes each RPC from the one handler group that defines it, or does not start."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor

from server.servicer import SERVICE, assemble

RPCS = list(SERVICE.methods_by_name)


async def _handler(self: object, request: Any, context: Any) -> None: ...


def group(*rpcs: str) -> object:
    """A handler group defining ``rpcs``."""
    return type("Group", (), dict.fromkeys(rpcs, _handler))()


def test_each_rpc_is_served_by_the_group_that_defines_it() -> None:
    first, second = group(*RPCS[:4]), group(*RPCS[4:])
    servicer = assemble(first, second)
    assert [getattr(servicer, rpc) for rpc in RPCS] == [
        getattr(first if n < 4 else second, rpc) for n, rpc in enumerate(RPCS)]


def test_an_rpc_no_group_serves_fails_the_start() -> None:
    with pytest.raises(TypeError, match=rf"{RPCS[-1]} is served by 0 groups"):
        assemble(group(*RPCS[:-1]))


def test_an_rpc_two_groups_serve_fails_the_start() -> None:
    with pytest.raises(TypeError, match=rf"{RPCS[0]} is served by 2 groups \['Group', 'Group'\]"):
        assemble(group(*RPCS), group(RPCS[0]))


def test_a_method_named_like_an_rpc_the_service_lacks_fails_the_start() -> None:
    with pytest.raises(TypeError, match="ImportSIE is no RPC of the service"):
        assemble(group(*RPCS, "ImportSIE"))


async def _answer(channel: grpc.aio.Channel, rpc: MethodDescriptor) -> grpc.StatusCode:
    """The status an empty (valid) request to ``rpc`` ends with."""
    path = f"/{SERVICE.full_name}/{rpc.name}"
    try:
        if rpc.server_streaming:
            async for _ in channel.unary_stream(path)(b"", timeout=10):
                pass
        else:
            await channel.unary_unary(path)(b"", timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_the_wired_service_serves_every_rpc(channel: grpc.aio.Channel) -> None:
    """The real wiring leaves no RPC to gRPC's ``UNIMPLEMENTED``."""
    answers = {rpc.name: await _answer(channel, rpc) for rpc in SERVICE.methods}
    assert grpc.StatusCode.UNIMPLEMENTED not in answers.values(), answers
