"""Small conversions between domain values and protobuf well-known types."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from google.protobuf import timestamp_pb2
from google.type import date_pb2

from core.errors import FieldViolation, InvalidRequest


def timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A ``Timestamp`` for an aware datetime; ``None`` stays unset."""
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def proto_date(day: date | None) -> date_pb2.Date | None:
    """A ``google.type.Date``; ``None`` stays unset."""
    if day is None:
        return None
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def from_proto_date(value: date_pb2.Date, field: str) -> date:
    """A ``datetime.date`` from a full ``google.type.Date``; else ``INVALID_ARGUMENT``."""
    try:
        return date(value.year, value.month, value.day)
    except ValueError as exc:
        raise InvalidRequest(
            f"{field} is not a valid date.",
            violations=(FieldViolation(field, "must be a full calendar date (year, month, day)"),),
        ) from exc


def minor_units(amount: Decimal) -> int:
    """An exact amount in minor units (öre); amounts with more than two decimals are rounded
    half-even, which never happens for amounts Fortnox or a SIE file states."""
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
