"""One financial year's SIE file, parsed chunk by chunk: the CPU-bound half of ImportSie.

``YearParse`` runs the reader and the year-end controls over a file as it arrives, and hands
on every voucher's text for the change comparison. Everything it returns is plain data that
pickles, so it can run in another process (``SieParsers``) while the import's own process
goes on downloading and sending (and hashing those texts, which it has the time for).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from core.voucher_digest import BalanceDigest, voucher_key
from sie import (
    Account,
    Balance,
    Finding,
    ReadPolicy,
    ReadSummary,
    SieReader,
    Voucher,
)
from sie.controls import ControlFinding, ControlsResult, YearEndControls
from sie.records import Event as SieEvent

#: Parsed records are sent in batches of this many vouchers, or fewer once the records' text
#: comes to ``RECORD_BATCH_BYTES`` (a batch is one gRPC message, which clients take up to
#: 4 MiB of: 500 vouchers of 300 rows made 10.7 MB, more than the server sends at all).
RECORD_BATCH = 500
RECORD_BATCH_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ParseOptions:
    """How a year's file is read, and whether its records go to the caller."""

    financial_year_id: int
    allow_unbalanced: bool = False
    include_records: bool = False


@dataclass(frozen=True)
class RecordBatch:
    """Parsed records of a year's file."""

    financial_year_id: int
    accounts: tuple[Account, ...] = ()
    balances: tuple[Balance, ...] = ()
    vouchers: tuple[Voucher, ...] = ()
    #: Per voucher, how many documents Fortnox has connected to it (``None``: not known).
    document_counts: tuple[int, ...] | None = None


@dataclass(frozen=True)
class YearFinding:
    """A finding of the reader or of the year-end controls, for one year."""

    financial_year_id: int
    finding: Finding | ControlFinding


@dataclass(frozen=True)
class Parsed:
    """What a piece of the file produced: findings and record batches for the caller, and
    (voucher key, voucher text) pairs to fingerprint. ``vouchers`` counts all read so far."""

    events: tuple[RecordBatch | YearFinding, ...]
    voucher_texts: tuple[tuple[str, str], ...]
    vouchers: int


@dataclass(frozen=True)
class YearParsed:
    """What the whole file came to, once its end was read."""

    read: ReadSummary
    controls: ControlsResult
    balances_digest: str


@dataclass
class _Batch:
    accounts: list[Account] = field(default_factory=list)
    balances: list[Balance] = field(default_factory=list)
    vouchers: list[Voucher] = field(default_factory=list)
    #: The batch's size, reckoned from its records' text at two bytes a character: above what
    #: the message carrying them takes in real files (a row's field tags take less than its
    #: label and spaces), and a quarter of what a client takes leaves room where it is not.
    size: int = 0

    def add(self, event: SieEvent) -> bool:
        """Keeps a record worth sending; tells whether the batch is full."""
        if isinstance(event, Account):
            self.accounts.append(event)
            self.size += 2 * (len(event.number) + len(event.name)) + 16
        elif isinstance(event, Balance):
            self.balances.append(event)
            self.size += 2 * (len(event.account) + sum(len(d) + len(o) for d, o in event.objects)
                              ) + 64
        elif isinstance(event, Voucher):
            self.size += 2 * len(event.source) + 64
            self.vouchers.append(event._replace(source=""))
        return (len(self.vouchers) >= RECORD_BATCH or len(self.balances) >= 4 * RECORD_BATCH
                or self.size >= RECORD_BATCH_BYTES)

    def take(self, financial_year_id: int) -> RecordBatch | None:
        if not (self.accounts or self.balances or self.vouchers):
            return None
        batch = RecordBatch(financial_year_id, tuple(self.accounts), tuple(self.balances),
                            tuple(self.vouchers))
        self.accounts, self.balances, self.vouchers, self.size = [], [], [], 0
        return batch


class YearParse:
    """Reads one year's file: feed it every chunk, then close it."""

    def __init__(self, options: ParseOptions) -> None:
        self._options = options
        self._reader = SieReader(ReadPolicy(allow_unbalanced=options.allow_unbalanced,
                                            keep_voucher_source=True))
        self._controls = YearEndControls()
        self._balances = BalanceDigest()
        self._batch = _Batch()

    def feed(self, chunk: bytes) -> Parsed:
        """Reads a chunk; returns what it completed."""
        return self._consume(self._reader.feed(chunk), last=False)

    def close(self) -> tuple[Parsed, YearParsed]:
        """Reads the end of the file; returns what it completed and the year's result."""
        parsed = self._consume(self._reader.close(), last=True)
        year = YearParsed(self._reader.summary(), self._controls.finish(),
                          self._balances.hexdigest())
        return parsed, year

    def _consume(self, events: Iterable[SieEvent], *, last: bool) -> Parsed:
        year_id = self._options.financial_year_id
        include_records = self._options.include_records
        observe = self._controls.observe
        out: list[RecordBatch | YearFinding] = []
        texts: list[tuple[str, str]] = []
        for event in events:
            kind = type(event)
            if kind is Finding:
                assert isinstance(event, Finding)
                out.append(YearFinding(year_id, event))
                continue
            observe(event)
            if kind is Voucher:
                assert isinstance(event, Voucher)
                texts.append((voucher_key(event), event.source))
            elif kind is Balance:
                assert isinstance(event, Balance)
                self._balances.add(event)
            if include_records and self._batch.add(event):
                taken = self._batch.take(year_id)
                if taken is not None:
                    out.append(taken)
        if last:
            final = self._batch.take(year_id)
            if final is not None:
                out.append(final)
        return Parsed(tuple(out), tuple(texts), self._reader.summary().vouchers)


class YearParsing(Protocol):
    """A year's file being parsed elsewhere (another process).

    ``feed`` hands a chunk over and returns at once with whatever earlier chunks have
    produced meanwhile, so downloading and parsing overlap.
    """

    async def feed(self, chunk: bytes) -> list[Parsed]:
        """Hands a chunk over (waiting only while the parser is too far behind)."""
        ...

    async def close(self) -> tuple[list[Parsed], YearParsed]:
        """Ends the file; waits for everything still being parsed and the year's result."""
        ...


class SieParsers(Protocol):
    """Where years' files are parsed (a pool of worker processes in production)."""

    def parse(self, options: ParseOptions) -> AbstractAsyncContextManager[YearParsing]:
        """A parser for one year's file, given back when the context ends."""
        ...

    def busy(self) -> bool:
        """Whether every parser is taken, so a new file would wait for one."""
        ...
