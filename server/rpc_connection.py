"""Connect, CompleteConnect, GetConnection and Disconnect: protobuf in, port call, protobuf out."""

from __future__ import annotations

from core.connections import Connection, ConnectionState, FortnoxConnections
from server.call import Context, deadline, required
from server.convert import timestamp
from spiris.skattbokslut.fortnox.v1 import connection_pb2
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb

_STATES = {
    ConnectionState.CONNECTED: connection_pb2.Connection.STATE_CONNECTED,
    ConnectionState.RECONNECT_REQUIRED: connection_pb2.Connection.STATE_RECONNECT_REQUIRED,
    ConnectionState.REVOKED: connection_pb2.Connection.STATE_REVOKED,
}


def connection_message(connection: Connection) -> connection_pb2.Connection:
    """A connection as the API shows it (never with tokens: the domain object has none)."""
    return connection_pb2.Connection(
        tenant=connection.tenant,
        state=_STATES[connection.state],
        state_reason=connection.reason,
        fortnox_tenant_id=connection.fortnox_tenant_id,
        company_name=connection.company_name,
        organisation_number=connection.organisation_number,
        scopes=list(connection.scopes),
        access_token_expires_at=timestamp(connection.access_token_expires_at),
        refresh_token_expires_at=timestamp(connection.refresh_token_expires_at),
        last_refreshed_at=timestamp(connection.last_refreshed_at),
        connected_at=timestamp(connection.connected_at),
        last_sie_import_at=timestamp(connection.last_sie_import_at),
        last_ledger_import_at=timestamp(connection.last_ledger_import_at),
    )


class ConnectionRpcs:
    """Serves the connection lifecycle."""

    def __init__(self, connections: FortnoxConnections) -> None:
        self._connections = connections

    async def Connect(self, request: pb.ConnectRequest, context: Context) -> pb.ConnectResponse:
        started = await self._connections.begin_connect(
            required(request.tenant, "tenant"),
            required(request.redirect_uri, "redirect_uri"),
            tuple(request.scopes),
            request.expected_organisation_number.strip(),
        )
        return pb.ConnectResponse(
            authorization_url=started.url, state=started.state,
            expires_at=timestamp(started.expires_at),
        )

    async def CompleteConnect(
        self, request: pb.CompleteConnectRequest, context: Context
    ) -> pb.CompleteConnectResponse:
        connection = await self._connections.complete_connect(
            required(request.state, "state"), required(request.code, "code"),
            deadline=deadline(context),
        )
        return pb.CompleteConnectResponse(connection=connection_message(connection))

    async def GetConnection(
        self, request: pb.GetConnectionRequest, context: Context
    ) -> pb.GetConnectionResponse:
        connection = await self._connections.get_connection(required(request.tenant, "tenant"))
        return pb.GetConnectionResponse(connection=connection_message(connection))

    async def Disconnect(
        self, request: pb.DisconnectRequest, context: Context
    ) -> pb.DisconnectResponse:
        connection = await self._connections.disconnect(
            required(request.tenant, "tenant"), deadline=deadline(context)
        )
        return pb.DisconnectResponse(connection=connection_message(connection))
