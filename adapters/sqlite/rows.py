"""How the SQLite file keeps dates and times (ISO 8601 text), and rows read back by name.

Times are written as UTC with microseconds, so text order is time order and a page token's
instant compares with the stored one. A row is read into the type the caller names (one of
``adapters.sql.rows``), its ``date`` and ``datetime`` fields parsed from that text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, TypeVar, get_args, get_type_hints

from sqlite_utils import Database

R = TypeVar("R")


def iso(moment: datetime) -> str:
    """A time as the store keeps it: UTC, ISO 8601, with microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def iso_day(day: date | None) -> str | None:
    """A day as the store keeps it (ISO 8601), or ``None``."""
    return day.isoformat() if day else None


def written(row: Sequence[Any]) -> list[Any]:
    """A row's values as the store writes them: dates and times as ISO text."""
    return [iso(v) if isinstance(v, datetime) else iso_day(v) if isinstance(v, date) else v
            for v in row]


def select(db: Database, row_type: Callable[..., R], sql: str, params: Sequence[Any]) -> list[R]:
    """The rows of ``sql`` as ``row_type``, built by column name."""
    cursor = db.conn.cursor()
    cursor.row_factory = _factory(row_type)
    return list(cursor.execute(sql, params))


def select_one(
    db: Database, row_type: Callable[..., R], sql: str, params: Sequence[Any]
) -> R | None:
    """The first row of ``sql`` as ``row_type``, or ``None``."""
    rows = select(db, row_type, sql, params)
    return rows[0] if rows else None


def _factory(row_type: Callable[..., R]) -> Callable[[sqlite3.Cursor, tuple[Any, ...]], R]:
    parsers = _parsers(row_type)

    def make(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> R:
        names = (name for name, *_ in cursor.description)
        return row_type(**{
            name: (parsers[name](value) if value else None) if name in parsers else value
            for name, value in zip(names, values, strict=True)
        })
    return make


@cache
def _parsers(row_type: object) -> dict[str, Callable[[str], object]]:
    """The fields of ``row_type`` that are dates or times, and how each is parsed."""
    return {name: parse for name, hint in get_type_hints(row_type).items()
            if (parse := _parser(hint)) is not None}


def _parser(hint: object) -> Callable[[str], object] | None:
    """How a field of this type is read from its text, if it is a date or a time."""
    kinds = get_args(hint) or (hint,)
    if datetime in kinds:
        return datetime.fromisoformat
    if date in kinds:
        return date.fromisoformat
    return None
