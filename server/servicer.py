"""The FortnoxService servicer: routes each RPC to the handler group that implements it.

Handler groups (``server/rpc_*.py``) translate between protobuf messages and the core's use
cases. A group that is not wired answers ``UNIMPLEMENTED`` with a reason, so the contract can
be served before every issue has landed. Errors are raised as domain errors and mapped by
``server.errors.ErrorInterceptor``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from core.errors import NotImplementedYet
from server.call import Context
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc


class ConnectionRpcs(Protocol):
    """Connect, CompleteConnect, GetConnection, Disconnect, ListConnections."""

    async def Connect(self, request: pb.ConnectRequest, context: Context) -> pb.ConnectResponse:
        ...

    async def CompleteConnect(
        self, request: pb.CompleteConnectRequest, context: Context
    ) -> pb.CompleteConnectResponse: ...

    async def GetConnection(
        self, request: pb.GetConnectionRequest, context: Context
    ) -> pb.GetConnectionResponse: ...

    async def Disconnect(
        self, request: pb.DisconnectRequest, context: Context
    ) -> pb.DisconnectResponse: ...

    async def ListConnections(
        self, request: pb.ListConnectionsRequest, context: Context
    ) -> pb.ListConnectionsResponse: ...


class SieImportRpcs(Protocol):
    """ImportSie, GetImport, ListImports (issue 6)."""

    def ImportSie(
        self, request: pb.ImportSieRequest, context: Context
    ) -> AsyncIterator[pb.ImportSieResponse]: ...

    async def GetImport(
        self, request: pb.GetImportRequest, context: Context
    ) -> pb.GetImportResponse: ...

    async def ListImports(
        self, request: pb.ListImportsRequest, context: Context
    ) -> pb.ListImportsResponse: ...


class LedgerRpcs(Protocol):
    """ImportLedgers (issue 7)."""

    def ImportLedgers(
        self, request: pb.ImportLedgersRequest, context: Context
    ) -> AsyncIterator[pb.ImportLedgersResponse]: ...


class ExportRpcs(Protocol):
    """ExportVouchers, ListVoucherExports (issue 7)."""

    async def ExportVouchers(
        self, request: pb.ExportVouchersRequest, context: Context
    ) -> pb.ExportVouchersResponse: ...

    async def ListVoucherExports(
        self, request: pb.ListVoucherExportsRequest, context: Context
    ) -> pb.ListVoucherExportsResponse: ...


def _not_landed(rpc: str, issue: int) -> NotImplementedYet:
    return NotImplementedYet(
        f"{rpc} is part of the contract but not implemented yet (issue #{issue}).",
        metadata={"rpc": rpc, "issue": str(issue)},
    )


def _group(group: Any, rpc: str, issue: int) -> Any:
    if group is None:
        raise _not_landed(rpc, issue)
    return group


class FortnoxServicer(pb_grpc.FortnoxServiceServicer):
    """Serves ``spiris.skattbokslut.fortnox.v1.FortnoxService``."""

    def __init__(
        self,
        *,
        connections: ConnectionRpcs | None = None,
        sie: SieImportRpcs | None = None,
        ledgers: LedgerRpcs | None = None,
        exports: ExportRpcs | None = None,
    ) -> None:
        self._connections = connections
        self._sie = sie
        self._ledgers = ledgers
        self._exports = exports

    async def Connect(self, request: pb.ConnectRequest, context: Context) -> pb.ConnectResponse:
        group: ConnectionRpcs = _group(self._connections, "Connect", 6)
        return await group.Connect(request, context)

    async def CompleteConnect(
        self, request: pb.CompleteConnectRequest, context: Context
    ) -> pb.CompleteConnectResponse:
        group: ConnectionRpcs = _group(self._connections, "CompleteConnect", 6)
        return await group.CompleteConnect(request, context)

    async def GetConnection(
        self, request: pb.GetConnectionRequest, context: Context
    ) -> pb.GetConnectionResponse:
        group: ConnectionRpcs = _group(self._connections, "GetConnection", 6)
        return await group.GetConnection(request, context)

    async def Disconnect(
        self, request: pb.DisconnectRequest, context: Context
    ) -> pb.DisconnectResponse:
        group: ConnectionRpcs = _group(self._connections, "Disconnect", 6)
        return await group.Disconnect(request, context)

    async def ListConnections(
        self, request: pb.ListConnectionsRequest, context: Context
    ) -> pb.ListConnectionsResponse:
        group: ConnectionRpcs = _group(self._connections, "ListConnections", 16)
        return await group.ListConnections(request, context)

    async def ImportSie(
        self, request: pb.ImportSieRequest, context: Context
    ) -> AsyncIterator[pb.ImportSieResponse]:
        group: SieImportRpcs = _group(self._sie, "ImportSie", 6)
        async for message in group.ImportSie(request, context):
            yield message

    async def GetImport(
        self, request: pb.GetImportRequest, context: Context
    ) -> pb.GetImportResponse:
        group: SieImportRpcs = _group(self._sie, "GetImport", 6)
        return await group.GetImport(request, context)

    async def ListImports(
        self, request: pb.ListImportsRequest, context: Context
    ) -> pb.ListImportsResponse:
        group: SieImportRpcs = _group(self._sie, "ListImports", 6)
        return await group.ListImports(request, context)

    async def ImportLedgers(
        self, request: pb.ImportLedgersRequest, context: Context
    ) -> AsyncIterator[pb.ImportLedgersResponse]:
        group: LedgerRpcs = _group(self._ledgers, "ImportLedgers", 7)
        async for message in group.ImportLedgers(request, context):
            yield message

    async def ExportVouchers(
        self, request: pb.ExportVouchersRequest, context: Context
    ) -> pb.ExportVouchersResponse:
        group: ExportRpcs = _group(self._exports, "ExportVouchers", 7)
        return await group.ExportVouchers(request, context)

    async def ListVoucherExports(
        self, request: pb.ListVoucherExportsRequest, context: Context
    ) -> pb.ListVoucherExportsResponse:
        group: ExportRpcs = _group(self._exports, "ListVoucherExports", 7)
        return await group.ListVoucherExports(request, context)
