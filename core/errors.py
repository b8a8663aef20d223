"""Domain errors, each knowing the gRPC status code and the stable reason a caller sees.

The server's error interceptor turns any ``DomainError`` into a ``google.rpc.Status`` with an
``ErrorInfo`` detail (``reason``, ``domain``, ``metadata``); nothing else reaches the caller.
An error with ``retry_after_s`` also carries a ``RetryInfo``. Messages are short English
sentences and never contain secrets. Every subclass of ``DomainError`` is drawn below (a test
compares the drawing with the classes). ``ExportInProgress`` lives beside the export history;
the two token-request failures under ``FortnoxUnavailable`` live in the OAuth adapter, which
tells them apart to know whether a refresh token was spent.

    DomainError                          code                   reason
    ├── InvalidRequest                   INVALID_ARGUMENT       INVALID_REQUEST (+ violations);
    │                                                           VOUCHERS_INVALID,
    │                                                           ANSWER_TOO_LARGE,
    │                                                           FINANCIAL_YEAR_NOT_FOUND
    ├── MalformedRequest                 INVALID_ARGUMENT       MALFORMED_REQUEST
    ├── RequestTooLarge                  RESOURCE_EXHAUSTED     REQUEST_TOO_LARGE
    ├── ConnectionNotFound               NOT_FOUND              CONNECTION_NOT_FOUND
    ├── ImportNotFound                   NOT_FOUND              IMPORT_NOT_FOUND
    ├── WatchNotFound                    NOT_FOUND              WATCH_NOT_FOUND
    ├── WatchLimitReached                RESOURCE_EXHAUSTED     WATCH_LIMIT_REACHED
    ├── CursorExpired                    OUT_OF_RANGE           BOOK_CHANGES_CURSOR_EXPIRED
    ├── OAuthStateInvalid                FAILED_PRECONDITION    OAUTH_STATE_UNKNOWN, _EXPIRED,
    │                                                    _USED, OAUTH_CONNECT_NOT_COMPLETED
    ├── ConsentRefused                   FAILED_PRECONDITION    OAUTH_ACCESS_DENIED,
    │                                                           SERVICE_ACCOUNT_NOT_ADMIN
    ├── CodeExchangeRefused              FAILED_PRECONDITION    OAUTH_CODE_REJECTED,
    │                                                           SERVICE_ACCOUNT_TENANT_UNKNOWN
    ├── WrongFortnoxCompany              FAILED_PRECONDITION    ORGANISATION_NUMBER_MISMATCH
    ├── ReconnectRequired                FAILED_PRECONDITION    RECONNECT_REQUIRED
    ├── ConnectionRevoked                FAILED_PRECONDITION    CONNECTION_REVOKED
    ├── StoredTokenUnreadable            FAILED_PRECONDITION    STORED_TOKEN_UNREADABLE
    ├── RequestIdReused                  ALREADY_EXISTS         REQUEST_ID_REUSED
    ├── ExportInProgress                 ABORTED                EXPORT_IN_PROGRESS (+ retry)
    ├── ImportInterrupted                ABORTED                IMPORT_INTERRUPTED
    ├── SieInvalid                       FAILED_PRECONDITION    SIE_INVALID, SIE_YEAR_MISMATCH,
    │                                                           SIE_COMPANY_MISMATCH,
    │                                                           SIE_NOT_SIE
    ├── SieParserFailed                  UNAVAILABLE            SIE_PARSER_FAILED
    ├── DeadlineExceeded                 DEADLINE_EXCEEDED      DEADLINE_EXCEEDED
    ├── StorageUnavailable               UNAVAILABLE            STORAGE_UNAVAILABLE
    ├── FortnoxError                     (per leaf)
    │   ├── FortnoxScopeMissing          PERMISSION_DENIED      FORTNOX_SCOPE_MISSING
    │   ├── FortnoxLicenseMissing        PERMISSION_DENIED      FORTNOX_LICENSE_MISSING
    │   ├── FortnoxAuthRejected          UNAUTHENTICATED        FORTNOX_AUTH_REJECTED
    │   ├── FortnoxRateLimited           UNAVAILABLE            FORTNOX_RATE_LIMITED (+ retry)
    │   ├── FortnoxUnavailable           UNAVAILABLE            FORTNOX_UNAVAILABLE
    │   │   ├── RefreshNotSent           UNAVAILABLE            FORTNOX_UNAVAILABLE
    │   │   └── GrantAnswerLost          UNAVAILABLE            FORTNOX_UNAVAILABLE
    │   ├── FortnoxOutcomeUnknown        UNAVAILABLE            FORTNOX_OUTCOME_UNKNOWN
    │   ├── FortnoxNotFound              NOT_FOUND              FORTNOX_NOT_FOUND
    │   ├── FortnoxRejected              FAILED_PRECONDITION    FORTNOX_REJECTED
    │   ├── FortnoxAnswerMalformed       UNAVAILABLE            FORTNOX_ANSWER_MALFORMED
    │   └── FortnoxAnswerTooLarge        RESOURCE_EXHAUSTED     FORTNOX_ANSWER_TOO_LARGE,
    │                                                           SIE_TOO_LARGE
    └── InternalError                    INTERNAL               INTERNAL_ERROR
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class StatusCode(enum.IntEnum):
    """The canonical gRPC status codes, mirrored so the core needs no gRPC import."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, as in ``google.rpc.BadRequest``."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error the service reports to its callers."""

    code: StatusCode = StatusCode.INTERNAL
    reason: str = "INTERNAL_ERROR"
    #: Seconds after which a retry may succeed, sent as ``google.rpc.RetryInfo``; ``None``
    #: for errors a retry does not cure (or whose delay nobody knows).
    retry_after_s: float | None = None

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        violations: tuple[FieldViolation, ...] = (),
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.violations = violations
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s


class InvalidRequest(DomainError):
    """The request itself is malformed or fails validation."""

    code = StatusCode.INVALID_ARGUMENT
    reason = "INVALID_REQUEST"


class MalformedRequest(DomainError):
    """The request's bytes are not a valid message of its type (bad protobuf, bad UTF-8)."""

    code = StatusCode.INVALID_ARGUMENT
    reason = "MALFORMED_REQUEST"


class RequestTooLarge(DomainError):
    """The request message is larger than the service accepts."""

    code = StatusCode.RESOURCE_EXHAUSTED
    reason = "REQUEST_TOO_LARGE"


class ConnectionNotFound(DomainError):
    """The tenant has never been connected (or was disconnected)."""

    code = StatusCode.NOT_FOUND
    reason = "CONNECTION_NOT_FOUND"


class ImportNotFound(DomainError):
    """No import with that id exists for the tenant."""

    code = StatusCode.NOT_FOUND
    reason = "IMPORT_NOT_FOUND"


class WatchNotFound(DomainError):
    """The tenant has never been watched."""

    code = StatusCode.NOT_FOUND
    reason = "WATCH_NOT_FOUND"


class WatchLimitReached(DomainError):
    """As many tenants as the service allows are watched already."""

    code = StatusCode.RESOURCE_EXHAUSTED
    reason = "WATCH_LIMIT_REACHED"


class CursorExpired(DomainError):
    """The changes after a caller's cursor were swept: it cannot learn all it missed."""

    code = StatusCode.OUT_OF_RANGE
    reason = "BOOK_CHANGES_CURSOR_EXPIRED"


class OAuthStateInvalid(DomainError):
    """The OAuth state is unknown, expired or already used (see ``reason``)."""

    code = StatusCode.FAILED_PRECONDITION
    reason = "OAUTH_STATE_UNKNOWN"


class ConsentRefused(DomainError):
    """Fortnox sent the customer back with an error instead of a code (see ``reason``)."""

    code = StatusCode.FAILED_PRECONDITION
    reason = "OAUTH_ACCESS_DENIED"


class CodeExchangeRefused(DomainError):
    """Fortnox refused to exchange the authorization code."""

    code = StatusCode.FAILED_PRECONDITION
    reason = "OAUTH_CODE_REJECTED"


class WrongFortnoxCompany(DomainError):
    """The customer logged in to another Fortnox company than the one expected."""

    code = StatusCode.FAILED_PRECONDITION
    reason = "ORGANISATION_NUMBER_MISMATCH"


class ReconnectRequired(DomainError):
    """Fortnox no longer accepts the refresh token; the customer must log in again."""

    code = StatusCode.FAILED_PRECONDITION
    reason = "RECONNECT_REQUIRED"


class ConnectionRevoked(DomainError):
    """The connection was disconnected; connect again to use it."""

    code = StatusCode.FAILED_PRECONDITION
    reason = "CONNECTION_REVOKED"


class StoredTokenUnreadable(DomainError):
    """A stored token does not decrypt for its row: the token key is not the one it was
    encrypted with, or the row was altered or copied from another tenant's. Connecting
    again stores new tokens (with the right key)."""

    code = StatusCode.FAILED_PRECONDITION
    reason = "STORED_TOKEN_UNREADABLE"


class RequestIdReused(DomainError):
    """A request id came back with a different payload."""

    code = StatusCode.ALREADY_EXISTS
    reason = "REQUEST_ID_REUSED"


class ImportInterrupted(DomainError):
    """The import was recorded as interrupted while it ran (its heartbeats stopped reaching
    the database, and a sweep ended it): its result is not kept, so it is not reported as a
    success either."""

    code = StatusCode.ABORTED
    reason = "IMPORT_INTERRUPTED"


class SieInvalid(DomainError):
    """A year's SIE file has error-level findings and the caller asked to fail on them."""

    code = StatusCode.FAILED_PRECONDITION
    reason = "SIE_INVALID"


class StorageUnavailable(DomainError):
    """The service's database cannot be read or written right now (a full disk, a lost
    file, a database server away); nothing was changed half-way, and a retry may succeed."""

    code = StatusCode.UNAVAILABLE
    reason = "STORAGE_UNAVAILABLE"


class FortnoxError(DomainError):
    """Fortnox answered with an error; its code and message travel as metadata."""

    code = StatusCode.UNAVAILABLE
    reason = "FORTNOX_UNAVAILABLE"


class FortnoxScopeMissing(FortnoxError):
    """The customer did not grant the scope the call needs."""

    code = StatusCode.PERMISSION_DENIED
    reason = "FORTNOX_SCOPE_MISSING"


class FortnoxLicenseMissing(FortnoxError):
    """The Fortnox company lacks the module or integration licence the call needs."""

    code = StatusCode.PERMISSION_DENIED
    reason = "FORTNOX_LICENSE_MISSING"


class FortnoxAuthRejected(FortnoxError):
    """Fortnox rejected the access token even after a refresh."""

    code = StatusCode.UNAUTHENTICATED
    reason = "FORTNOX_AUTH_REJECTED"


class FortnoxRateLimited(FortnoxError):
    """Fortnox kept answering 429 after the service's own backoff.

    Fortnox sends no ``Retry-After``; its limit is a sliding window of 5 seconds, so a retry
    after one window finds the tenant's quota free again.
    """

    code = StatusCode.UNAVAILABLE
    reason = "FORTNOX_RATE_LIMITED"
    retry_after_s = 5.0


class FortnoxUnavailable(FortnoxError):
    """Fortnox could not be reached or answered 5xx, after retries."""

    code = StatusCode.UNAVAILABLE
    reason = "FORTNOX_UNAVAILABLE"


class FortnoxOutcomeUnknown(FortnoxError):
    """A write was sent but no answer came; it may or may not have happened."""

    code = StatusCode.UNAVAILABLE
    reason = "FORTNOX_OUTCOME_UNKNOWN"


class FortnoxNotFound(FortnoxError):
    """The Fortnox resource asked for does not exist."""

    code = StatusCode.NOT_FOUND
    reason = "FORTNOX_NOT_FOUND"


class FortnoxRejected(FortnoxError):
    """Fortnox refused the request on a business rule (inactive account, locked period...)."""

    code = StatusCode.FAILED_PRECONDITION
    reason = "FORTNOX_REJECTED"


class FortnoxAnswerMalformed(FortnoxError):
    """Fortnox answered, but not as its API describes (not JSON, a ``null`` or a field of
    another type where a record belongs, an error inside a success); nothing of it is used."""

    code = StatusCode.UNAVAILABLE
    reason = "FORTNOX_ANSWER_MALFORMED"


class FortnoxAnswerTooLarge(FortnoxError):
    """Fortnox's answer is longer, decompressed, than the service reads (a JSON answer past
    its bound, a file past the download bound); reading stopped there."""

    code = StatusCode.RESOURCE_EXHAUSTED
    reason = "FORTNOX_ANSWER_TOO_LARGE"


class DeadlineExceeded(DomainError):
    """The caller's deadline passed while the service waited on Fortnox."""

    code = StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class SieParserFailed(DomainError):
    """The process parsing a SIE file stopped before the file's end; a new one takes the
    next import, so the same import can be retried."""

    code = StatusCode.UNAVAILABLE
    reason = "SIE_PARSER_FAILED"


class InternalError(DomainError):
    """Something unexpected; details are only in the logs and the trace."""

    code = StatusCode.INTERNAL
    reason = "INTERNAL_ERROR"


#: Failures of one document's download that leave the other documents worth fetching (a
#: ledger's invoice PDFs, a year's voucher receipts): the file is reported with its reason.
FILE_FAILURES: tuple[type[FortnoxError], ...] = (
    FortnoxNotFound, FortnoxRejected, FortnoxUnavailable, FortnoxAnswerMalformed,
    FortnoxAnswerTooLarge,
)
