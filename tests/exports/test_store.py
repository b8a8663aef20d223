"""The export record against a real SQLite file."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.store import open_database
from adapters.store.exports import SqliteExportHistory
from core.errors import RequestIdReused
from core.voucher_export.history import ExportStatus
from core.voucher_export.model import Outcome


def _history(path: Path) -> SqliteExportHistory:
    return SqliteExportHistory(open_database(path),
                               lambda: datetime.now(UTC))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


def test_request_ids_refuse_other_payloads(db_path: Path) -> None:
    history = _history(db_path)
    rid = str(uuid.uuid4())
    assert history.open_request("t1", rid, "aaa", "me") is True
    assert history.open_request("t1", rid, "aaa", "me") is False
    with pytest.raises(RequestIdReused):
        history.open_request("t1", rid, "bbb", "me")
    assert history.open_request("t2", rid, "bbb", "me") is True


def test_intent_survives_the_process_and_settles_once(db_path: Path) -> None:
    first = _history(db_path)
    first.claim("t1", "v1", "r1", "d1", "fnxb:1", 3, "me")
    first.mark_unknown("t1", "v1")
    after_crash = _history(db_path)  # a new process: another worker id
    record = after_crash.get("t1", "v1")
    assert record is not None
    assert record.status is ExportStatus.UNKNOWN and record.worker_id == first.worker_id
    assert record.result.financial_year_id == 3 and record.marker == "fnxb:1"
    result = after_crash.mark_created("t1", "v1", "I", 17, 3)
    assert (result.outcome, result.series, result.number, result.request_id) == (
        Outcome.CREATED, "I", 17, "r1")
    after_crash.claim("t1", "v1", "r2", "d1", "fnxb:1", 3, "me")  # never reopens a created one
    again = after_crash.get("t1", "v1")
    assert again is not None and again.status is ExportStatus.CREATED
    assert again.result_for("r2").outcome is Outcome.ALREADY_EXPORTED
    assert again.result_for("r1").outcome is Outcome.CREATED


def test_rejected_vouchers_keep_fortnox_reason(db_path: Path) -> None:
    history = _history(db_path)
    history.claim("t1", "v1", "r1", "d1", "fnxb:1", 3, "me")
    result = history.mark_rejected("t1", "v1", "FORTNOX_REJECTED", "refused", "2000423",
                                   "Kan inte hitta kontot.")
    assert (result.outcome, result.fortnox_code, result.fortnox_message) == (
        Outcome.REJECTED, "2000423", "Kan inte hitta kontot.")
    history.claim("t1", "v1", "r2", "d2", "fnxb:1", 3, "me")  # a later request may retry
    record = history.get("t1", "v1")
    assert record is not None and record.status is ExportStatus.PENDING
    assert record.request_id == "r2" and record.result.fortnox_code == ""


def test_listing_pages_newest_first_and_filters(db_path: Path) -> None:
    history = _history(db_path)
    for n in range(5):
        history.claim("t1", f"v{n}", "r1" if n < 3 else "r2", "d", f"m{n}", 3, "me")
    history.claim("t2", "other", "r1", "d", "m", 3, "me")
    page = history.list_exports("t1", "", "", 2, "")
    seen = [r.external_id for r in page.records]
    while page.next_cursor:
        page = history.list_exports("t1", "", "", 2, page.next_cursor)
        seen += [r.external_id for r in page.records]
    assert seen == ["v4", "v3", "v2", "v1", "v0"]
    assert [r.external_id for r in history.list_exports("t1", "r2", "", 10, "").records] == [
        "v4", "v3"]
    assert [r.external_id for r in history.list_exports("t1", "", "v1", 10, "").records] == [
        "v1"]
