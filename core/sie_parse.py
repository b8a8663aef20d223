"""One financial year's SIE file, parsed chunk by chunk: the CPU-bound half of ImportSie.

``YearParse`` runs the reader and the year-end controls over a file as it arrives, and hands
on every voucher's fingerprint for the change comparison, in batches. Everything it returns
is plain data, so it can run in another process (``SieParsers``) while the import's own
process goes on downloading and sending: fingerprinting a voucher's text costs the parser
about what sending the text over would, and the service nothing at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from core.voucher_digest import DIGEST_SIZE, KEY_SEPARATOR, BalanceDigest, DigestBatch
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

#: Parsed records are sent in batches of at most this many vouchers (4 balances a voucher)...
RECORD_BATCH = 500
#: ...and of about this many bytes of the file at most, so that a year of long vouchers cannot
#: make a message a caller refuses (gRPC clients take 4 MiB by default; a record's message is
#: about the size of its lines, a voucher being at most one message however long it is).
RECORD_BATCH_BYTES = 512 * 1024
#: What a record of the file counts for, beside its text, in ``RECORD_BATCH_BYTES``.
_RECORD_OVERHEAD = 64


@dataclass(frozen=True)
class ParseOptions:
    """How a year's file is read, and whether its records go to the caller."""

    financial_year_id: int
    allow_unbalanced: bool = False
    include_records: bool = False
    #: Documents Fortnox has connected to each voucher (series, number), for the records
    #: (``None``: not known, the records say nothing of them).
    document_counts: Mapping[tuple[str, int], int] | None = None


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
class EncodedRecords:
    """A record batch the parser process already encoded as the caller's message (by a
    ``RecordEncoder``), so that the service only passes its bytes on."""

    financial_year_id: int
    data: bytes


#: Encodes a record batch as the caller's message, in the parser process.
RecordEncoder = Callable[[RecordBatch], bytes]


@dataclass(frozen=True)
class YearFinding:
    """A finding of the reader or of the year-end controls, for one year."""

    financial_year_id: int
    finding: Finding | ControlFinding


@dataclass(frozen=True)
class Parsed:
    """What a piece of the file produced: findings and record batches for the caller, and the
    fingerprints of its vouchers. ``vouchers`` counts all read so far."""

    events: tuple[RecordBatch | EncodedRecords | YearFinding, ...]
    digests: DigestBatch
    vouchers: int


@dataclass(frozen=True)
class YearParsed:
    """What the whole file came to, once its end was read."""

    read: ReadSummary
    controls: ControlsResult
    balances_digest: bytes


@dataclass
class _Batch:
    accounts: list[Account] = field(default_factory=list)
    balances: list[Balance] = field(default_factory=list)
    vouchers: list[Voucher] = field(default_factory=list)
    size: int = 0  # about the bytes of the file its records came from

    def full_before(self, event: SieEvent) -> bool:
        """Whether the batch holds records and ``event`` would take it over its size."""
        return bool(self.size) and self.size + _size(event) > RECORD_BATCH_BYTES

    def add(self, event: SieEvent) -> bool:
        """Keeps a record worth sending; tells whether the batch is full."""
        if isinstance(event, Account):
            self.accounts.append(event)
        elif isinstance(event, Balance):
            self.balances.append(event)
        elif isinstance(event, Voucher):
            self.vouchers.append(event._replace(source=""))
        else:
            return False
        self.size += _size(event)
        return (len(self.vouchers) >= RECORD_BATCH or len(self.balances) >= 4 * RECORD_BATCH
                or self.size >= RECORD_BATCH_BYTES)

    def take(self, financial_year_id: int, document_counts: Mapping[tuple[str, int], int] | None
             ) -> RecordBatch | None:
        if not (self.accounts or self.balances or self.vouchers):
            return None
        counts = None if document_counts is None else tuple(
            document_counts.get((v.series, int(v.number)), 0) if v.number.isdigit() else 0
            for v in self.vouchers)
        batch = RecordBatch(financial_year_id, tuple(self.accounts), tuple(self.balances),
                            tuple(self.vouchers), counts)
        self.accounts, self.balances, self.vouchers, self.size = [], [], [], 0
        return batch


def _size(event: SieEvent) -> int:
    """About the bytes of the file a record to send came from (0: not one to send)."""
    if isinstance(event, Voucher):
        return _RECORD_OVERHEAD + len(event.source)
    if isinstance(event, Account):
        return _RECORD_OVERHEAD + len(event.name)
    if isinstance(event, Balance):
        return _RECORD_OVERHEAD + 16 * len(event.objects)
    return 0


class YearParse:
    """Reads one year's file: feed it every chunk, then close it."""

    def __init__(self, options: ParseOptions, encode: RecordEncoder | None = None) -> None:
        self._options = options
        self._encode = encode
        self._reader = SieReader(ReadPolicy(allow_unbalanced=options.allow_unbalanced,
                                            keep_voucher_source=True))
        self._controls = YearEndControls()
        self._balances = BalanceDigest()
        self._batch = _Batch()
        self._fingerprinted = 0
        self._blank = hashlib.blake2b(digest_size=DIGEST_SIZE)

    def feed(self, chunk: bytes) -> Parsed:
        """Reads a chunk; returns what it completed."""
        return self._consume(self._reader.feed(chunk), last=False)

    def close(self) -> tuple[Parsed, YearParsed]:
        """Reads the end of the file; returns what it completed and the year's result."""
        parsed = self._consume(self._reader.close(), last=True)
        year = YearParsed(self._reader.summary(), self._controls.finish(),
                          self._balances.digest())
        return parsed, year

    def _consume(self, events: Iterable[SieEvent], *, last: bool) -> Parsed:
        year_id = self._options.financial_year_id
        include_records = self._options.include_records
        observe = self._controls.observe
        out: list[RecordBatch | EncodedRecords | YearFinding] = []
        keys: list[str] = []
        digests: list[bytes] = []
        blank = self._blank
        for event in events:
            kind = type(event)
            if kind is Finding:
                assert isinstance(event, Finding)
                out.append(YearFinding(year_id, event))
                continue
            observe(event)
            if kind is Voucher:
                assert isinstance(event, Voucher)
                keys.append(f"{event.series}:{event.number}")  # voucher_key, inlined
                digest = blank.copy()  # voucher_digest, a fifth cheaper than a new one
                digest.update(event.source.encode())
                digests.append(digest.digest())
            elif kind is Balance:
                assert isinstance(event, Balance)
                self._balances.add(event)
            if include_records:
                if self._batch.full_before(event):
                    self._take(out)
                if self._batch.add(event):
                    self._take(out)
        if last:
            self._take(out)
        batch = DigestBatch(self._fingerprinted, KEY_SEPARATOR.join(keys), b"".join(digests))
        self._fingerprinted += len(keys)
        return Parsed(tuple(out), batch, self._reader.summary().vouchers)


    def _take(self, out: list[RecordBatch | EncodedRecords | YearFinding]) -> None:
        """Ends the record batch (encoded, where there is an encoder) if it holds any."""
        year_id = self._options.financial_year_id
        batch = self._batch.take(year_id, self._options.document_counts)
        if batch is not None:
            out.append(batch if self._encode is None
                       else EncodedRecords(year_id, self._encode(batch)))


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
