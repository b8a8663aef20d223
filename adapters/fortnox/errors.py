"""The one place Fortnox's answers and httpx's errors become the domain's errors, with stable
English messages.

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
    FortnoxAnswerMalformed,
    FortnoxAnswerTooLarge,
    FortnoxAuthRejected,
    FortnoxError,
    FortnoxLicenseMissing,
    FortnoxNotFound,
    FortnoxOutcomeUnknown,
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


class OAuthRefusal(Exception):
    """The token endpoint answered with an OAuth error (``invalid_grant``, ...)."""

    def __init__(self, error: str, status: int) -> None:
        super().__init__(f"OAuth error {error} (HTTP {status})")
        self.error = error
        self.status = status


class AnswerTimedOut(httpx.ReadTimeout):
    """An answer did not arrive whole within the time an attempt has (not merely one read):
    a transport failure like any other to ``retry.decide``."""


class RefreshNotSent(FortnoxUnavailable):
    """The refresh request never reached Fortnox: its refresh token is still unspent."""


class GrantAnswerLost(FortnoxUnavailable):
    """A token request went out but its answer never came: Fortnox may have issued the grant
    (and spent the refresh token) or not."""


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


def error_for_response(response: httpx.Response, route: str, body: ErrorBody | None = None
                       ) -> FortnoxError:
    """The domain error for a non-2xx API answer (the body must have been read; ``body``: its
    ``ErrorInformation``, when the caller parsed it already)."""
    return error_for_status(response.status_code, route,
                            body or parse_error_body(response.content))


def error_for_status(status: int, route: str, body: ErrorBody) -> FortnoxError:
    """The domain error for an answer with ``status`` and ``ErrorInformation`` ``body``."""
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


def attempt_error(
    route: str,
    outcome: httpx.Response | httpx.TransportError,
    deadline: float | None,
    *,
    outcome_unknown: bool = False,
    body: ErrorBody | None = None,
) -> FortnoxError | DeadlineExceeded:
    """What a failed API attempt means: Fortnox's refusal (its body read) or a transport
    failure; ``outcome_unknown``: the attempt was a write that may or may not have happened."""
    if isinstance(outcome, httpx.TransportError):
        if outcome_unknown:
            return FortnoxOutcomeUnknown(
                "Fortnox's answer to a write was lost; it may or may not have happened.",
                metadata={"route": route, "transport_error": type(outcome).__name__},
            )
        return unavailable(route, outcome, deadline)
    error = error_for_response(outcome, route, body)
    if outcome_unknown:
        return FortnoxOutcomeUnknown(
            "Fortnox failed while handling a write; it may or may not have happened.",
            metadata=error.metadata,
        )
    return error


def unavailable(
    route: str, exc: BaseException, deadline: float | None
) -> FortnoxUnavailable | DeadlineExceeded:
    """Fortnox could not be reached or the answer was cut off, or (when the caller's deadline
    has passed, which cuts every wait short) the caller ran out of time."""
    metadata = {"route": route, "transport_error": type(exc).__name__}
    if deadline is not None and time.monotonic() >= deadline:
        return DeadlineExceeded("The deadline passed while waiting for Fortnox.",
                                metadata=metadata)
    if isinstance(exc, AnswerTimedOut):
        return FortnoxUnavailable("Fortnox did not answer within the time limit.",
                                  metadata=metadata)
    return FortnoxUnavailable("Fortnox could not be reached.", metadata=metadata)


def refusal_in_success(route: str, status: int, body: ErrorBody, *, write: bool
                       ) -> FortnoxError:
    """A 2xx answer whose body is an ``ErrorInformation``: the error it states, taken at its
    word for a read; for a write the two contradict each other, so its outcome is unknown."""
    error = error_for_status(status, route, body)
    if write:
        return FortnoxOutcomeUnknown(
            "Fortnox answered a write with success and an error at once; it may or may not"
            " have happened.", metadata=error.metadata)
    if isinstance(error, FortnoxRejected) and body.code is None:
        return FortnoxAnswerMalformed(
            "Fortnox answered with success and an error without a code.",
            metadata=error.metadata)
    return error


def malformed(route: str, problem: str, *, write: bool = False) -> FortnoxError:
    """An answer that is not what Fortnox's API promises (not JSON, a ``null`` or a field of
    another type where a record belongs); for a write, its outcome is unknown."""
    metadata = {"route": route, "problem": problem[:200]}
    if write:
        return FortnoxOutcomeUnknown(
            "Fortnox's answer to a write did not show what was written; it may or may not"
            " have happened.", metadata=metadata)
    return FortnoxAnswerMalformed("Fortnox's answer is not what its API describes.",
                                  metadata=metadata)


def too_large(route: str, limit: int, *, write: bool = False,
              reason: str | None = None) -> FortnoxError:
    """An answer longer, decompressed, than the service reads (``reason``: the one a SIE
    file's download gives); for a write, its outcome is unknown."""
    metadata = {"route": route, "limit_bytes": str(limit)}
    if write:
        return FortnoxOutcomeUnknown(
            "Fortnox's answer to a write was too large to read; it may or may not have"
            " happened.", metadata=metadata)
    if reason == "SIE_TOO_LARGE":
        return FortnoxAnswerTooLarge(
            f"The SIE file Fortnox sent is larger than {limit} bytes.",
            reason="SIE_TOO_LARGE", metadata=metadata)
    return FortnoxAnswerTooLarge(f"Fortnox's answer is larger than {limit} bytes.",
                                 metadata=metadata)


def grant_request_error(exc: httpx.TransportError, *, outcome_unknown: bool
                        ) -> RefreshNotSent | GrantAnswerLost:
    """A token request that got no answer: never sent, or sent and its answer lost."""
    metadata = {"transport_error": type(exc).__name__}
    if outcome_unknown:
        return GrantAnswerLost("Fortnox's token service did not answer.", metadata=metadata)
    return RefreshNotSent("Fortnox's token service could not be reached.", metadata=metadata)


def grant_answer_error(response: httpx.Response, body: object) -> OAuthRefusal | FortnoxUnavailable:
    """A token endpoint's answer without a grant: an OAuth refusal, a success that cannot be
    read (as if lost: it may have spent a refresh token), or a failure of its own."""
    error = str(body.get("error", "")) if isinstance(body, dict) else ""
    if response.status_code < 500 and error:
        return OAuthRefusal(error, response.status_code)
    if response.is_success:  # a grant may have been made (a refresh token spent)
        return GrantAnswerLost("Fortnox's token answer could not be read.",
                               metadata={"http_status": str(response.status_code)})
    return FortnoxUnavailable(
        "Fortnox's token service failed.",
        metadata={"http_status": str(response.status_code)},
    )
