"""What a handler needs to know about the call it serves: who asked, and until when."""

from __future__ import annotations

import time
import uuid
from typing import Any

from core.errors import FieldViolation, InvalidRequest
from server.bounds import check_requested_by

#: Callers name the person or process behind a request in this metadata key.
REQUESTED_BY_KEY = "x-requested-by"

Context = Any  # grpc.aio.ServicerContext; grpc ships no type stubs


def requested_by(context: Context) -> str:
    """The ``x-requested-by`` metadata if the caller sent it, else the peer address."""
    for key, value in context.invocation_metadata() or ():
        if key == REQUESTED_BY_KEY and isinstance(value, str) and value.strip():
            return check_requested_by(value.strip())
    return str(context.peer())


def deadline(context: Context) -> float | None:
    """The call's deadline as a ``time.monotonic()`` instant, or ``None`` when it has none."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def required(value: str, field: str) -> str:
    """A request field that must not be empty (a redirect URI, a state, a code); the tenant
    of every RPC is required where requests are read (``server.bounds``)."""
    if not value.strip():
        raise InvalidRequest(f"{field} is required.",
                             violations=(FieldViolation(field, "must not be empty"),))
    return value


def uuid_field(value: str, field: str) -> str:
    """A request field that must hold a UUID (an idempotency key)."""
    try:
        uuid.UUID(value)
    except ValueError:
        raise InvalidRequest(f"{field} must be a UUID.",
                             violations=(FieldViolation(field, "must be a UUID"),)) from None
    return value
