"""Request bodies as JSON with exact money: a ``Decimal`` is written as a JSON number verbatim."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

_MARK = "\x00decimal:"
_MARKED = re.compile(r'"\\u0000decimal:(-?[0-9]+(?:\.[0-9]+)?)"')


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("amounts must be finite")
        return _MARK + format(value, "f")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(payload: Any) -> bytes:
    """UTF-8 JSON of ``payload``; Decimals become plain numbers with no float on the way."""
    return _MARKED.sub(r"\1", json.dumps(payload, default=_default, ensure_ascii=False)).encode()
