"""Running the application under uvicorn on a socket bound before the server starts."""

from __future__ import annotations

import logging
import socket

import uvicorn

from sandbox.api_common import ConnectionDropped
from sandbox.app import create_app
from sandbox.state import SandboxState


class _HideDroppedConnections(logging.Filter):
    """Injected connection drops are intended; keep them out of the error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 picks a free port)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def make_server(state: SandboxState, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for ``state``'s application (call ``serve(sockets=[...])``)."""
    logging.getLogger("uvicorn.error").addFilter(_HideDroppedConnections())
    config = uvicorn.Config(create_app(state), log_level=log_level, lifespan="off",
                            access_log=False, timeout_graceful_shutdown=2)
    return uvicorn.Server(config)
