"""Fortnox's error answers turned into the domain's errors, with stable English messages.

Fortnox's own code and (Swedish) message travel as metadata only; the response body is never
used as our message and never logged whole.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx

from core.errors import (
    DeadlineExceeded,
    FortnoxAuthRejected,
    FortnoxError,
    FortnoxLicenseMissing,
    FortnoxNotFound,
    FortnoxRateLimited,
    FortnoxRejected,
    FortnoxScopeMissing,
    FortnoxUnavailable,
)

MISSING_SCOPE_CODES = frozenset({2000663})
LICENSE_MISSING_CODES = frozenset({2001101, 2001103})
#: 401 codes meaning "this access token is no good": refresh and try once more.
TOKEN_REJECTED_CODES = frozenset({2000310, 2000311})
#: Longest Fortnox message kept as metadata.
_MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class ErrorBody:
    """``ErrorInformation``'s code and message, whichever key casing Fortnox used."""

    code: int | None
    message: str


def parse_error_body(content: bytes) -> ErrorBody:
    """Reads ``{"ErrorInformation": {"code", "message"}}`` (or ``Code``/``Message``)."""
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return ErrorBody(None, "")
    if not isinstance(data, dict):
        return ErrorBody(None, "")
    info = next((v for k, v in data.items() if k.lower() == "errorinformation"), data)
    if not isinstance(info, dict):
        return ErrorBody(None, "")
    fields = {k.lower(): v for k, v in info.items()}
    raw_code = fields.get("code")
    try:
        code = int(raw_code) if raw_code is not None else None
    except (TypeError, ValueError):
        code = None
    message = fields.get("message")
    return ErrorBody(code, str(message)[:_MESSAGE_LIMIT] if message is not None else "")


def error_for_response(response: httpx.Response, route: str) -> FortnoxError:
    """The domain error for a non-2xx API answer (the body must have been read)."""
    body = parse_error_body(response.content)
    status = response.status_code
    metadata = {"http_status": str(status), "route": route}
    if body.code is not None:
        metadata["fortnox_code"] = str(body.code)
    if body.message:
        metadata["fortnox_message"] = body.message
    if body.code in MISSING_SCOPE_CODES:
        return FortnoxScopeMissing(
            "The Fortnox connection lacks a permission (scope) this call needs.", metadata=metadata
        )
    if body.code in LICENSE_MISSING_CODES:
        return FortnoxLicenseMissing(
            "The Fortnox company lacks the licence or module this call needs.", metadata=metadata
        )
    if status == 429:
        return FortnoxRateLimited("Fortnox kept refusing calls over its rate limit.",
                                  metadata=metadata)
    if status >= 500:
        return FortnoxUnavailable("Fortnox answered with a server error.", metadata=metadata)
    if status == 401:
        return FortnoxAuthRejected("Fortnox rejected the access token.", metadata=metadata)
    if status == 403:
        return FortnoxScopeMissing("Fortnox denied access to this resource.", metadata=metadata)
    if status == 404:
        return FortnoxNotFound("The Fortnox resource does not exist.", metadata=metadata)
    return FortnoxRejected("Fortnox refused the request.", metadata=metadata)


def unavailable(
    route: str, exc: BaseException, deadline: float | None
) -> FortnoxUnavailable | DeadlineExceeded:
    """Fortnox could not be reached or the answer was cut off, or (when the caller's deadline
    has passed, which cuts every wait short) the caller ran out of time."""
    metadata = {"route": route, "transport_error": type(exc).__name__}
    if deadline is not None and time.monotonic() >= deadline:
        return DeadlineExceeded("The deadline passed while waiting for Fortnox.",
                                metadata=metadata)
    return FortnoxUnavailable("Fortnox could not be reached.", metadata=metadata)
