"""Connecting a tenant, the one way every test does it: the caller starts the OAuth flow, the
customer's browser (``log_in``) logs in at the sandbox and consents, and the code Fortnox sends
to the redirect URI completes it. Through the service (``connect``: Connect, login,
CompleteConnect over gRPC) or, for the adapter's own tests, through the Fortnox adapter
(``connect_adapter``)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx

from adapters.fortnox import FortnoxAdapter
from core.connections import AccountType
from core.connections import Connection as AdapterConnection
from sandbox.options import DEMO_REDIRECT_URIS
from sandbox.testing import ALL_SCOPES, SandboxTenant
from spiris.skattbokslut.fortnox.v1 import connection_pb2
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc

SERVICE = connection_pb2.ACCOUNT_TYPE_SERVICE
USER = connection_pb2.ACCOUNT_TYPE_USER
Connection = connection_pb2.Connection

#: Every sandbox accepts its demo client's redirect URIs; the tests use the first.
REDIRECT_URI = DEMO_REDIRECT_URIS[0]


def log_in(authorization_url: str, *, user: str | None = None,
           company: int | None = None) -> dict[str, str]:
    """Plays the customer's browser: opens the login URL as ``user`` (else the sandbox's
    default login) picking ``company`` (a Fortnox tenant id), and returns what Fortnox sends
    to the redirect URI (``code`` and ``state``, or ``error``)."""
    url = httpx.URL(authorization_url)
    if user is not None:
        url = url.copy_add_param("user", user)
    if company is not None:  # the sandbox's stand-in for picking a company at login
        url = url.copy_add_param("tenant", str(company))
    answer = httpx.get(url, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}


async def start(stub: pb_grpc.FortnoxServiceStub, tenant: str,
                company: SandboxTenant | None = None, account_type: int = USER,
                scopes: Sequence[str] = ()) -> pb.ConnectResponse:
    """Connect, naming the company the tenant expects (any company when none is named)."""
    started: pb.ConnectResponse = await stub.Connect(pb.ConnectRequest(
        tenant=tenant, redirect_uri=REDIRECT_URI, scopes=list(scopes),
        account_type=account_type,  # type: ignore[arg-type]
        expected_organisation_number=company.organisation_number if company else "",
        allow_any_company=company is None))
    return started


async def complete(stub: pb_grpc.FortnoxServiceStub, back: dict[str, str]) -> Connection:
    """CompleteConnect with whatever Fortnox sent to the redirect URI."""
    done: pb.CompleteConnectResponse = await stub.CompleteConnect(pb.CompleteConnectRequest(
        state=back["state"], code=back.get("code", ""), error=back.get("error", ""),
        error_description=back.get("error_description", "")))
    return done.connection


async def connect(target: pb_grpc.FortnoxServiceStub | str, tenant: str,
                  company: SandboxTenant | None = None, account_type: int = USER,
                  scopes: Sequence[str] = ()) -> Connection:
    """The whole flow through the service (a stub, or a ``host:port`` to open a channel to),
    logged in as ``company``'s administrator; with no company named, the tenant takes the
    one the sandbox's default login consents for."""
    if isinstance(target, str):
        async with grpc.aio.insecure_channel(target) as channel:
            return await connect(pb_grpc.FortnoxServiceStub(channel), tenant, company,
                                 account_type, scopes)
    started = await start(target, tenant, company, account_type, scopes)
    return await complete(target, log_in(started.authorization_url,
                                         user=company.administrator if company else None))


async def connect_adapter(
    adapter: FortnoxAdapter, tenant: str, company: int | None = None,
    scopes: Sequence[str] = ALL_SCOPES, expected_organisation_number: str = "",
    account_type: AccountType = AccountType.USER,
) -> AdapterConnection:
    """The whole flow through the Fortnox adapter alone, consenting for ``company`` (a Fortnox
    tenant id; else the sandbox's default) as its administrator."""
    request = await adapter.connections.begin_connect(
        tenant, REDIRECT_URI, scopes, expected_organisation_number, account_type)
    back = log_in(request.url, company=company)
    return await adapter.connections.complete_connect(request.state, back["code"])
