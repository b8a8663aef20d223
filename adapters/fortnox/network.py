"""httpcore's network backend on asyncio's own transports, without anyio's streams between.

httpcore's default backend reaches asyncio through anyio: every read and write passes a
cancel scope, a checkpoint that yields to the event loop (so a request's task goes to the back
of the queue behind every other task of a burst, between being given its rate slot and
leaving), and typed-attribute lookups; connecting goes through anyio's happy-eyeballs task
group. That was a third of the adapter's CPU in a burst of 500 requests. Here a connection is
an ``asyncio.Protocol`` that buffers what arrives, a read takes from that buffer and waits only
when it is empty, and a write hands the bytes to the transport at once; TLS is asyncio's
``start_tls`` on the same connection (as for Fortnox's https).

The errors are httpcore's (``ConnectError``, ``ReadTimeout``, ...), as its default backend
raises them, so httpx maps them to its own as before.
"""

from __future__ import annotations

import asyncio
import select
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpcore
from httpcore import AsyncNetworkBackend, AsyncNetworkStream

#: Bytes buffered before the connection stops reading (a download not read on meanwhile).
_HIGH_WATER = 256 * 1024

SocketOption = (tuple[int, int, int] | tuple[int, int, bytes | bytearray]
                | tuple[int, int, None, int])


class _Connection(asyncio.Protocol):
    """A connection's state as its transport reports it: the bytes received and not yet read,
    whether the peer ended, and who waits for what."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.ended = False  # the peer sent its end, or the connection was lost
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.reader: asyncio.Future[None] | None = None
        self.drainer: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _HIGH_WATER and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool | None:
        self.ended = True
        self._wake_reader()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        self._wake_reader()
        if self.drainer is not None and not self.drainer.done():
            self.drainer.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.drainer is not None and not self.drainer.done():
            self.drainer.set_result(None)

    def _wake_reader(self) -> None:
        if self.reader is not None and not self.reader.done():
            self.reader.set_result(None)


def _time_out(waiter: asyncio.Future[None], error: Exception) -> None:
    if not waiter.done():
        waiter.set_exception(error)


async def _wait(waiter: asyncio.Future[None], limit_s: float | None, error: Exception) -> None:
    """Waits for ``waiter``; ``error`` when ``limit_s`` seconds pass first (a timer, not a
    cancel scope or a task)."""
    timer = None if limit_s is None else asyncio.get_running_loop().call_later(
        limit_s, _time_out, waiter, error)
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()


class AsyncioStream(AsyncNetworkStream):
    """One connection (plain or TLS) as httpcore reads and writes it."""

    def __init__(self, transport: asyncio.Transport, connection: _Connection) -> None:
        self._transport = transport
        self._connection = connection
        connection.transport = transport  # after ``start_tls``: its flow control is the TLS one

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """What arrived, at most ``max_bytes``; ``b""`` at the peer's end."""
        connection = self._connection
        if not connection.chunks and not connection.ended:
            connection.reader = asyncio.get_running_loop().create_future()
            try:
                await _wait(connection.reader, timeout, httpcore.ReadTimeout(
                    "no data arrived within the read timeout"))
            finally:
                connection.reader = None
        if not connection.chunks:
            if connection.error is not None:
                raise httpcore.ReadError(str(connection.error) or "the connection was lost")
            return b""
        chunk = connection.chunks.popleft()
        if len(chunk) > max_bytes:
            connection.chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        connection.buffered -= len(chunk)
        if connection.reading_paused and connection.buffered <= _HIGH_WATER // 2:
            connection.reading_paused = False
            self._transport.resume_reading()
        return chunk

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Hands ``buffer`` to the transport, and waits only while its buffer is full."""
        if not buffer:
            return
        connection = self._connection
        if connection.error is not None or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        if connection.writing_paused:
            connection.drainer = asyncio.get_running_loop().create_future()
            try:
                await _wait(connection.drainer, timeout, httpcore.WriteTimeout(
                    "the data could not be sent within the write timeout"))
            finally:
                connection.drainer = None
            if connection.error is not None:
                raise httpcore.WriteError(str(connection.error) or "the connection was lost")

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
    ) -> AsyncNetworkStream:
        """The same connection with TLS on it (asyncio's ``start_tls``), or closed."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                tls = await loop.start_tls(self._transport, self._connection, ssl_context,
                                           server_hostname=server_hostname)
        except TimeoutError:
            self._transport.abort()
            raise httpcore.ConnectTimeout("the TLS handshake did not end in time") from None
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if tls is None:  # the connection ended during the handshake
            self._transport.abort()
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        assert isinstance(tls, asyncio.Transport)
        return AsyncioStream(tls, self._connection)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        if info == "is_readable":
            # Idle and readable: the server closed it (or sent what it should not). The
            # loop may not have seen it yet, so the socket is asked as well.
            connection = self._connection
            return (bool(connection.chunks) or connection.ended
                    or self._transport.is_closing() or self._socket_readable())
        return None

    def _socket_readable(self) -> bool:
        sock = self._transport.get_extra_info("socket")
        if sock is None or sock.fileno() < 0:
            return True
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))


class AsyncioBackend(AsyncNetworkBackend):
    """Opens connections as asyncio transports with an :class:`AsyncioStream` on each."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, connection = await loop.create_connection(
                    _Connection, host, port,
                    local_addr=None if local_address is None else (local_address, 0))
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection to {host}:{port} in time") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        # asyncio sets TCP_NODELAY itself; the options asked for go on top.
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        assert isinstance(transport, asyncio.Transport)
        return AsyncioStream(transport, connection)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
