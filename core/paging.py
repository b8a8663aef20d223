"""Page tokens, the one codec of every listing: where its next page starts, read back strictly.

A token is the URL-safe base64 of its fields joined by ``|`` (the last, the key, may itself
hold ``|``). A newest-first listing's are ``<instant>|<key>``: the last row's UTC instant (ISO
8601 with microseconds, as the stores keep it) and the key that orders rows of the same
instant; a listing by key adds the filters it was made under before the key, so that a token
is refused under others. A token names only a position inside the caller's own listing, so it
needs no secret; but it must be one this service could have issued. Decoding checks that
strictly (canonical base64, the expected number of fields, a key of bounded length, an instant
in exactly the stored form), so a forged or mangled token is refused with ``INVALID_REQUEST``
instead of listing from an arbitrary place.
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


def encode_fields(*fields: str) -> str:
    """The token of a position named by ``fields``, the key last (only it may hold ``|``)."""
    return base64.urlsafe_b64encode("|".join(fields).encode()).decode()


def decode_fields(token: str, count: int) -> tuple[str, ...]:
    """The ``count`` fields a token names; ``InvalidRequest`` unless ``encode_fields`` could
    have made it, with a key of 1 to ``MAX_KEY_CHARS`` characters."""
    try:
        raw = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
        fields = tuple(raw.decode().split("|", count - 1))
    except (ValueError, UnicodeError, binascii.Error):
        raise _refused() from None
    if (base64.urlsafe_b64encode(raw).decode() != token or len(fields) != count
            or not 0 < len(fields[-1]) <= MAX_KEY_CHARS):
        raise _refused()
    return fields


def encode_page_token(instant: datetime, key: str) -> str:
    """The token of the position after the row at (``instant``, ``key``)."""
    return encode_fields(_instant_text(instant), key)


def split_page(
    rows: Sequence[T], limit: int, token_of: Callable[[T], str]
) -> tuple[tuple[T, ...], str]:
    """The page in ``rows`` (fetched as ``limit + 1``, so one more means another page) and the
    token of the next page, ``""`` on the last one."""
    page = tuple(rows[:limit])
    return page, token_of(page[-1]) if len(rows) > limit and page else ""


def decode_page_token(token: str) -> tuple[str, str]:
    """The (instant as stored, key) a token names; ``InvalidRequest`` unless it is well formed."""
    instant, key = decode_fields(token, 2)
    try:
        moment = datetime.fromisoformat(instant)
    except ValueError:
        raise _refused() from None
    if moment.tzinfo is None or _instant_text(moment) != instant:
        raise _refused()
    return instant, key


def _instant_text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def _refused() -> InvalidRequest:
    return InvalidRequest(
        "page_token is not one this service issued.",
        violations=(FieldViolation("page_token", "must be a next_page_token of this listing"),),
    )
