"""JSON answers with exact money: ``Decimal`` values are written as JSON numbers verbatim."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from starlette.responses import Response

_MARK = "\x00dec:"
_MARKED = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)"')


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return _MARK + format(value, "f")
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(payload: Any) -> str:
    """Serialise ``payload``; Decimals become plain JSON numbers (no float rounding)."""
    return _MARKED.sub(r"\1", json.dumps(payload, default=_default, ensure_ascii=False))


def money(minor: int) -> Decimal:
    """Öre/cents as a Decimal of the major unit, without trailing zeros (``1250`` → 12.5)."""
    value = Decimal(minor).scaleb(-2)
    return value.quantize(Decimal(1)) if minor % 100 == 0 else value.normalize()


def money_text(minor: int) -> str:
    """Öre/cents as a string with two decimals (supplier invoices type amounts as strings)."""
    return format(Decimal(minor).scaleb(-2), ".2f")


class FortnoxJSON(Response):
    """``application/json`` answer rendered with :func:`dumps`."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")
