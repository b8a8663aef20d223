"""One financial year's SIE file, parsed chunk by chunk: the CPU-bound half of ImportSie.

``YearParse`` runs the reader and the year-end controls over a file as it arrives, and hands
on every voucher's fingerprint for the change comparison, in batches. Everything it returns
is plain data, so it can run in another process (``SieParsers``) while the import's own
process goes on downloading and sending: fingerprinting a voucher's text costs the parser
about what sending the text over would, and the service nothing at all.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import IO, Protocol

from core.voucher_digest import KEY_SEPARATOR, BalanceDigest, DigestBatch
from sie import (
    Account,
    Balance,
    Finding,
    ReadPolicy,
    ReadSummary,
    SieReader,
    Voucher,
)
from sie.batches import Batches, Gathered
from sie.controls import ControlFinding, ControlsResult, YearEndControls
from sie.fingerprints import Fingerprints
from sie.records import Event as SieEvent

#: Parsed records are sent in batches of at most this many vouchers (4 balances a voucher)...
RECORD_BATCH = 500
#: ...and of about this many bytes of the file at most, so that a year of long vouchers cannot
#: make a message a caller refuses (gRPC clients take 4 MiB by default; a record's message is
#: about the size of its lines, a voucher being at most one message however long it is).
RECORD_BATCH_BYTES = 512 * 1024
#: What a record of the file counts for, beside its text, in ``RECORD_BATCH_BYTES``.
_RECORD_OVERHEAD = 64
#: Record batches waiting for their vouchers' document counts are kept in memory up to this
#: many bytes, and beyond on disk (a very large year's whole records may wait)...
HELD_IN_MEMORY_BYTES = 16 << 20
#: ...and once the counts come, handed on in pieces of about this many bytes.
RELEASE_BYTES = 1 << 20
#: The reader is handed a chunk this much at a time, each piece's records taken (controls,
#: fingerprints) before the next is read: a 256 KiB chunk's records at once (some 2.5 MB of
#: objects) outgrow the CPU's caches, and the parser spent about a tenth more time on the
#: same instructions.
READ_PIECE = 32 * 1024


@dataclass(frozen=True)
class ParseOptions:
    """How a year's file is read, and whether its records go to the caller."""

    financial_year_id: int
    allow_unbalanced: bool = False
    include_records: bool = False
    #: Documents Fortnox has connected to each voucher (series, number), for the records
    #: (``None``: not known, the records say nothing of them).
    document_counts: Mapping[tuple[str, int], int] | None = None
    #: Whether the counts come later (``YearParse.counts``): record batches are held until
    #: they do, while the file is read on.
    counts_to_come: bool = False


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


class RecordEncoder(Protocol):
    """Encodes record batches as the caller's messages, in the parser process. A batch is
    encoded in parts (each voucher apart) so that its vouchers' document counts can be added
    once they are known, without encoding it again."""

    def parts(self, batch: RecordBatch) -> tuple[bytes, list[bytes]]:
        """The batch but its vouchers, and each voucher without its document count."""
        ...

    def message(self, head: bytes, vouchers: Sequence[bytes],
                counts: Sequence[int] | None) -> bytes:
        """The batch's whole message from its parts, each voucher with its count (``None``:
        not known)."""
        ...

    def __call__(self, batch: RecordBatch) -> bytes:
        """The batch's whole message, with the counts it holds."""
        ...


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


def _counts(document_counts: Mapping[tuple[str, int], int],
            vouchers: Iterable[tuple[str, str]], size: int) -> tuple[int, ...]:
    """Each of the ``size`` vouchers' (series, number) number of documents; one numbered
    otherwise has none (as has every one, at once, when no voucher has any)."""
    if not document_counts:
        return (0,) * size
    return tuple(document_counts.get((series, int(number)), 0) if number.isdigit() else 0
                 for series, number in vouchers)


class _Held:
    """Encoded record batches waiting for their vouchers' document counts: the bytes in a
    spool (memory, then disk), each batch's sizes and voucher keys beside."""

    def __init__(self) -> None:
        self._spool: IO[bytes] | None = None
        self._index: list[tuple[int, list[int], str]] = []  # head, voucher sizes, keys

    def __bool__(self) -> bool:
        return bool(self._index)

    def add(self, head: bytes, vouchers: list[bytes], keys: Iterable[tuple[str, str]]) -> None:
        if self._spool is None:
            self._spool = tempfile.SpooledTemporaryFile(HELD_IN_MEMORY_BYTES)  # noqa: SIM115 (closed by release)
        self._spool.write(head)
        self._spool.write(b"".join(vouchers))
        self._index.append((len(head), [len(v) for v in vouchers],
                            "\n".join(f"{s}\x1f{n}" for s, n in keys)))

    def release(self, encoder: RecordEncoder,
                document_counts: Mapping[tuple[str, int], int] | None) -> Iterator[bytes]:
        """Every held batch as its whole message, in the order they came."""
        if self._spool is None:
            return
        spool, index = self._spool, self._index
        self._spool, self._index = None, []
        with spool:
            spool.seek(0)
            for head_size, sizes, keys in index:
                head = spool.read(head_size)
                data = memoryview(spool.read(sum(sizes)))
                vouchers, at = [], 0
                for size in sizes:
                    vouchers.append(bytes(data[at:at + size]))
                    at += size
                counts = None if document_counts is None or not sizes else _counts(
                    document_counts, ((series, number) for series, _, number
                                      in (key.partition("\x1f") for key in keys.split("\n"))),
                    len(sizes))
                yield encoder.message(head, vouchers, counts)


class YearParse:
    """Reads one year's file: feed it every chunk, then close it."""

    def __init__(self, options: ParseOptions, encode: RecordEncoder | None = None) -> None:
        self._options = options
        self._encode = encode
        self._reader = SieReader(ReadPolicy(allow_unbalanced=options.allow_unbalanced,
                                            keep_voucher_source=True))
        self._controls = YearEndControls()
        self._balances = BalanceDigest()
        self._batches = Batches(RECORD_BATCH, 4 * RECORD_BATCH, RECORD_BATCH_BYTES,
                                _RECORD_OVERHEAD, keep_source=encode is not None)
        self._document_counts = options.document_counts
        self._waiting = options.include_records and options.counts_to_come
        self._held = _Held()  # encoded batches waiting for counts
        self._held_batches: list[RecordBatch] = []  # the same, where nothing encodes them
        self._fingerprinted = 0
        self._fingerprints = Fingerprints()

    def feed(self, chunk: bytes) -> Parsed:
        """Reads a chunk; returns what it completed."""
        return self._consume(self._read(chunk), last=False)

    def _read(self, chunk: bytes) -> Iterator[list[SieEvent]]:
        """The chunk's records, read ``READ_PIECE`` at a time, each piece's taken before the
        next is read."""
        read = self._reader.feed
        if len(chunk) <= READ_PIECE:
            yield read(chunk)
            return
        for at in range(0, len(chunk), READ_PIECE):
            yield read(chunk[at:at + READ_PIECE])

    def counts(self, document_counts: Mapping[tuple[str, int], int] | None
               ) -> Iterator[Parsed]:
        """Takes the vouchers' document counts (``None``: they cannot be known) that
        ``ParseOptions.counts_to_come`` promised; yields the record batches held for them, in
        pieces of about ``RELEASE_BYTES`` (at least one piece)."""
        self._document_counts, self._waiting = document_counts, False
        year_id = self._options.financial_year_id
        piece: list[RecordBatch | EncodedRecords | YearFinding] = []
        size = 0
        if self._encode is not None:
            for message in self._held.release(self._encode, document_counts):
                piece.append(EncodedRecords(year_id, message))
                size += len(message)
                if size >= RELEASE_BYTES:
                    yield self._piece(piece)
                    piece, size = [], 0
        for batch in self._held_batches:
            piece.append(replace(batch, document_counts=None if document_counts is None
                                 else _counts(document_counts,
                                              ((v.series, v.number) for v in batch.vouchers),
                                              len(batch.vouchers))))
        self._held_batches = []
        yield self._piece(piece)

    def _piece(self, events: list[RecordBatch | EncodedRecords | YearFinding]) -> Parsed:
        return Parsed(tuple(events), DigestBatch(self._fingerprinted, "", b""),
                      self._reader.summary().vouchers)

    def close(self) -> tuple[Parsed, YearParsed]:
        """Reads the end of the file; returns what it completed and the year's result (with
        counts still to come, the records held for them go without: ``counts`` comes first)."""
        parsed = self._consume((self._reader.close(),), last=True)
        if self._waiting:
            held = tuple(e for piece in self.counts(None) for e in piece.events)
            parsed = replace(parsed, events=held + parsed.events)
        year = YearParsed(self._reader.summary(), self._controls.finish(),
                          self._balances.digest())
        return parsed, year

    def _consume(self, pieces: Iterable[list[SieEvent]], *, last: bool) -> Parsed:
        """What the pieces' records complete. Controls and fingerprints take each piece
        whole, compiled: no Python loop per voucher."""
        out: list[RecordBatch | EncodedRecords | YearFinding] = []
        observe, fingerprint = self._controls.feed, self._fingerprints.add
        include_records = self._options.include_records
        for events in pieces:
            observe(events)
            if fingerprint(events) or include_records:  # findings, balances or records
                self._others(events, out)
        if last:
            self._take(self._batches.take(), out)
        keys, digests = self._fingerprints.take()
        fingerprints = DigestBatch(self._fingerprinted, KEY_SEPARATOR.join(keys),
                                   b"".join(digests))
        self._fingerprinted += len(keys)
        return Parsed(tuple(out), fingerprints, self._reader.summary().vouchers)

    def _others(self, events: list[SieEvent],
                out: list[RecordBatch | EncodedRecords | YearFinding]) -> None:
        """The piece's findings and balances, and its record batches where they are asked
        for."""
        year_id = self._options.financial_year_id
        for item in self._batches.add(events, self._options.include_records):
            if isinstance(item, Finding):
                out.append(YearFinding(year_id, item))
            elif isinstance(item, Balance):
                self._balances.add(item)
            else:
                self._take(item, out)

    def _take(self, gathered: Gathered,
              out: list[RecordBatch | EncodedRecords | YearFinding]) -> None:
        """Ends a record batch (encoded, where there is an encoder) if it holds any."""
        accounts, balances, vouchers = gathered
        if not (accounts or balances or vouchers):
            return
        year_id = self._options.financial_year_id
        counts = None if self._waiting or self._document_counts is None else _counts(
            self._document_counts, ((v.series, v.number) for v in vouchers), len(vouchers))
        batch = RecordBatch(year_id, tuple(accounts), tuple(balances), tuple(vouchers), counts)
        if not self._waiting:
            out.append(batch if self._encode is None
                       else EncodedRecords(year_id, self._encode(batch)))
        elif self._encode is None:
            self._held_batches.append(batch)
        else:
            self._held.add(*self._encode.parts(batch),
                           ((v.series, v.number) for v in batch.vouchers))


class YearParsing(Protocol):
    """A year's file being parsed elsewhere (another process).

    ``feed`` hands a chunk over and returns at once with whatever earlier chunks have
    produced meanwhile, so downloading and parsing overlap.
    """

    async def feed(self, chunk: bytes) -> list[Parsed]:
        """Hands a chunk over (waiting only while the parser is too far behind)."""
        ...

    def counts(self, document_counts: Mapping[tuple[str, int], int] | None
               ) -> AsyncIterator[list[Parsed]]:
        """Hands over the vouchers' document counts (``YearParse.counts``); yields what
        earlier chunks produced meanwhile, then the records held for the counts, a piece at a
        time (the next is asked for once the caller took the last)."""
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
