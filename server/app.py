"""Building, starting and draining the gRPC server (health, reflection, interceptors, TLS)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.sdk.trace import TracerProvider

from server.bounds import TRANSPORT_MAX_REQUEST_BYTES
from server.config import Address, ConfigError, ConnectionAge, TlsSettings
from server.errors import ErrorInterceptor
from server.metrics import MetricsInterceptor
from server.rpc_sie import serialize_answer
from server.telemetry import tracing_interceptor
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc

SERVICE_FULL_NAME: str = pb.DESCRIPTOR.services_by_name["FortnoxService"].full_name
_IMPORT_SIE = f"/{SERVICE_FULL_NAME}/ImportSie"

#: Written out rather than left to defaults: stream chunks are at most 1 MiB, so 8 MiB leaves
#: room for any message we send; requests are bounded by ``server.bounds`` (which answers with
#: a reason), gRPC only refuses far larger ones; keepalive lets long imports survive idle proxies.
_SERVER_OPTIONS = (
    ("grpc.max_send_message_length", 8 * 1024 * 1024),
    ("grpc.max_receive_message_length", TRANSPORT_MAX_REQUEST_BYTES),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
    ("grpc.so_reuseport", 0),
)


def _connection_age_options(age: ConnectionAge) -> tuple[tuple[str, int], ...]:
    """Connections end after ``age`` (gRPC adds ±10 % jitter) with a GOAWAY, and clients
    reconnect transparently: a client balancing over a headless service re-resolves then and
    spreads over replicas added since."""
    return (
        ("grpc.max_connection_age_ms", round(age.max_age_s * 1000)),
        ("grpc.max_connection_age_grace_ms", round(age.grace_s * 1000)),
    )


class _WrittenAnswers(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Lets ImportSie send the record batches its parser processes wrote as their bytes
    (``server.rpc_sie.EncodedAnswer``): its answers are written by ``serialize_answer``. The
    innermost interceptor, so the others keep the serializer it sets."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method != _IMPORT_SIE:
            return handler
        return handler._replace(response_serializer=serialize_answer)


@dataclass
class RunningServer:
    """A started server, the port it got, and its health servicer."""

    server: grpc.aio.Server
    port: int
    health: HealthServicer

    async def drain(self, grace_s: float) -> None:
        """Reports NOT_SERVING, stops taking calls, and lets running ones finish for ``grace_s``."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


def _credentials(tls: TlsSettings) -> Any:
    return grpc.ssl_server_credentials(
        [(tls.key, tls.cert)],
        root_certificates=tls.client_ca,
        require_client_auth=tls.client_ca is not None,
    )


async def start_server(
    listen: Address,
    servicer: pb_grpc.FortnoxServiceServicer,
    provider: TracerProvider,
    tls: TlsSettings | None = None,
    *,
    meter_provider: MeterProvider | None = None,
    connection_age: ConnectionAge | None = None,
) -> RunningServer:
    """Starts the server on ``listen`` (port 0 picks one) with health and reflection on.

    The metrics interceptor sits outside the error interceptor to see the statuses it makes.
    """
    server = grpc.aio.server(
        interceptors=[
            tracing_interceptor(provider),
            MetricsInterceptor(meter_provider or NoOpMeterProvider()),
            ErrorInterceptor(),
            _WrittenAnswers(),
        ],
        options=_SERVER_OPTIONS + _connection_age_options(connection_age or ConnectionAge()),
    )
    pb_grpc.add_FortnoxServiceServicer_to_server(servicer, server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (SERVICE_FULL_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME),
        server,
    )
    try:
        if tls is None:
            port = server.add_insecure_port(str(listen))
        else:
            port = server.add_secure_port(str(listen), _credentials(tls))
    except RuntimeError as exc:
        raise ConfigError(f"FORTNOX_BRIDGE_LISTEN: cannot listen on {listen}: {exc}") from exc
    await server.start()
    for name in ("", SERVICE_FULL_NAME):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server=server, port=port, health=health)
