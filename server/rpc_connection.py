"""Connect, CompleteConnect, GetConnection, Disconnect and ListConnections: protobuf in, the
``core.connecting`` use case, protobuf out."""

from __future__ import annotations

from core.connecting import Connecting
from core.connections import (
    AccountType,
    Connection,
    ConnectionFilter,
    ConnectionState,
    require_company_guard,
)
from core.errors import FieldViolation, InvalidRequest
from core.paging import decode_fields, encode_fields
from server.bounds import page_size
from server.call import Context, deadline, required
from server.convert import timestamp
from spiris.skattbokslut.fortnox.v1 import connection_pb2
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb

_STATES = {
    ConnectionState.CONNECTED: connection_pb2.Connection.STATE_CONNECTED,
    ConnectionState.RECONNECT_REQUIRED: connection_pb2.Connection.STATE_RECONNECT_REQUIRED,
    ConnectionState.REVOKED: connection_pb2.Connection.STATE_REVOKED,
}
_STATES_IN = {value: key for key, value in _STATES.items()}
_KINDS = {
    AccountType.USER: connection_pb2.ACCOUNT_TYPE_USER,
    AccountType.SERVICE: connection_pb2.ACCOUNT_TYPE_SERVICE,
}
_KINDS_IN = {value: key for key, value in _KINDS.items()}


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
        account_type=_KINDS[connection.account_type],
        state_changed_at=timestamp(connection.state_changed_at),
        last_export_at=timestamp(connection.last_export_at),
    )


def _page_token(which: ConnectionFilter, after: str) -> str:
    """An opaque token naming the filters a page was shown under and its last tenant."""
    return encode_fields(*_filters(which), after)


def _after(token: str, which: ConnectionFilter) -> str | None:
    """The tenant a page token continues after; a token made under other filters is refused."""
    if not token:
        return None
    *filters, after = decode_fields(token, 3)
    if tuple(filters) != _filters(which):
        raise InvalidRequest("page_token is not one this call's filters produced.", violations=(
            FieldViolation("page_token", "not a next_page_token of the same filters"),))
    return after


def _filters(which: ConnectionFilter) -> tuple[str, str]:
    return (which.state.value if which.state else "",
            which.account_type.value if which.account_type else "")


class ConnectionRpcs:
    """Serves the connection lifecycle."""

    def __init__(self, connections: Connecting) -> None:
        self._connections = connections

    async def Connect(self, request: pb.ConnectRequest, context: Context) -> pb.ConnectResponse:
        require_company_guard(request.expected_organisation_number, request.allow_any_company)
        started = await self._connections.begin_connect(
            request.tenant,
            required(request.redirect_uri, "redirect_uri"),
            tuple(request.scopes),
            request.expected_organisation_number.strip(),
            _KINDS_IN.get(request.account_type, AccountType.USER),
        )
        return pb.ConnectResponse(
            authorization_url=started.url, state=started.state,
            expires_at=timestamp(started.expires_at),
        )

    async def CompleteConnect(
        self, request: pb.CompleteConnectRequest, context: Context
    ) -> pb.CompleteConnectResponse:
        state = required(request.state, "state")
        if not request.error:
            required(request.code, "code")
        connection = await self._connections.complete_connect(
            state, request.code, error=request.error,
            error_description=request.error_description, deadline=deadline(context),
        )
        return pb.CompleteConnectResponse(connection=connection_message(connection))

    async def GetConnection(
        self, request: pb.GetConnectionRequest, context: Context
    ) -> pb.GetConnectionResponse:
        connection = await self._connections.get_connection(request.tenant)
        return pb.GetConnectionResponse(connection=connection_message(connection))

    async def Disconnect(
        self, request: pb.DisconnectRequest, context: Context
    ) -> pb.DisconnectResponse:
        connection = await self._connections.disconnect(
            request.tenant, deadline=deadline(context)
        )
        return pb.DisconnectResponse(connection=connection_message(connection))

    async def ListConnections(
        self, request: pb.ListConnectionsRequest, context: Context
    ) -> pb.ListConnectionsResponse:
        which = ConnectionFilter(state=_STATES_IN.get(request.state),
                                 account_type=_KINDS_IN.get(request.account_type))
        page = await self._connections.list_connections(
            which, page_size(request), _after(request.page_token, which))
        return pb.ListConnectionsResponse(
            connections=[connection_message(c) for c in page.connections],
            next_page_token="" if page.next_after is None else _page_token(
                which, page.next_after))
