"""Conversions between domain values and protobuf messages shared by several RPCs."""

from __future__ import annotations

from datetime import date, datetime

from google.protobuf import timestamp_pb2
from google.type import date_pb2

from core.errors import FieldViolation, InvalidRequest
from core.imports import Progress, Stage
from spiris.skattbokslut.fortnox.v1 import import_history_pb2 as history_pb


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


_STAGES = {
    Stage.AUTHORIZING: history_pb.ImportProgress.STAGE_AUTHORIZING,
    Stage.RESOLVING_YEARS: history_pb.ImportProgress.STAGE_RESOLVING_YEARS,
    Stage.DOWNLOADING: history_pb.ImportProgress.STAGE_DOWNLOADING,
    Stage.CONTROLLING: history_pb.ImportProgress.STAGE_CONTROLLING,
    Stage.FETCHING_LEDGER: history_pb.ImportProgress.STAGE_FETCHING_LEDGER,
    Stage.FETCHING_DOCUMENTS: history_pb.ImportProgress.STAGE_FETCHING_DOCUMENTS,
    Stage.DONE: history_pb.ImportProgress.STAGE_DONE,
}


def progress_message(progress: Progress) -> history_pb.ImportProgress:
    """A progress event of either import as the API shows it."""
    return history_pb.ImportProgress(
        stage=_STAGES[progress.stage], financial_year_id=progress.financial_year_id,
        bytes_done=progress.bytes_done, bytes_total=progress.bytes_total,
        items_done=progress.items_done, items_total=progress.items_total,
        message=progress.message,
    )
