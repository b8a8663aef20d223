"""Page tokens: where the next page of a newest-first listing starts, read back strictly.

A token is the URL-safe base64 of ``<instant>|<key>``: the last row's UTC instant (ISO 8601
with microseconds, as the stores keep it) and the key that orders rows of the same instant.
It names only a position inside the caller's own listing, so it needs no secret; but it must
be one this service could have issued. Decoding checks that strictly (canonical base64, an
instant in exactly the stored form, a key of bounded length), so a forged or mangled token is
refused with ``INVALID_REQUEST`` instead of listing from an arbitrary place.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from core.errors import FieldViolation, InvalidRequest

T = TypeVar("T")

#: The longest key a token carries (an import id, or an external id of at most 200 characters).
MAX_KEY_CHARS = 200


def encode_page_token(instant: datetime, key: str) -> str:
    """The token of the position after the row at (``instant``, ``key``)."""
    raw = f"{_instant_text(instant)}|{key}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def split_page(
    rows: Sequence[T], limit: int, token_of: Callable[[T], str]
) -> tuple[tuple[T, ...], str]:
    """The page in ``rows`` (fetched as ``limit + 1``, so one more means another page) and the
    token of the next page, ``""`` on the last one."""
    page = tuple(rows[:limit])
    return page, token_of(page[-1]) if len(rows) > limit and page else ""


def decode_page_token(token: str) -> tuple[str, str]:
    """The (instant as stored, key) a token names; ``InvalidRequest`` unless it is well formed."""
    try:
        raw = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
        instant, key = raw.decode().split("|", 1)
        moment = datetime.fromisoformat(instant)
    except (ValueError, UnicodeError, binascii.Error):
        raise _refused() from None
    canonical = base64.urlsafe_b64encode(raw).decode() == token
    if (not canonical or moment.tzinfo is None or _instant_text(moment) != instant
            or not 0 < len(key) <= MAX_KEY_CHARS):
        raise _refused()
    return instant, key


def _instant_text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def _refused() -> InvalidRequest:
    return InvalidRequest(
        "page_token is not one this service issued.",
        violations=(FieldViolation("page_token", "must be a next_page_token of this listing"),),
    )
