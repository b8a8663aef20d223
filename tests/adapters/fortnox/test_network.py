"""httpcore's connections on asyncio's transports (``network``): against real servers over
TCP and TLS: answers, reused connections, a connection the server closed while idle, a body
larger than the read buffer, timeouts, a lost connection and an untrusted certificate."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.fortnox.arrival import answer_age_s
from adapters.fortnox.network import AsyncioBackend, AsyncioStream
from adapters.fortnox.pools import SplitPools
from sandbox.testing import SandboxHandle

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Server:
    """A small HTTP/1.1 server: what it answers, and the connections it accepted."""

    port: int
    connections: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)


def _certificates(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for ``localhost`` it signed: (ca, cert, key) files."""
    now = dt.datetime.now(dt.UTC)

    def issue(name: str, signer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None
              ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(signer[0].subject if signer else subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=1))
                   .not_valid_after(now + dt.timedelta(hours=1))
                   .add_extension(x509.BasicConstraints(ca=signer is None, path_length=None),
                                  critical=True))
        if signer is not None:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        return builder.sign(signer[1] if signer else key, hashes.SHA256()), key

    ca = issue("test CA", None)
    cert, key = issue("localhost", ca)
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
                  ) -> bool:
    """Reads one request's head and answers it with ``body``; ``False`` at the client's end."""
    try:
        await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return False
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    return True


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[Path, Path, Path]:
    return _certificates(tmp_path)


@pytest.fixture
def server_tls(certificates: tuple[Path, Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates[1], certificates[2])
    return context


@pytest.fixture
def client_tls(certificates: tuple[Path, Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificates[0]))


async def _serve(handler: Handler, tls: ssl.SSLContext | None = None
                 ) -> tuple[Server, asyncio.Server]:
    server = Server(0)

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        try:
            await handler(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            server.closed.set()

    listening = await asyncio.start_server(accepted, "127.0.0.1", 0, ssl=tls)
    server.port = listening.sockets[0].getsockname()[1]
    return server, listening


@pytest.fixture
async def pool() -> AsyncIterator[Callable[..., httpcore.AsyncConnectionPool]]:
    made: list[httpcore.AsyncConnectionPool] = []

    def make(ssl_context: ssl.SSLContext | None = None) -> httpcore.AsyncConnectionPool:
        made.append(httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, keepalive_expiry=30, network_backend=AsyncioBackend()))
        return made[-1]

    yield make
    for one in made:
        await one.aclose()


async def _keep_answering(body: bytes, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
    while await _answer(reader, writer, body):
        pass


async def test_tls_answers_come_over_one_kept_connection(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext,
    pool: Callable[..., httpcore.AsyncConnectionPool],
) -> None:
    server, listening = await _serve(
        lambda r, w: _keep_answering(b'{"ok": true}', r, w), server_tls)
    async with listening:
        http = pool(client_tls)
        for _ in range(3):
            answer = await http.request("GET", f"https://localhost:{server.port}/3/x")
            assert answer.status == 200
            assert answer.content == b'{"ok": true}'
        stream = answer.extensions["network_stream"]
        assert isinstance(stream, AsyncioStream)
        assert stream.get_extra_info("ssl_object") is not None
        assert stream.get_extra_info("server_addr")[1] == server.port
        assert stream.get_extra_info("socket") is not None
        assert server.connections == 1


async def test_a_body_larger_than_the_read_buffer_arrives_whole_over_tls(
    server_tls: ssl.SSLContext, client_tls: ssl.SSLContext,
    pool: Callable[..., httpcore.AsyncConnectionPool],
) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB: reading pauses and resumes on the way
    server, listening = await _serve(lambda r, w: _keep_answering(body, r, w), server_tls)
    async with listening:
        http = pool(client_tls)
        async with http.stream("GET", f"https://localhost:{server.port}/big") as answer:
            received = bytearray()
            async for chunk in answer.aiter_stream():
                received += chunk
                await asyncio.sleep(0)
        assert bytes(received) == body


async def test_an_untrusted_certificate_fails_to_connect(
    server_tls: ssl.SSLContext, pool: Callable[..., httpcore.AsyncConnectionPool],
) -> None:
    server, listening = await _serve(lambda r, w: _keep_answering(b"{}", r, w), server_tls)
    async with listening:
        with pytest.raises(httpcore.ConnectError):
            await pool(ssl.create_default_context()).request(
                "GET", f"https://localhost:{server.port}/")


async def test_a_connection_the_server_closed_while_idle_is_not_reused(
    pool: Callable[..., httpcore.AsyncConnectionPool],
) -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _answer(reader, writer, b"{}")  # then closes, as a server's idle timeout does

    server, listening = await _serve(once)
    async with listening:
        http = pool()
        assert (await http.request("GET", f"http://127.0.0.1:{server.port}/")).status == 200
        await server.closed.wait()
        # The write of a request on it would be lost: a new connection is opened instead.
        assert (await http.request("GET", f"http://127.0.0.1:{server.port}/")).status == 200
        assert server.connections == 2


async def test_an_answer_that_never_comes_is_a_read_timeout(
    pool: Callable[..., httpcore.AsyncConnectionPool],
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes

    server, listening = await _serve(silent)
    async with listening:
        with pytest.raises(httpcore.ReadTimeout):
            await pool().request("GET", f"http://127.0.0.1:{server.port}/",
                                 extensions={"timeout": {"read": 0.2}})


async def test_a_connection_lost_mid_body_is_an_error_not_a_short_body(
    pool: Callable[..., httpcore.AsyncConnectionPool],
) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial\":")
        await writer.drain()

    server, listening = await _serve(cut)
    async with listening:
        with pytest.raises(httpcore.RemoteProtocolError):
            await pool().request("GET", f"http://127.0.0.1:{server.port}/")


async def test_nothing_listening_is_a_connect_error(
    pool: Callable[..., httpcore.AsyncConnectionPool],
) -> None:
    server, listening = await _serve(lambda r, w: _keep_answering(b"{}", r, w))
    port = server.port
    listening.close()
    await listening.wait_closed()
    with pytest.raises(httpcore.ConnectError):
        await pool().request("GET", f"http://127.0.0.1:{port}/")


async def test_the_adapters_pools_answer_over_this_backend(sandbox: SandboxHandle) -> None:
    """``SplitPools`` (the adapter's connections) use it, and the kernel's arrival time of an
    answer (the rate window's dating) is readable through it."""
    async with (httpx.AsyncClient(transport=SplitPools(4, 2.0)) as http,
                http.stream("GET", f"{sandbox.base_url}/_sandbox/tenants") as answer):
        assert answer.status_code == 200
        stream = answer.extensions["network_stream"]
        assert isinstance(stream, AsyncioStream)
        await asyncio.sleep(0.05)
        assert answer_age_s(answer, 0.0) > 0.0
