"""A scripted ``FortnoxApi``: one company's books in memory, and the answers a test asks for.

It honours the port's contract where the use cases rely on it: a voucher POST awaits its
``proof`` right before it leaves (what the proof raises stops it, nothing is booked); a booked
voucher is found again by the marker in its comments or description, per year and series; a
lost answer (``LOST``) books the voucher and raises ``FortnoxOutcomeUnknown``, as a POST whose
answer never came back. Errors are the domain errors the adapter raises
(``adapters/fortnox/errors.py``). Only the methods ImportSie and ExportVouchers call are
written (another is an ``AttributeError``).

A test scripts each POST's answer (``posts_answer``), a pause before a POST
(``before_post``), markers Fortnox's search does not show yet (``unsearchable``), each year's
SIE file, the chunks it arrives in and where it fails or stalls; and reads back every POST
sent and every look-up made.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from core.errors import (
    ConnectionNotFound,
    FortnoxOutcomeUnknown,
    FortnoxRateLimited,
    FortnoxRejected,
    FortnoxUnavailable,
)
from core.fortnox_api import (
    Account,
    CompanyInformation,
    CostCenter,
    FileConnection,
    FinancialYear,
    NewVoucher,
    Project,
    Proof,
    Voucher,
    VoucherSeries,
)

#: The company the fake is logged in to.
COMPANY = CompanyInformation("Fake AB", "556677-8899", 1, "Gatan 1", "11122", "Stockholm",
                             "SE")


def _year(year_id: int, year: int) -> FinancialYear:
    return FinancialYear(year_id, date(year, 1, 1), date(year, 12, 31), "BAS 2024", "ACCRUAL")


#: Three calendar years, ids 1-3.
YEARS = (_year(1, 2024), _year(2, 2025), _year(3, 2026))


class Answer(enum.Enum):
    """What Fortnox does with one voucher POST."""

    BOOK = "book"  # books it and answers
    LOST = "lost"  # books it; the answer is lost (FortnoxOutcomeUnknown)
    NOT_BOOKED_UNKNOWN = "not_booked_unknown"  # the POST died unbooked, unknowably so
    UNAVAILABLE = "unavailable"  # FortnoxUnavailable, not booked
    RATE_LIMITED = "rate_limited"  # a 429 after the adapter's retries, not booked
    REJECT = "reject"  # FortnoxRejected with Fortnox's code and message


def _account(number: int, active: bool = True) -> Account:
    return Account(number, f"Konto {number}", active, Decimal(0), None, None, "", None)


@dataclass
class Books:
    """What the company's books hold besides vouchers."""

    years: tuple[FinancialYear, ...] = YEARS
    accounts: tuple[Account, ...] = (_account(1910), _account(2640), _account(3000),
                                     _account(1000, active=False))
    series: tuple[str, ...] = ("A", "I")
    locked_until: date | None = None
    cost_centers: tuple[CostCenter, ...] = (CostCenter("CC1", "Centre", True),)
    projects: tuple[Project, ...] = (Project("P1", "Project", "ONGOING"),)


@dataclass
class _Stream:
    """A download: the file in the chunks the test chose, or a failure part-way."""

    chunks: list[bytes]
    failure: Exception | None = None
    stall_after: int | None = None  # chunks sent before the stream stops, never to go on
    stalled: asyncio.Event | None = None  # set once it stopped
    content_type: str = "text/plain"
    file_name: str = "export.se"
    closed: bool = False

    @property
    def content_length(self) -> int | None:
        return sum(len(c) for c in self.chunks)

    async def _body(self) -> AsyncIterator[bytes]:
        for sent, chunk in enumerate(self.chunks):
            if sent == self.stall_after:
                assert self.stalled is not None
                self.stalled.set()
                await asyncio.Event().wait()
            yield chunk
        if self.failure is not None:
            raise self.failure

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._body()

    async def aclose(self) -> None:
        self.closed = True

    async def __aenter__(self) -> _Stream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


@dataclass
class ScriptedFortnox:
    """``core.fortnox_api.FortnoxApi`` over ``Books`` and a script; see the module."""

    books: Books = field(default_factory=Books)
    #: Each POST's answer, first to last; ``BOOK`` once the script is spent.
    posts_answer: deque[Answer] = field(default_factory=deque)
    #: Awaited at the start of the next POSTs (before the proof), one per POST.
    before_post: deque[Callable[[], Awaitable[None]]] = field(default_factory=deque)
    #: Markers whose vouchers Fortnox's search does not show (yet).
    unsearchable: set[str] = field(default_factory=set)
    #: Tenants that never connected (their calls raise ``ConnectionNotFound``).
    unknown_tenants: set[str] = field(default_factory=set)
    #: Each year's SIE file, the size of the chunks it arrives in, and failures part-way.
    sie_files: dict[int, bytes] = field(default_factory=dict)
    chunk_bytes: int = 4096
    sie_chunks: dict[int, list[bytes]] = field(default_factory=dict)  # as sent, where given
    sie_failures: dict[int, Exception] = field(default_factory=dict)
    sie_stall_after: dict[int, int] = field(default_factory=dict)
    sie_stalled: asyncio.Event = field(default_factory=asyncio.Event)
    #: Each year's file connections (documents), for ImportSie's records.
    file_connections: dict[int, list[FileConnection]] = field(default_factory=dict)
    file_connections_failure: Exception | None = None
    #: Where given, the listing of connections waits for it after its first connection.
    file_connections_gate: asyncio.Event | None = None
    #: The calls ImportSie's downloads and listings made, in order ("sie 6", "connections 6").
    calls: list[str] = field(default_factory=list)
    #: What happened: vouchers booked, POSTs sent (year, voucher), look-ups (year, series).
    booked: list[Voucher] = field(default_factory=list)
    posts: list[tuple[int, NewVoucher]] = field(default_factory=list)
    lookups: list[tuple[int, str | None]] = field(default_factory=list)
    downloads: list[_Stream] = field(default_factory=list)

    def _known(self, tenant: str) -> None:
        if tenant in self.unknown_tenants:
            raise ConnectionNotFound("No connection.", metadata={"tenant": tenant})

    async def company_information(self, tenant: str, *, deadline: float | None = None
                                  ) -> CompanyInformation:
        self._known(tenant)
        return COMPANY

    async def financial_years(self, tenant: str, *, deadline: float | None = None
                              ) -> list[FinancialYear]:
        self._known(tenant)
        return sorted(self.books.years, key=lambda y: y.from_date)

    async def accounts(self, tenant: str, financial_year_id: int, *,
                       deadline: float | None = None) -> list[Account]:
        return list(self.books.accounts)

    async def voucher_series(self, tenant: str, financial_year_id: int, *,
                             deadline: float | None = None) -> list[VoucherSeries]:
        return [VoucherSeries(code, code, True, financial_year_id)
                for code in self.books.series]

    async def locked_period_end(self, tenant: str, *, deadline: float | None = None
                                ) -> date | None:
        return self.books.locked_until

    async def cost_centers(self, tenant: str, *, deadline: float | None = None
                           ) -> list[CostCenter]:
        return list(self.books.cost_centers)

    async def projects(self, tenant: str, *, deadline: float | None = None) -> list[Project]:
        return list(self.books.projects)

    async def find_vouchers(self, tenant: str, financial_year_id: int, marker: str, *,
                            series: str | None = None, deadline: float | None = None
                            ) -> list[Voucher]:
        self.lookups.append((financial_year_id, series))
        if marker in self.unsearchable:
            return []
        return [v for v in self.booked if v.year == financial_year_id
                and (series is None or v.series == series)
                and (marker in v.comments or marker in v.description)]

    async def create_voucher(self, tenant: str, financial_year_id: int, voucher: NewVoucher,
                             *, deadline: float | None = None, proof: Proof | None = None
                             ) -> Voucher:
        if self.before_post:
            await self.before_post.popleft()()
        if proof is not None:
            await proof()  # what it raises stops the POST before it leaves
        self.posts.append((financial_year_id, voucher))
        answer = self.posts_answer.popleft() if self.posts_answer else Answer.BOOK
        if answer is Answer.REJECT:
            raise FortnoxRejected("Fortnox refused the voucher.", metadata={
                "fortnox_code": "2000423", "fortnox_message": "Kan inte hitta kontot."})
        if answer is Answer.UNAVAILABLE:
            raise FortnoxUnavailable("Fortnox did not answer.")
        if answer is Answer.RATE_LIMITED:
            raise FortnoxRateLimited("Too many requests.", retry_after_s=5.0)
        if answer is Answer.NOT_BOOKED_UNKNOWN:
            raise FortnoxOutcomeUnknown("The answer to the POST was lost.")
        number = 1 + sum(1 for v in self.booked
                         if (v.year, v.series) == (financial_year_id, voucher.series))
        booked = Voucher(voucher.series, number, financial_year_id, voucher.transaction_date,
                         voucher.description, voucher.comments)
        self.booked.append(booked)
        if answer is Answer.LOST:
            raise FortnoxOutcomeUnknown("The answer to the POST was lost.")
        return booked

    async def voucher_file_connections(self, tenant: str, *, financial_year_id: int | None = None,
                                       series: str | None = None, number: int | None = None,
                                       deadline: float | None = None
                                       ) -> AsyncIterator[FileConnection]:
        self.calls.append(f"connections {financial_year_id}")
        if self.file_connections_failure is not None:
            raise self.file_connections_failure
        for index, connection in enumerate(self.file_connections.get(financial_year_id or 0, [])):
            if index == 1 and self.file_connections_gate is not None:
                await self.file_connections_gate.wait()
            yield connection

    async def open_sie_export(self, tenant: str, financial_year_id: int, sie_type: int = 4, *,
                              deadline: float | None = None) -> _Stream:
        self.calls.append(f"sie {financial_year_id}")
        data = self.sie_files[financial_year_id]
        size = self.chunk_bytes
        chunks = self.sie_chunks.get(financial_year_id) or [
            data[i:i + size] for i in range(0, len(data), size)]
        stream = _Stream(chunks,
                         self.sie_failures.get(financial_year_id),
                         self.sie_stall_after.get(financial_year_id), self.sie_stalled)
        self.downloads.append(stream)
        return stream
