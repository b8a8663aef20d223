"""The voucher-documents use case's own logic, on fakes of its two ports: the estimate of the
time left, each file once, the scopes checked before any call, and the spool's pieces."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any, cast

import pytest

from core.chunks import CHUNK_BYTES
from core.connections import Connection, ConnectionRecords, ConnectionState
from core.document_spool import SpooledFile
from core.errors import FortnoxScopeMissing
from core.fortnox_api import FileConnection, FileSource, FinancialYear, FortnoxApi
from core.voucher_documents import (
    DocumentHeader,
    RateLimit,
    VoucherDocuments,
    YearDocumentsRequest,
    YearDone,
    YearProgress,
)

YEAR = FinancialYear(1, date(2025, 1, 1), date(2025, 12, 31), "", "")


class _Stream:
    content_type = "application/pdf"
    content_length = 3

    def __init__(self, file_id: str) -> None:
        self.file_name = f"{file_id}.pdf"

    async def _chunks(self) -> AsyncIterator[bytes]:
        yield b"%PD"

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> _Stream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class _Api:
    """Fortnox with the connections given; each file three bytes; the clock moves a second
    per download."""

    def __init__(self, connections: list[FileConnection], clock: list[float]) -> None:
        self.connections = connections
        self.clock = clock
        self.downloads: list[str] = []

    async def financial_years(self, tenant: str, **_: Any) -> list[FinancialYear]:
        return [YEAR]

    async def voucher_file_connections(self, tenant: str, **_: Any
                                       ) -> AsyncIterator[FileConnection]:
        for c in self.connections:
            yield c

    async def open_file(self, tenant: str, file_id: str, source: FileSource,
                        **_: Any) -> _Stream:
        self.downloads.append(file_id)
        self.clock[0] += 1.0
        return _Stream(file_id)


class _Connections:
    def __init__(self, scopes: tuple[str, ...]) -> None:
        self.scopes = scopes

    async def connection(self, tenant: str) -> Connection:
        return Connection(tenant, ConnectionState.CONNECTED, "", self.scopes, "", "", "",
                          datetime(2026, 1, 1), None, None, None, None, None)


def _use_case(connections: list[FileConnection], clock: list[float],
              scopes: tuple[str, ...] = ("connectfile", "archive")
              ) -> tuple[VoucherDocuments, _Api]:
    api = _Api(connections, clock)
    use_case = VoucherDocuments(cast(FortnoxApi, api),
                                cast(ConnectionRecords, _Connections(scopes)),
                                rate_limit=RateLimit(25, 5.0), monotonic=lambda: clock[0])
    return use_case, api


def _file(file_id: str, number: int) -> FileConnection:
    return FileConnection(file_id, f"{file_id}.pdf", voucher_series="A", voucher_number=number,
                          voucher_year=1)


async def test_the_estimate_is_the_rate_limit_until_the_pace_is_slower() -> None:
    clock = [0.0]
    use_case, _ = _use_case([_file(f"f{n:02}", n) for n in range(50)], clock)
    events = [e async for e in use_case.year(YearDocumentsRequest("t", 1))]
    progress = [e for e in events if isinstance(e, YearProgress)]
    assert progress[0].seconds_left == 10  # 50 files at 0.2 s each
    assert progress[10].seconds_left == 40  # then a second per file, as seen
    assert progress[-1].seconds_left == 0 and progress[-1].files_done == 50


async def test_a_file_on_two_vouchers_is_sent_once_and_received_ones_not_at_all() -> None:
    clock = [0.0]
    connections = [_file("shared", 2), _file("shared", 1), _file("own", 3), _file("had", 4)]
    use_case, api = _use_case(connections, clock)
    events = [e async for e in use_case.year(YearDocumentsRequest(
        "t", 1, received=frozenset({"had"})))]
    headers = [e for e in events if isinstance(e, DocumentHeader)]
    assert [(h.file_id, h.voucher.number) for h in headers] == [("shared", 1), ("own", 3)]
    assert api.downloads == ["shared", "own"]
    done = events[-1]
    assert isinstance(done, YearDone)
    assert (done.files_total, done.files_sent, done.files_skipped) == (3, 2, 1)


@pytest.mark.parametrize(("scopes", "named"), [(("bookkeeping",), "connectfile archive"),
                                               (("connectfile",), "archive")])
async def test_missing_scopes_are_named_before_any_call(scopes: tuple[str, ...],
                                                        named: str) -> None:
    use_case, api = _use_case([_file("f", 1)], [0.0], scopes)
    with pytest.raises(FortnoxScopeMissing) as caught:
        [e async for e in use_case.voucher("t", 1, "A", 1)]
    assert caught.value.metadata["scope"] == named and api.downloads == []


async def test_unknown_scopes_are_left_to_fortnox() -> None:
    use_case, api = _use_case([_file("f", 1)], [0.0], ())
    assert len([e async for e in use_case.voucher("t", 1, "A", 1)]) == 2
    assert api.downloads == ["f"]


@pytest.mark.parametrize("size", [0, 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES])
def test_the_spool_gives_whole_pieces_and_flags_the_last(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    with SpooledFile("f", "application/pdf", size, "", io.BytesIO(data)) as spooled:
        pieces = list(spooled.pieces())
    assert b"".join(p.data for p in pieces) == data
    assert [p.last for p in pieces] == [False] * (len(pieces) - 1) + [True]
    assert all(len(p.data) == CHUNK_BYTES for p in pieces[:-1])
    assert [p.offset for p in pieces] == [i * CHUNK_BYTES for i in range(len(pieces))]
