"""When an answer reached this host, by the kernel's account rather than the event loop's.

Fortnox counts a request when it arrives there, before it begins to answer, so an answer's
first bytes reaching this host come after Fortnox counted it: dating a rate slot then is never
earlier than Fortnox's count. On a busy event loop the coroutine that reads the answer runs
long after the bytes came (500 answers of a burst wait for each other's turns); the kernel
knows when data last reached the socket (Linux's ``TCP_INFO``, ``tcpi_last_data_recv``, in
milliseconds of kernel clock ticks). On one HTTP/1.1 connection nothing else is received
between sending a request and reading its answer's head, so the last data received is that
answer's, or later: never earlier than its first byte.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any

import httpx

#: ``struct tcp_info``: the offset of ``tcpi_last_data_recv`` (u32, ms) and the size read.
_LAST_DATA_RECV_AT = 52
_TCP_INFO_BYTES = 104
#: The kernel counts in clock ticks (at the coarsest setting, 100 a second), so the age it
#: reports may be up to one tick more than the true one: taken off, the age is never too long.
_TICK_S = 0.010
_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None) if sys.platform == "linux" else None


def answer_age_s(response: httpx.Response, sent_at: float) -> float:
    """Seconds since the data of ``response`` reached this host (``0.0`` when the kernel
    cannot say), never more than since ``sent_at`` (``time.monotonic()`` when the request
    left). Read it before the clock the age is taken from."""
    if _TCP_INFO is None or response.http_version != "HTTP/1.1":
        return 0.0  # on HTTP/2 another stream's answer may be what came last
    stream: Any = response.extensions.get("network_stream")
    # A ``socket.socket``, or asyncio's ``TransportSocket`` around one.
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return 0.0
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_BYTES)
    except OSError:
        return 0.0
    if not isinstance(info, bytes) or len(info) < _LAST_DATA_RECV_AT + 4:
        return 0.0
    last_ms: int = struct.unpack_from("=I", info, _LAST_DATA_RECV_AT)[0]
    return max(0.0, min(last_ms / 1000 - _TICK_S, time.monotonic() - sent_at))
