"""The FortnoxService servicer: translation between protobuf messages and the core's use cases.

Each method is a few lines: read the request, call a use case, convert the result. Errors are
raised as domain errors and mapped by ``server.errors.ErrorInterceptor``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from core.errors import NotImplementedYet
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc

Context = Any  # grpc.aio.ServicerContext; grpc ships no type stubs


def _not_landed(rpc: str, issue: int) -> NotImplementedYet:
    return NotImplementedYet(
        f"{rpc} is part of the contract but not implemented yet (issue #{issue}).",
        metadata={"rpc": rpc, "issue": str(issue)},
    )


class FortnoxServicer(pb_grpc.FortnoxServiceServicer):
    """Serves ``spiris.skattbokslut.fortnox.v1.FortnoxService``."""

    async def Connect(self, request: pb.ConnectRequest, context: Context) -> pb.ConnectResponse:
        raise _not_landed("Connect", 6)

    async def CompleteConnect(
        self, request: pb.CompleteConnectRequest, context: Context
    ) -> pb.CompleteConnectResponse:
        raise _not_landed("CompleteConnect", 6)

    async def GetConnection(
        self, request: pb.GetConnectionRequest, context: Context
    ) -> pb.GetConnectionResponse:
        raise _not_landed("GetConnection", 6)

    async def Disconnect(
        self, request: pb.DisconnectRequest, context: Context
    ) -> pb.DisconnectResponse:
        raise _not_landed("Disconnect", 6)

    async def ImportSie(  # type: ignore[override]
        self, request: pb.ImportSieRequest, context: Context
    ) -> AsyncIterator[pb.ImportSieResponse]:
        raise _not_landed("ImportSie", 6)
        yield pb.ImportSieResponse()  # makes this an async generator, as the stream needs

    async def ImportLedgers(  # type: ignore[override]
        self, request: pb.ImportLedgersRequest, context: Context
    ) -> AsyncIterator[pb.ImportLedgersResponse]:
        raise _not_landed("ImportLedgers", 7)
        yield pb.ImportLedgersResponse()

    async def ExportVouchers(
        self, request: pb.ExportVouchersRequest, context: Context
    ) -> pb.ExportVouchersResponse:
        raise _not_landed("ExportVouchers", 7)

    async def ListVoucherExports(
        self, request: pb.ListVoucherExportsRequest, context: Context
    ) -> pb.ListVoucherExportsResponse:
        raise _not_landed("ListVoucherExports", 7)

    async def GetImport(
        self, request: pb.GetImportRequest, context: Context
    ) -> pb.GetImportResponse:
        raise _not_landed("GetImport", 6)

    async def ListImports(
        self, request: pb.ListImportsRequest, context: Context
    ) -> pb.ListImportsResponse:
        raise _not_landed("ListImports", 6)
