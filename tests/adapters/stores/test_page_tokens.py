"""Page tokens (the one codec of every listing): what is issued reads back, nothing else does."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.errors import InvalidRequest
from core.paging import (
    MAX_KEY_CHARS,
    decode_fields,
    decode_page_token,
    encode_fields,
    encode_page_token,
)

MOMENT = datetime(2026, 11, 30, 23, 59, 1, 120, tzinfo=UTC)


@pytest.mark.parametrize("key", ["0b0c-import", "ext|with|bars", "å" * MAX_KEY_CHARS])
def test_an_issued_token_reads_back(key: str) -> None:
    token = encode_page_token(MOMENT, key)
    assert decode_page_token(token) == ("2026-11-30T23:59:01.000120+00:00", key)


def test_an_instant_in_another_zone_is_issued_in_utc() -> None:
    local = MOMENT.astimezone(timezone(timedelta(hours=1)))
    assert decode_page_token(encode_page_token(local, "k"))[0].endswith("+00:00")


def _raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize("token", [
    "not-a-token",
    "%%%%",
    _raw("garbage|x"),
    _raw("2026-11-30|x"),  # a date, not an instant
    _raw("2026-11-30T23:59:01|x"),  # no zone
    _raw("2026-11-30T23:59:01+00:00|x"),  # not the stored form
    _raw("2026-11-30T23:59:01.000120+01:00|x"),  # not UTC
    _raw("2026-11-30T23:59:01.000120+00:00|"),  # no key
    _raw("2026-11-30T23:59:01.000120+00:00|" + "k" * (MAX_KEY_CHARS + 1)),
    _raw("2026-11-30T23:59:01.000120+00:00|x").rstrip("="),  # not canonical
    _raw("2026-11-30T23:59:01.000120+00:00|x") + " ",
    base64.urlsafe_b64encode(b"2026-11-30T23:59:01.000120+00:00|\xff").decode(),
])
def test_anything_else_is_refused_naming_the_field(token: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_page_token(token)
    assert [v.field for v in caught.value.violations] == ["page_token"]


def test_a_listing_by_key_reads_its_filters_back_and_refuses_another_shape() -> None:
    token = encode_fields("", "user", "t1")  # ListConnections: state, account type, tenant
    assert decode_fields(token, 3) == ("", "user", "t1")
    for wrong in (lambda: decode_fields(token, 4), lambda: decode_page_token(token),
                  lambda: decode_fields(encode_fields("", "user", ""), 3)):
        with pytest.raises(InvalidRequest) as caught:
            wrong()
        assert [v.field for v in caught.value.violations] == ["page_token"]
