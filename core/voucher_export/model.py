"""What an export asks for and what it answers, as plain records (money in integer öre)."""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, fields
from datetime import date, datetime

#: The prefix of the marker every exported voucher carries in its comments.
MARKER_PREFIX = "fnxb:"


class Target(enum.Enum):
    """Where the vouchers go."""

    FORTNOX_API = "fortnox_api"
    SIE_4I_FILE = "sie_4i_file"


class Outcome(enum.Enum):
    """What happened to one voucher of a request."""

    VALID = "valid"
    CREATED = "created"
    ALREADY_EXPORTED = "already_exported"
    REJECTED = "rejected"
    NOT_ATTEMPTED = "not_attempted"


@dataclass(frozen=True)
class ExportRow:
    """One row: exactly one of ``debit``/``credit`` is non-zero (öre)."""

    account: int
    debit: int = 0
    credit: int = 0
    cost_center: str = ""
    project: str = ""
    description: str = ""


@dataclass(frozen=True)
class ExportVoucher:
    """A voucher the caller wants in Fortnox, named by the caller's ``external_id``."""

    external_id: str
    transaction_date: date | None
    description: str
    rows: tuple[ExportRow, ...]

    def digest(self) -> str:
        """A SHA-256 of the voucher's content: the same voucher always gives the same digest."""
        return _sha256(_voucher_json(self))


@dataclass(frozen=True)
class ExportRequest:
    """One ExportVouchers call. ``series`` empty means the configured closing series.
    ``requested_by`` and ``deadline`` (a ``time.monotonic()`` instant) describe the call, not
    what it exports: the digest leaves them out."""

    tenant: str
    request_id: str
    vouchers: tuple[ExportVoucher, ...]
    series: str = ""
    validate_only: bool = False
    target: Target = Target.FORTNOX_API
    requested_by: str = ""
    deadline: float | None = None

    def digest(self, series: str) -> str:
        """A SHA-256 of what the request asks for (``series`` resolved), for request-id reuse."""
        payload = {"series": series, "target": self.target.value,
                   "vouchers": [_voucher_json(v) for v in self.vouchers]}
        return _sha256(payload)


@dataclass(frozen=True)
class VoucherResult:
    """The outcome of one voucher, as stored and as returned."""

    external_id: str
    outcome: Outcome
    series: str = ""
    number: int = 0
    financial_year_id: int = 0
    reason: str = ""
    message: str = ""
    fortnox_code: str = ""
    fortnox_message: str = ""
    exported_at: datetime | None = None
    request_id: str = ""


@dataclass(frozen=True)
class ExportResult:
    """The answer of a request: one result per voucher in request order, and a SIE file for
    the file target."""

    request_id: str
    results: tuple[VoucherResult, ...]
    sie_file: bytes = b""
    sie_file_name: str = ""


def voucher_marker(tenant: str, external_id: str) -> str:
    """The text that makes a posted voucher findable: fixed length, so no marker is a prefix
    of another, and bound to the tenant."""
    digest = hashlib.sha256(f"{tenant}\x00{external_id}".encode()).hexdigest()[:24]
    return f"{MARKER_PREFIX}{digest}"


def _voucher_json(voucher: ExportVoucher) -> dict[str, object]:
    return {
        "external_id": voucher.external_id,
        "date": voucher.transaction_date.isoformat() if voucher.transaction_date else "",
        "description": voucher.description,
        "rows": [[getattr(r, name) for name in _ROW_FIELDS] for r in voucher.rows],
    }


#: A row's fields in the digest, in their order: every one, so none can be left out of it.
_ROW_FIELDS = tuple(f.name for f in fields(ExportRow))


def _sha256(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
