"""The record batches the parser processes write by hand (``server.record_wire``) are, byte for
byte, what protobuf's own messages built field by field serialise to; a document count added
to a voucher written without one is the same as one set from the start. Each test runs on the
module as `make install` compiled it (mypyc) and on its source."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from core.sie_parse import ParseOptions, RecordBatch, YearParse
from sandbox.options import SandboxOptions
from sandbox.seed import build_all
from sandbox.sie_export import SieExport
from server import native, record_wire
from server.rpc_sie import _records
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from tests.harness.sie_files import fixture_files

#: What a year may hold that the fixtures do not: amounts beyond 2^28 öre both ways, more than
#: two decimals, row dates and texts, objects, a previous year's balances, periods, no texts.
EDGES = "\r\n".join([
    "#FLAGGA 0", "#SIETYP 4", "#RAR 0 20250101 20251231", "#RAR -1 20240101 20241231",
    '#KONTO 1930 "Bank"', '#KONTO 3010 "Försäljning åäö"', '#KONTO 4010 ""',
    '#DIM 1 "Kostnadsställe"', '#OBJEKT 1 "10" "Syd"', '#DIM 6 "Projekt"',
    '#OBJEKT 6 "P1" "Bygget"',
    "#IB -1 1930 -123456789.99", "#UB 0 1930 987654321.01", "#RES 0 3010 0.00",
    "#OIB 0 1930 {1 \"10\"} 12.5", '#PSALDO 0 202503 3010 {1 "10" 6 "P1"} -1234.56',
    "#PSALDO -1 202412 1930 {} 0.005",
    '#VER A 1 20250115 "Stor affär" 20250116', "{",
    '#TRANS 1930 {} 9999999999.99 20250114 "rad text ÅÄÖ"',
    '#TRANS 3010 {1 "10" 6 "P1"} -9999999999.99',
    "}",
    '#VER A 2 20250116 ""', "{",
    "#TRANS 1930 {} 0.125", "#TRANS 3010 {} -0.125",
    '#RTRANS 4010 {} 1.00 20250117 "tillagd"', "#TRANS 4010 {} 1.00",
    "#BTRANS 4010 {} 1.00", "#TRANS 1930 {} -1.00",
    "}",
    "#VER B 3 20250117", "{", "#TRANS 1930 {} 0.00", "#TRANS 3010 {} 0.00", "}",
    "#VER B X1 20250118", "{", "#TRANS 1930 {} 5", "#TRANS 3010 {} -5", "}",
]).encode("cp437") + b"\r\n"


def _sandbox_year() -> bytes:
    books = build_all(SandboxOptions(seed="default", vouchers_per_year=60))[0]
    year = books.tenant.years[1]
    return b"".join(SieExport(books, year, 4, year.to_date, 65536).chunks())


def _batches(data: bytes, counts: Counter[tuple[str, int]] | None) -> list[RecordBatch]:
    parse = YearParse(ParseOptions(7, allow_unbalanced=True, include_records=True,
                                   document_counts=counts))
    parsed = [parse.feed(data[i:i + 4096]) for i in range(0, len(data), 4096)]
    parsed.append(parse.close()[0])
    return [e for p in parsed for e in p.events if isinstance(e, RecordBatch)]


def _source() -> ModuleType:
    """``server.record_wire`` run from its source, beside the compiled module."""
    spec = importlib.util.spec_from_file_location(
        "record_wire_source", Path(native.__file__).with_name("record_wire.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["compiled", "source"])
def wire(request: pytest.FixtureRequest) -> ModuleType:
    """The record writer's module, compiled or from its source."""
    if request.param == "source":
        return _source()
    if not native.active():
        pytest.skip("the record writer is not compiled (SIE_PURE_PYTHON=1, or no C compiler "
                    "at make install)")
    assert record_wire.__file__ is not None and not record_wire.__file__.endswith(".py")
    return record_wire


FILES = {path.name: path.read_bytes() for path in fixture_files()} | {
    "edges": EDGES, "sandbox": _sandbox_year()}


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("counts", [None, Counter({("A", 1): 3, ("A", 2): 200, ("B", 3): 0})])
def test_a_batch_is_written_as_protobuf_writes_it(
        wire: ModuleType, name: str, counts: Counter[tuple[str, int]] | None) -> None:
    batches = _batches(FILES[name], counts)
    writer = wire.RecordWriter()
    for batch in batches:
        expected = pb.ImportSieResponse(records=_records(batch)).SerializeToString()
        assert writer(batch) == expected
        assert writer(batch) == expected  # again, from what it kept
    if name == "edges":
        vouchers = [v for b in batches for v in b.vouchers]
        assert len(vouchers) == 4 and any(b.balances for b in batches)


def test_a_count_added_later_is_the_count_set_at_once(wire: ModuleType) -> None:
    writer = wire.RecordWriter()
    counts = Counter({("A", 1): 1, ("A", 2): 130})
    (batch,) = _batches(EDGES, None)
    head, vouchers = writer.parts(batch)
    later = writer.message(head, vouchers, [1, 130, 0, 0])
    (at_once,) = _batches(EDGES, counts)
    assert later == writer(at_once)
    decoded = pb.ImportSieResponse.FromString(later).records.vouchers
    assert [(v.HasField("document_count"), v.document_count) for v in decoded] == [
        (True, 1), (True, 130), (True, 0), (True, 0)]
    unknown = pb.ImportSieResponse.FromString(writer.message(head, vouchers, None))
    assert not any(v.HasField("document_count") for v in unknown.records.vouchers)


@pytest.mark.parametrize("value", [1, 127, 128, 16383, 16384, 2**21, 2**28 - 1, 2**28,
                                   2**63 - 1, -1, -128, -(2**14), -(2**14) - 1, -(2**21) - 7,
                                   -(2**28) + 1, -(2**28), -(2**28) - 1, -(2**63)])
def test_varints_are_protobufs(wire: ModuleType, value: int) -> None:
    varint = wire.varint
    message = pb.ImportSieResponse()
    message.records.financial_year_id = value
    assert message.SerializeToString() == b"\x1a" + varint(len(varint(value)) + 1) + b"\x08" + (
        varint(value))
