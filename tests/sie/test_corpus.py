"""Conformance: every file of the shared corpus against the expectation table."""

from __future__ import annotations

import pytest

from sie import Severity, TextLabel, read_document
from sie.policy import ReadPolicy
from sie.reader import SieReader
from sie.records import Balance, Voucher
from tests.sie.conftest import CORPUS, corpus_files
from tests.sie.corpus_expectations import EXPECTED

ROWS = {row[0]: row for row in EXPECTED}


def test_the_table_covers_exactly_the_corpus() -> None:
    on_disk = {str(p.relative_to(CORPUS)) for p in corpus_files()}
    assert on_disk == set(ROWS)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_file_reads_as_expected(name: str) -> None:
    _, kind, vouchers, checksum, codes = ROWS[name]
    document = read_document(CORPUS / name)
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


@pytest.mark.parametrize("name", sorted(n for n, r in ROWS.items() if r[2] and not r[4]))
def test_healthy_voucher_files_balance_on_trans_rows(name: str) -> None:
    document = read_document(CORPUS / name)
    assert all(v.imbalance() == 0 for v in document.vouchers)
    assert document.summary is not None and document.summary.unbalanced_vouchers == 0


def _records(data: bytes) -> list[Voucher | Balance]:
    return [
        event
        for event in read_document(data, ReadPolicy()).vouchers
        + read_document(data, ReadPolicy()).balances
    ]


@pytest.mark.parametrize("name", sorted(n for n, r in ROWS.items() if r[2]))
def test_fast_paths_agree_with_the_general_tokenizer(name: str) -> None:
    """An opening #KSUMMA marker forces every line through the general tokenizer."""
    data = (CORPUS / name).read_bytes()
    first_line_end = data.index(b"\n") + 1
    general = data[:first_line_end] + b"#KSUMMA\n" + data[first_line_end:]
    assert _records(general) == _records(data)


def test_chunk_boundaries_do_not_change_the_result() -> None:
    data = (CORPUS / "byrokrat__accounting/SIE4.se").read_bytes()
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


def test_official_sample_is_repaired_and_reported() -> None:
    document = read_document(CORPUS / "bufferoverflow-se__SIEPort/SIE4-sample.SE")
    assert "Företag" in document.text(TextLabel.FNR)
    assert any(f.code == "ENCODING_REPAIRED" for f in document.findings)
