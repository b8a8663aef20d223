"""The parser pool with real worker processes: same results as parsing in-process, reuse,
a limit on workers, and what happens when a file is abandoned or a worker dies."""

from __future__ import annotations

import asyncio
import fcntl
import io
import os
import signal

import pytest

from adapters.sie_parsing import ProcessParsers
from adapters.sie_parsing.frames import HEADER, Kind, frame
from adapters.sie_parsing.worker import PIPE_BYTES, serve
from core.errors import SieParserFailed
from core.sie_parse import (
    READ_PIECE,
    EncodedRecords,
    Parsed,
    ParseOptions,
    YearFinding,
    YearParse,
    YearParsed,
    YearParsing,
)
from core.voucher_digest import voucher_digest, voucher_key
from server.record_wire import PARSER_RECORD_ENCODER, RecordWriter
from sie import Finding, ReadPolicy, SieReader, Voucher
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from tests.harness.processes import parser_pids
from tests.harness.sie_files import FIXTURES

#: 3 vouchers, one of them unbalanced: records, findings and digests all have content.
FILE = (FIXTURES / "sie4e_one_unbalanced.se").read_bytes()
OPTIONS = ParseOptions(financial_year_id=7, include_records=True)
CHUNK = 256  # the file spans several chunks


def chunks() -> list[bytes]:
    return [FILE[start:start + CHUNK] for start in range(0, len(FILE), CHUNK)]


def flat(parsed: list[Parsed]) -> tuple[list[object], list[tuple[str, bytes]]]:
    """Events and voucher fingerprints in order, however they were split between answers."""
    return ([e for p in parsed for e in p.events], [d for p in parsed for d in p.digests.pairs()])


def fingerprints_read_here() -> list[tuple[str, bytes]]:
    """Every voucher's key and the digest of its text, read by the reader in this process."""
    reader = SieReader(ReadPolicy(keep_voucher_source=True))
    events = [*reader.feed(FILE), *reader.close()]
    return [(voucher_key(v), voucher_digest(v.source)) for v in events if isinstance(v, Voucher)]


async def parse_all(parsing: YearParsing) -> tuple[list[Parsed], YearParsed]:
    answers = []
    for chunk in chunks():
        answers += await parsing.feed(chunk)
    rest, year = await parsing.close()
    return answers + rest, year


async def test_a_worker_gives_what_parsing_in_process_gives() -> None:
    here = YearParse(OPTIONS)
    expected = [here.feed(chunk) for chunk in chunks()]
    last, expected_year = here.close()
    pool = ProcessParsers(1)
    try:
        async with pool.parse(OPTIONS) as parsing:
            got, year = await parse_all(parsing)
    finally:
        await pool.aclose()
    assert flat(got) == flat([*expected, last])
    events, digests = flat(got)
    assert digests == fingerprints_read_here() and len(digests) == 3
    assert [p.digests.start for p in got] == [  # each batch starts where the one before ended
        sum(len(q.digests) for q in got[:i]) for i in range(len(got))]
    assert any(getattr(e, "finding", None) for e in events)
    assert got[-1].vouchers == 3
    assert year == expected_year
    assert year.read.unbalanced_vouchers == 1


async def test_a_worker_is_reused_for_the_next_file() -> None:
    pool = ProcessParsers(2)
    try:
        async with pool.parse(OPTIONS) as parsing:
            await parse_all(parsing)
        first = parser_pids()
        async with pool.parse(OPTIONS) as parsing:
            await parse_all(parsing)
        assert parser_pids() == first
        assert len(first) == 1
    finally:
        await pool.aclose()
    assert parser_pids() == set()


async def test_a_workers_pipes_hold_more_than_a_chunk_of_the_file() -> None:
    # So that a chunk is handed over whole while the worker parses the one before.
    pool = ProcessParsers(1)
    try:
        async with pool.parse(OPTIONS) as parsing:
            await parse_all(parsing)
        (pid,) = parser_pids()
        for end in ("0", "1"):  # its stdin and stdout, opened anew through /proc
            pipe = os.open(f"/proc/{pid}/fd/{end}", os.O_RDONLY | os.O_NONBLOCK)
            try:
                assert fcntl.fcntl(pipe, fcntl.F_GETPIPE_SZ) == PIPE_BYTES > 256 * 1024
            finally:
                os.close(pipe)
    finally:
        await pool.aclose()


class Abandoned(Exception):
    """The caller went away; carries the parser processes alive at that moment."""

    def __init__(self, pids: set[int]) -> None:
        super().__init__("the caller went away")
        self.pids = pids


async def abandon_after_a_chunk(pool: ProcessParsers) -> None:
    async with pool.parse(OPTIONS) as parsing:
        await parsing.feed(FILE[:CHUNK])
        raise Abandoned(parser_pids())


async def kill_the_worker_after_a_chunk(pool: ProcessParsers) -> None:
    async with pool.parse(OPTIONS) as parsing:
        await parsing.feed(FILE[:CHUNK])
        for pid in parser_pids():
            os.kill(pid, signal.SIGKILL)
        await parse_all(parsing)


async def test_an_abandoned_file_ends_its_worker_and_the_next_file_gets_a_new_one() -> None:
    pool = ProcessParsers(1)
    try:
        with pytest.raises(Abandoned) as caught:
            await abandon_after_a_chunk(pool)
        assert len(caught.value.pids) == 1
        assert parser_pids() == set()  # stopped and reaped, not left half-way through a file
        async with pool.parse(OPTIONS) as parsing:
            _, year = await parse_all(parsing)
        assert year.read.vouchers == 3
    finally:
        await pool.aclose()


async def test_a_worker_that_dies_mid_file_fails_that_file_only() -> None:
    pool = ProcessParsers(1)
    try:
        with pytest.raises(SieParserFailed) as caught:
            await kill_the_worker_after_a_chunk(pool)
        assert caught.value.reason == "SIE_PARSER_FAILED"
        assert parser_pids() == set()
        async with pool.parse(OPTIONS) as parsing:
            _, year = await parse_all(parsing)
        assert year.read.vouchers == 3
    finally:
        await pool.aclose()


async def test_files_beyond_the_pool_size_wait_for_a_worker() -> None:
    pool = ProcessParsers(1)
    second_started = asyncio.Event()

    async def second() -> YearParsed:
        async with pool.parse(OPTIONS) as parsing:
            second_started.set()
            return (await parse_all(parsing))[1]

    try:
        async with pool.parse(OPTIONS) as parsing:
            waiting = asyncio.create_task(second())
            await asyncio.sleep(1)
            assert not second_started.is_set()
            assert len(parser_pids()) == 1
            await parse_all(parsing)
        year = await asyncio.wait_for(waiting, 30)
        assert year.read.vouchers == 3
    finally:
        await pool.aclose()


def test_a_parser_that_breaks_sends_its_traceback_and_stops() -> None:
    # Bytes before any OPEN frame break the protocol: a bug, as any exception in the parser.
    source = io.BytesIO(frame(Kind.DATA, FILE[:CHUNK]) + frame(Kind.CLOSE, b""))
    sink = io.BytesIO()
    assert serve(source, sink) == 1
    answer = sink.getvalue()
    size, kind = HEADER.unpack(answer[:HEADER.size])
    assert kind == Kind.FAILED
    assert b"Traceback" in answer[HEADER.size:HEADER.size + size]
    assert len(answer) == HEADER.size + size  # nothing after it: the process ends


async def test_the_service_logs_a_broken_parsers_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = ProcessParsers(1)
    try:
        with pytest.raises(SieParserFailed):
            await parse_with_broken_options(pool)
    finally:
        await pool.aclose()
    (logged,) = [r for r in caplog.records if r.getMessage() == "the SIE parser process failed"]
    assert "Traceback" in logged.traceback


async def parse_with_broken_options(pool: ProcessParsers) -> None:
    """Options that are not ParseOptions break YearParse in the worker, as a bug would."""
    async with pool.parse(None) as parsing:  # type: ignore[arg-type]
        await parse_all(parsing)


def long_vouchers(count: int, rows: int) -> bytes:
    """A year of ``count`` vouchers of ``rows`` rows each, every row with a 200-letter text."""
    lines = ["#FLAGGA 0", "#SIETYP 4", "#RAR 0 20250101 20251231", '#KONTO 1930 "Bank"',
             '#KONTO 3010 "Sales"']
    text = "x" * 200
    for number in range(1, count + 1):
        lines += [f'#VER A {number} 20250115 "voucher {number}"', "{"]
        for row in range(rows):
            sign = "" if row % 2 else "-"
            lines.append(f'#TRANS {3010 if row % 2 else 1930} {{}} {sign}1.00 20250115 "{text}"')
        lines.append("}")
    return "\r\n".join(lines).encode("cp437")


def test_record_batches_are_cut_by_size_as_well_as_by_count() -> None:
    # About 1.6 MB of records in 80 vouchers (a batch holds up to 500), then one voucher of
    # about 0.9 MB, larger than a batch's size on its own.
    data = long_vouchers(80, 100) + b"\r\n" + long_vouchers(1, 4000).split(b"\r\n", 5)[5].replace(
        b"#VER A 1 ", b"#VER A 81 ")
    parse = YearParse(ParseOptions(7, include_records=True), RecordWriter())
    parsed = [parse.feed(data[start:start + 65536]) for start in range(0, len(data), 65536)]
    last, year = parse.close()
    assert year.read.vouchers == 81 and year.read.errors == 0
    batches = [e for p in [*parsed, last] for e in p.events if isinstance(e, EncodedRecords)]
    messages = [pb.ImportSieResponse.FromString(b.data) for b in batches]
    numbers = [v.number for m in messages for v in m.records.vouchers]
    assert numbers == [str(n) for n in range(1, 82)]  # every voucher once, in order
    sizes = [len(b.data) for b in batches]
    assert len(batches) >= 5, sizes
    # Far below the 4 MiB a client takes: a batch ends before it would hold more than 512 KiB
    # of the file's text; only a voucher larger than that makes a larger message, alone.
    assert all(size < 600_000 for size in sizes[:-1]), sizes
    assert len(messages[-1].records.vouchers) == 1 and sizes[-1] < 2 << 20


async def test_a_worker_with_an_encoder_sends_the_encoded_batches() -> None:
    here = YearParse(OPTIONS, RecordWriter())
    expected = [*(here.feed(chunk) for chunk in chunks()), here.close()[0]]
    pool = ProcessParsers(1, PARSER_RECORD_ENCODER)
    try:
        async with pool.parse(OPTIONS) as parsing:
            got, _ = await parse_all(parsing)
    finally:
        await pool.aclose()
    assert flat(got) == flat(expected)
    assert any(isinstance(e, EncodedRecords) for e in flat(got)[0])


COUNTS = {("A", 1): 2, ("A", 3): 1}


def _records_of(parsed: list[Parsed]) -> list[object]:
    return [e for p in parsed for e in p.events if not hasattr(e, "finding")]


@pytest.mark.parametrize("in_memory", [16 << 20, 64])  # held in memory; spilled to disk
@pytest.mark.parametrize("encoded", [True, False])
def test_records_held_for_counts_that_come_later_are_those_of_counts_known_at_once(
        monkeypatch: pytest.MonkeyPatch, in_memory: int, encoded: bool) -> None:
    monkeypatch.setattr("core.sie_parse.HELD_IN_MEMORY_BYTES", in_memory)
    monkeypatch.setattr("core.sie_parse.RECORD_BATCH", 1)  # a batch per voucher
    data = long_vouchers(12, 3)
    writer = RecordWriter() if encoded else None

    def parse(options: ParseOptions, counts_after: int | None) -> list[Parsed]:
        parse = YearParse(options, writer)
        parsed = []
        for index, start in enumerate(range(0, len(data), 512)):
            if index == counts_after:
                parsed += parse.counts(COUNTS)
            parsed.append(parse.feed(data[start:start + 512]))
        if counts_after is not None and counts_after >= index:
            parsed += parse.counts(COUNTS)
        return [*parsed, parse.close()[0]]

    at_once = parse(ParseOptions(7, include_records=True, document_counts=COUNTS), None)
    expected = _records_of(at_once)
    assert len(expected) == 12  # a batch per voucher (the chart goes with the first)
    for counts_after in (0, 3, 10_000):  # before the first chunk, mid-file, after the last
        later = parse(ParseOptions(7, include_records=True, counts_to_come=True), counts_after)
        assert _records_of(later) == expected
        assert flat(later)[1] == flat(at_once)[1]  # the same fingerprints


def test_held_records_without_counts_by_the_end_go_without() -> None:
    parse = YearParse(ParseOptions(7, include_records=True, counts_to_come=True),
                      RecordWriter())
    parsed = [parse.feed(chunk) for chunk in chunks()]
    assert not [e for p in parsed for e in p.events if isinstance(e, EncodedRecords)]
    last, _ = parse.close()
    batches = [e for e in last.events if isinstance(e, EncodedRecords)]
    vouchers = [v for b in batches for v in pb.ImportSieResponse.FromString(b.data)
                .records.vouchers]
    assert len(vouchers) == 3 and not any(v.HasField("document_count") for v in vouchers)


async def test_a_worker_takes_the_counts_mid_file() -> None:
    options = ParseOptions(7, include_records=True, counts_to_come=True)
    here = YearParse(options, RecordWriter())
    expected = [here.feed(chunks()[0]), *here.counts(COUNTS),
                *(here.feed(chunk) for chunk in chunks()[1:]), here.close()[0]]
    pool = ProcessParsers(1, PARSER_RECORD_ENCODER)
    try:
        async with pool.parse(options) as parsing:
            got = await parsing.feed(chunks()[0])
            async for released in parsing.counts(COUNTS):
                got += released
            for chunk in chunks()[1:]:
                got += await parsing.feed(chunk)
            rest, _ = await parsing.close()
    finally:
        await pool.aclose()
    assert flat([*got, *rest]) == flat(expected)
    counted = [v.document_count for e in flat(expected)[0] if isinstance(e, EncodedRecords)
               for v in pb.ImportSieResponse.FromString(e.data).records.vouchers]
    assert counted == [2, 0, 1]


def test_held_records_come_back_a_piece_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    data = long_vouchers(40, 4)
    monkeypatch.setattr("core.sie_parse.RECORD_BATCH", 2)
    monkeypatch.setattr("core.sie_parse.RELEASE_BYTES", 2_000)  # a piece holds about 2 batches
    here = YearParse(ParseOptions(7, include_records=True, counts_to_come=True), RecordWriter())
    for i in range(0, len(data), 4096):
        assert not [e for e in here.feed(data[i:i + 4096]).events
                    if isinstance(e, EncodedRecords)]
    pieces = list(here.counts({("A", 5): 4}))
    assert len(pieces) >= 5 and all(p.events for p in pieces)
    counts = [v.document_count for p in [*pieces, here.close()[0]] for e in p.events
              if isinstance(e, EncodedRecords)
              for v in pb.ImportSieResponse.FromString(e.data).records.vouchers]
    assert counts == [4 if n == 5 else 0 for n in range(1, 41)]


async def test_a_worker_sends_the_held_records_a_piece_at_a_time() -> None:
    """Each piece (about ``RELEASE_BYTES``) is asked for once the last is taken, so neither
    process holds a large year's records at once."""
    data = long_vouchers(600, 20)  # about 2.6 MB of records
    options = ParseOptions(7, include_records=True, counts_to_come=True)
    here = YearParse(options, RecordWriter())
    expected = [here.feed(data[i:i + 65536]) for i in range(0, len(data), 65536)]
    expected += here.counts({("A", 5): 4})
    expected.append(here.close()[0])
    pool = ProcessParsers(1, PARSER_RECORD_ENCODER)
    try:
        async with pool.parse(options) as parsing:
            got = []
            for i in range(0, len(data), 65536):
                got += await parsing.feed(data[i:i + 65536])
            released = [piece async for piece in parsing.counts({("A", 5): 4})]
            rest, _ = await parsing.close()
    finally:
        await pool.aclose()
    assert len(released) >= 2
    assert flat([*got, *(p for piece in released for p in piece), *rest]) == flat(expected)


def test_a_chunk_larger_than_a_read_piece_gives_what_the_whole_file_read_at_once_gives() -> None:
    # About 600 KB, so a 256 KiB chunk is read in pieces (READ_PIECE) cut mid-line; the texts
    # hold letters UTF-8 spells in two bytes, and one voucher is unbalanced.
    data = long_vouchers(600, 4).replace(b'"voucher 7"', "\"Försäljning öre\"".encode("cp437"))
    data = data.replace(b"#TRANS 3010 {} 1.00 20250115", b"#TRANS 3010 {} 2.00 20250115", 1)
    assert len(data) > 256 * 1024 > READ_PIECE
    reader = SieReader(ReadPolicy(keep_voucher_source=True))
    read = [*reader.feed(data), *reader.close()]
    expected = [(voucher_key(v), voucher_digest(v.source)) for v in read if isinstance(v, Voucher)]
    parse = YearParse(ParseOptions(7))
    parsed = [parse.feed(data[start:start + 256 * 1024])
              for start in range(0, len(data), 256 * 1024)]
    last, year = parse.close()
    events, digests = flat([*parsed, last])
    assert digests == expected and len(digests) == 600
    assert [e.finding for e in events if isinstance(e, YearFinding)] == [
        f for f in read if isinstance(f, Finding)]
    assert year.read.vouchers == 600 and year.read.unbalanced_vouchers == 1
    assert parsed[0].vouchers == len(parsed[0].digests) > 0  # the first chunk's, answered at once
