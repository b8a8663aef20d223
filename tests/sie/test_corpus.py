"""Conformance: every file of the project's fixtures and of the shared corpus against its
expectation table. The fixtures always run; the corpus runs wherever it is beside the clone."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import pytest

from sie import Severity, TextLabel, read_document
from sie.policy import ReadPolicy
from sie.reader import SieReader
from sie.records import Balance, Voucher
from tests.harness.sie_files import (
    CORPUS,
    FIXTURES,
    corpus_files,
    fixture_files,
    requires_corpus,
)
from tests.sie.corpus_expectations import EXPECTED, CorpusRow

#: The project's own files (tests/fixtures/sie/README.md says what each one is for), read
#: the same way as the corpus table: type, `#VER` records read, checksum, error codes.
FIXTURE_EXPECTED: tuple[CorpusRow, ...] = (
    ("not_sie.se", "-", 0, "absent", ("NOT_SIE",)),
    ("sie1_cp437_crlf_ksumma.se", "1", 0, "verified", ()),
    ("sie1_ksumma_bad.se", "1", 0, "mismatch", ("CHECKSUM_MISMATCH",)),
    ("sie2_lf_unbalanced_opening.se", "2", 0, "absent", ()),
    ("sie3_objects.se", "3", 0, "absent", ()),
    # Five #VER records; the one dated 20241332 is dropped with its finding.
    (
        "sie4e_broken.se",
        "4E",
        4,
        "absent",
        ("DUPLICATE_VOUCHER_NUMBER", "INVALID_AMOUNT", "INVALID_DATE", "VOUCHER_UNBALANCED"),
    ),
    ("sie4e_cp437_crlf_ksumma.se", "4E", 3, "verified", ()),
    ("sie4e_one_unbalanced.se", "4E", 3, "absent", ("VOUCHER_UNBALANCED",)),
    ("sie4e_truncated.se", "4E", 2, "mismatch", ("TRUNCATED",)),
    ("sie4e_utf8_controls_fail.se", "4E", 3, "absent", ()),
    ("sie4i_import.si", "4I", 2, "absent", ()),
    ("sie4i_with_balances.si", "4I", 1, "absent", ("FORBIDDEN_RECORD_IN_4I",)),
)

ROWS: dict[Path, CorpusRow] = {FIXTURES / row[0]: row for row in FIXTURE_EXPECTED}
ROWS |= {CORPUS / row[0]: row for row in EXPECTED}


def _cases(*, healthy: bool = False, vouchers: bool = False) -> list[object]:
    """The files (only those without errors, only those with vouchers), the corpus ones
    marked `requires_corpus`."""
    cases: list[object] = []
    for path, (name, _, count, _, codes) in ROWS.items():
        if (vouchers and not count) or (healthy and codes):
            continue
        if path.is_relative_to(FIXTURES):
            cases.append(pytest.param(path, id=f"fixtures/{name}"))
        else:
            cases.append(pytest.param(path, id=name, marks=requires_corpus))
    return cases


def test_the_table_covers_exactly_the_fixtures() -> None:
    assert {p.name for p in fixture_files()} == {row[0] for row in FIXTURE_EXPECTED}


@requires_corpus
def test_the_table_covers_exactly_the_corpus() -> None:
    on_disk = {str(p.relative_to(CORPUS)) for p in corpus_files()}
    assert on_disk == {row[0] for row in EXPECTED}


@pytest.mark.parametrize("path", _cases())
def test_file_reads_as_expected(path: Path) -> None:
    _, kind, vouchers, checksum, codes = ROWS[path]
    document = read_document(path)
    summary = document.summary
    assert summary is not None
    errors = sorted({f.code for f in document.findings if f.severity is Severity.ERROR})
    assert errors == sorted(codes)
    assert str(summary.checksum) == checksum
    assert summary.vouchers == vouchers == len(document.vouchers)
    if kind == "-":
        assert summary.sie_type is None
    else:
        assert summary.sie_type == int(kind[0])


@pytest.mark.parametrize("path", _cases(healthy=True, vouchers=True))
def test_healthy_voucher_files_balance_on_trans_rows(path: Path) -> None:
    document = read_document(path)
    assert all(v.imbalance() == 0 for v in document.vouchers)
    assert document.summary is not None and document.summary.unbalanced_vouchers == 0


def _records(data: bytes) -> list[Voucher | Balance]:
    return [
        event
        for event in read_document(data, ReadPolicy()).vouchers
        + read_document(data, ReadPolicy()).balances
    ]


@pytest.mark.parametrize("path", _cases(vouchers=True))
def test_fast_paths_agree_with_the_general_tokenizer(path: Path) -> None:
    """An opening #KSUMMA marker forces every line through the general tokenizer."""
    data = path.read_bytes()
    first_line_end = data.index(b"\n") + 1
    general = data[:first_line_end] + b"#KSUMMA\n" + data[first_line_end:]
    assert _records(general) == _records(data)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(FIXTURES / "sie4e_cp437_crlf_ksumma.se", id="fixture"),
        pytest.param(CORPUS / "byrokrat__accounting/SIE4.se", id="corpus", marks=requires_corpus),
    ],
)
def test_chunk_boundaries_do_not_change_the_result(path: Path) -> None:
    data = path.read_bytes()
    whole = read_document(data)
    for size in (1, 7, 4096):
        reader = SieReader()
        events = []
        for start in range(0, len(data), size):
            events += reader.feed(data[start : start + size])
        events += reader.close()
        vouchers = [e for e in events if isinstance(e, Voucher)]
        assert vouchers == list(whole.vouchers)
        assert [v.line for v in vouchers] == [v.line for v in whole.vouchers]
        assert str(reader.summary().checksum) == "verified"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(FIXTURES / "sie4i_import.si", "Företag 1", id="fixture"),
        pytest.param(
            CORPUS / "bufferoverflow-se__SIEPort/SIE4-sample.SE",
            "Företag",
            id="corpus",
            marks=requires_corpus,
        ),
    ],
)
def test_latin1_in_cp437_text_is_repaired_and_reported(path: Path, expected: str) -> None:
    document = read_document(path)
    assert expected in document.text(TextLabel.FNR)
    assert any(f.code == "ENCODING_REPAIRED" for f in document.findings)


def test_broken_fixture_locates_every_error() -> None:
    document = read_document(FIXTURES / "sie4e_broken.se")
    errors = {(str(f.code), f.line) for f in document.findings if f.severity is Severity.ERROR}
    assert errors == {  # the #VER line of A 2 and its repeat, the bad date, the bad amount's row
        ("VOUCHER_UNBALANCED", 25),
        ("DUPLICATE_VOUCHER_NUMBER", 30),
        ("INVALID_DATE", 35),
        ("INVALID_AMOUNT", 42),
    }


_TOKEN = re.compile(r'"((?:\\"|[^"])*)"|[{}]|([^\s{}"]+)')


def _spec_checksum(data: bytes, encoding: str) -> int:
    """sie-format.md §9 on its own: CRC-32 over the CP437 tokens between the markers."""
    crc, inside = 0, False
    for line in data.decode(encoding).splitlines():
        if line.startswith("#KSUMMA"):
            inside = not inside
        elif inside:
            for quoted, bare in _TOKEN.findall(line):
                crc = zlib.crc32((bare or quoted.replace('\\"', '"')).encode("cp437"), crc)
    return crc


@pytest.mark.parametrize("name", [r[0] for r in FIXTURE_EXPECTED if r[3] != "absent"])
def test_fixture_checksums_follow_the_spec_rule(name: str) -> None:
    """The stated sums were made by this rule, not by the reader, so "verified" is earned."""
    data = (FIXTURES / name).read_bytes()
    stated = re.findall(rb"^#KSUMMA (\d+)", data, re.MULTILINE)
    computed = _spec_checksum(data, "cp437")
    verified = ROWS[FIXTURES / name][3] == "verified"
    assert (stated == [str(computed).encode()]) is verified


def test_the_fixtures_cover_the_reader_behaviours() -> None:
    """Both encodings and line ends, every type, quotes, braces, correction rows, sums."""
    data = {p.name: p.read_bytes() for p in fixture_files()}
    summaries = [read_document(FIXTURES / name).summary for name in data]
    assert {"cp437", "utf-8"} <= {str(s.encoding) for s in summaries if s is not None}
    assert any(b"\r\n" in d for d in data.values())
    assert any(b"\n" in d and b"\r\n" not in d for d in data.values())
    assert {r[1] for r in FIXTURE_EXPECTED} >= {"1", "2", "3", "4E", "4I"}
    assert {r[3] for r in FIXTURE_EXPECTED} == {"absent", "verified", "mismatch"}
    for needle in (b'\\"', b'{6 "P1"}', b"#RTRANS", b"#BTRANS", b"#PSALDO", b"#OUB"):
        assert any(needle in d for d in data.values()), needle
