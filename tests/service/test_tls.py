"""TLS and mutual TLS, with certificates made for the test."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider

from server.app import RunningServer, start_server
from server.config import Address, TlsSettings
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc

Pem = tuple[bytes, bytes]  # certificate, key


def _issue(name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
           ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _pem(pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> Pem:
    cert, key = pair
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@pytest.fixture(scope="module")
def pki() -> dict[str, Pem]:
    ca = _issue("test CA", None)
    return {"ca": _pem(ca), "server": _pem(_issue("localhost", ca)),
            "client": _pem(_issue("skatt-och-bokslut", ca))}


async def _served(tls: TlsSettings, servicer: pb_grpc.FortnoxServiceServicer) -> RunningServer:
    return await start_server(Address("127.0.0.1", 0), servicer, TracerProvider(), tls)


async def _check(port: int, credentials: grpc.ChannelCredentials) -> str:
    async with grpc.aio.secure_channel(
        f"localhost:{port}", credentials
    ) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))


@pytest.fixture
async def tls_server(
    pki: dict[str, Pem], servicer: pb_grpc.FortnoxServiceServicer
) -> AsyncIterator[RunningServer]:
    cert, key = pki["server"]
    running = await _served(TlsSettings(cert=cert, key=key, client_ca=None), servicer)
    yield running
    await running.server.stop(None)


@pytest.fixture
async def mtls_server(
    pki: dict[str, Pem], servicer: pb_grpc.FortnoxServiceServicer
) -> AsyncIterator[RunningServer]:
    cert, key = pki["server"]
    running = await _served(TlsSettings(cert=cert, key=key, client_ca=pki["ca"][0]), servicer)
    yield running
    await running.server.stop(None)


async def test_tls_serves_clients_that_trust_the_ca(
    tls_server: RunningServer, pki: dict[str, Pem]
) -> None:
    trusted = grpc.ssl_channel_credentials(root_certificates=pki["ca"][0])
    assert await _check(tls_server.port, trusted) == "SERVING"


async def test_mutual_tls_refuses_a_client_without_a_certificate(
    mtls_server: RunningServer, pki: dict[str, Pem]
) -> None:
    anonymous = grpc.ssl_channel_credentials(root_certificates=pki["ca"][0])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _check(mtls_server.port, anonymous)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    cert, key = pki["client"]
    known = grpc.ssl_channel_credentials(root_certificates=pki["ca"][0], private_key=key,
                                         certificate_chain=cert)
    assert await _check(mtls_server.port, known) == "SERVING"
