"""ImportSie's record batches stay well within a gRPC message a client takes (4 MiB), however
many rows the file's vouchers have."""

from __future__ import annotations

from core.sie_parse import ParseOptions, RecordBatch, YearParse
from server.rpc_sie import _records

HEAD = (
    '#FLAGGA 0\r\n#PROGRAM "Kassa" 1\r\n#FORMAT PC8\r\n#GEN 20260110\r\n#SIETYP 4\r\n'
    '#FNAMN "Butiken AB"\r\n#RAR 0 20250101 20251231\r\n'
    '#KONTO 1910 "Kassa"\r\n#KONTO 3001 "Försäljning"\r\n'
)


def _file(vouchers: int, rows: int, text: str) -> bytes:
    """A CP437 file of ``vouchers`` daily sales vouchers of ``rows`` rows each."""
    parts = [HEAD]
    for n in range(1, vouchers + 1):
        lines = [f'#TRANS 3001 {{6 "P{n % 7}"}} -125.50 20251231 "{text} {k}"\r\n'
                 for k in range(rows - 1)]
        lines.append(f'#TRANS 1910 {{}} {125.5 * (rows - 1):.2f}\r\n')
        parts.append(f'#VER A {n} 20251231 "Dagskassa {n}"\r\n{{\r\n{"".join(lines)}}}\r\n')
    return "".join(parts).encode("cp437")


def _batches(data: bytes) -> list[RecordBatch]:
    parse = YearParse(ParseOptions(1, include_records=True))
    events = []
    for start in range(0, len(data), 256 * 1024):
        events += parse.feed(data[start:start + 256 * 1024]).events
    events += parse.close()[0].events
    return [e for e in events if isinstance(e, RecordBatch)]


def test_vouchers_of_many_rows_are_sent_in_batches_a_client_takes() -> None:
    batches = _batches(_file(500, 300, "Försäljning kassa ░▒▓"))
    sizes = [_records(b).ByteSize() for b in batches]
    assert sum(len(b.vouchers) for b in batches) == 500
    assert sum(sizes) > 5 * 1024 * 1024  # in one batch, as before, more than a client takes
    assert max(sizes) <= 1.5 * 1024 * 1024


def test_small_vouchers_still_go_500_to_a_batch() -> None:
    batches = _batches(_file(1200, 2, "x"))
    assert [len(b.vouchers) for b in batches] == [500, 500, 200]
