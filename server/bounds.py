"""The one place that bounds what a caller sends: the request's size, and the length, characters
and count of every field it carries, the fields that must not be empty (the tenant), and how
many entries each listing returns (``page_size``: its most, and what 0 means).

Each request is checked as it is read, before any handler runs (``request_reader``): too large,
not a valid message, or a field out of bounds each become an error the error interceptor
answers with its reason. The field bounds are tables keyed by field name (``Message.field``
where one name means two things), applied by a walk over the message; enum fields must hold a
value the contract defines. A test walks every request message of the contract and fails on a
string or repeated field without a bound, and the proto comments state each bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from core.errors import (
    DomainError,
    FieldViolation,
    InvalidRequest,
    MalformedRequest,
    RequestTooLarge,
)
from core.voucher_export.validation import (
    MAX_COST_CENTER,
    MAX_DESCRIPTION,
    MAX_EXTERNAL_ID,
    MAX_PROJECT,
    MAX_ROW_TEXT,
    MAX_VOUCHERS,
)

#: The largest request message the service reads; larger ones get ``REQUEST_TOO_LARGE``.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
#: What gRPC itself lets through, so that the service, not gRPC, refuses requests between the
#: two (gRPC's own refusal carries no ``ErrorInfo``) while nothing far larger is buffered.
TRANSPORT_MAX_REQUEST_BYTES = 4 * MAX_REQUEST_BYTES

#: The OAuth scopes Fortnox documents; ``Connect`` asks for no other.
FORTNOX_SCOPES = frozenset({
    "companyinformation", "bookkeeping", "invoice", "customer", "supplier", "supplierinvoice",
    "payment", "archive", "inbox", "connectfile", "settings", "costcenter", "project",
})


@dataclass(frozen=True)
class Bound:
    """The most characters a string field may hold, and which characters."""

    max_chars: int
    chars: re.Pattern[str]
    says: str
    allowed: frozenset[str] | None = None

    def problem(self, value: str) -> str | None:
        """What is wrong with ``value`` (never echoing it), or ``None``."""
        if len(value) > self.max_chars:
            return f"at most {self.max_chars} characters (has {len(value)})"
        if self.allowed is not None and value not in self.allowed:
            return f"must be one of: {', '.join(sorted(self.allowed))}"
        if not self.chars.fullmatch(value):
            return f"may hold only {self.says}"
        return None


_ID = (re.compile(r"([A-Za-z0-9][A-Za-z0-9._:@-]*)?"),
       "letters, digits and . _ : @ -, starting with a letter or digit")
_ASCII = (re.compile(r"[!-~]*"), "printable ASCII characters without spaces")
_TEXT = (re.compile(r"[^\x00-\x1f\x7f-\x9f]*"), "characters other than control characters")

#: Every string field of every request, by name; the proto comments state the same bounds.
STRINGS: dict[str, Bound] = {
    "tenant": Bound(64, *_ID),
    "tenants": Bound(64, *_ID),
    "redirect_uri": Bound(2048, *_ASCII),
    "scopes": Bound(max(map(len, FORTNOX_SCOPES)), *_ASCII, allowed=FORTNOX_SCOPES),
    "expected_organisation_number": Bound(20, *_TEXT),
    "state": Bound(128, *_ASCII),
    "code": Bound(1024, *_ASCII),
    "error": Bound(64, *_ASCII),
    "error_description": Bound(1024, *_TEXT),
    "request_id": Bound(64, *_ASCII),
    "import_id": Bound(64, *_ASCII),
    "page_token": Bound(512, *_ASCII),
    "voucher_series": Bound(10, *_TEXT),  # Fortnox's series codes are 1-10 characters
    "external_id": Bound(MAX_EXTERNAL_ID, *_TEXT),
    "ExportVoucher.description": Bound(MAX_DESCRIPTION, *_TEXT),
    "ExportVoucherRow.description": Bound(MAX_ROW_TEXT, *_TEXT),
    "cost_center": Bound(MAX_COST_CENTER, *_TEXT),
    "project": Bound(MAX_PROJECT, *_TEXT),
    "received_file_ids": Bound(100, *_ASCII),
}
#: The string fields no request may leave empty (proto3 cannot tell an unset string from "").
REQUIRED = frozenset({"tenant"})
#: Every repeated field of every request, by name: the most entries it may hold.
COUNTS: dict[str, int] = {
    "scopes": len(FORTNOX_SCOPES),
    "years": 20,
    "ledgers": 2,
    "vouchers": MAX_VOUCHERS,
    "rows": 1000,
    "voucher_series": 50,
    "received_file_ids": 20_000,
    "tenants": 100,
}


@dataclass(frozen=True)
class PageSize:
    """How many entries a listing returns: ``default`` when the caller sends 0, at most ``most``."""

    default: int
    most: int


#: Every listing's ``page_size``, by request message; the proto comments state the same.
PAGE_SIZES: dict[str, PageSize] = {
    "ListConnectionsRequest": PageSize(default=50, most=500),
    "ListImportsRequest": PageSize(default=50, most=500),
    "ListVoucherExportsRequest": PageSize(default=100, most=1000),
    "ListWatchesRequest": PageSize(default=50, most=500),
}
#: The ``x-requested-by`` metadata, stored with each import and export.
REQUESTED_BY = Bound(200, re.compile(r"[ -~]*"), "printable ASCII characters")


@dataclass(frozen=True)
class Rejected:
    """A request refused as it was read; the error interceptor answers with ``error``."""

    error: DomainError


def request_reader(
    parse: Callable[[bytes], Message], *, bounded: bool
) -> Callable[[bytes], Message | Rejected]:
    """Wraps a request deserializer: a request too large, malformed or (when ``bounded``) with
    a field out of bounds becomes ``Rejected`` instead of an exception gRPC would call UNKNOWN."""

    def read(data: bytes) -> Message | Rejected:
        if len(data) > MAX_REQUEST_BYTES:
            return Rejected(RequestTooLarge(
                f"The request is {len(data)} bytes; at most {MAX_REQUEST_BYTES} are accepted.",
                metadata={"size_bytes": str(len(data)), "limit_bytes": str(MAX_REQUEST_BYTES)},
            ))
        try:
            message = parse(data)
        except DecodeError as exc:
            return Rejected(MalformedRequest(
                f"The request is not a valid protobuf message: {_cause(exc)}.",
            ))
        problems = violations(message) if bounded else []
        if problems:
            return Rejected(InvalidRequest(
                f"{len(problems)} field(s) of the request are out of bounds.",
                violations=tuple(problems),
            ))
        return message

    return read


def violations(message: Message, path: str = "") -> list[FieldViolation]:
    """The fields of ``message`` (and of the messages in it) that break their bounds."""
    found = [FieldViolation(path + name, "must not be empty") for name in sorted(REQUIRED)
             if name in message.DESCRIPTOR.fields_by_name and not getattr(message, name)]
    for field, value in message.ListFields():
        where = path + field.name
        if field.is_repeated:
            limit = COUNTS[field.name]
            if len(value) > limit:
                found.append(FieldViolation(where, f"at most {limit} entries (has {len(value)})"))
                continue
            items = [(f"{where}[{index}]", item) for index, item in enumerate(value)]
        else:
            items = [(where, value)]
        for at, item in items:
            found += _check(message, field, at, item)
    return found


def check_requested_by(value: str) -> str:
    """The ``x-requested-by`` value if it is within bounds; else ``InvalidRequest``."""
    problem = REQUESTED_BY.problem(value)
    if problem is not None:
        raise InvalidRequest("The x-requested-by metadata is out of bounds.",
                             violations=(FieldViolation("x-requested-by", problem),))
    return value


def page_size(request: Message) -> int:
    """The number of entries ``request`` asks for, its listing's default when it sends 0 (the
    bound was checked as the request was read)."""
    asked: int = getattr(request, "page_size")  # noqa: B009 (every listing request has one)
    return asked or PAGE_SIZES[request.DESCRIPTOR.name].default


def string_bound(message_name: str, field_name: str) -> Bound:
    """The bound of a string field (``KeyError`` if it has none: the tests forbid that)."""
    return STRINGS.get(f"{message_name}.{field_name}") or STRINGS[field_name]


def _check(parent: Message, field: FieldDescriptor, at: str, value: Any) -> list[FieldViolation]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return violations(value, at + ".")
    if field.type == FieldDescriptor.TYPE_STRING:
        problem = string_bound(parent.DESCRIPTOR.name, field.name).problem(value)
        return [] if problem is None else [FieldViolation(at, problem)]
    if field.name == "page_size":
        most = PAGE_SIZES[parent.DESCRIPTOR.name].most
        return [] if 0 <= value <= most else [FieldViolation(at, f"must be 0-{most}")]
    enum = field.enum_type
    if enum is not None and value not in enum.values_by_number:
        return [FieldViolation(at, f"{value} is not a value of {enum.name}")]
    return []


def _cause(exc: DecodeError) -> str:
    """The parser's reason without the message type it repeats ("Wire format was corrupt")."""
    return str(exc).rsplit(": ", 1)[-1][:100]
