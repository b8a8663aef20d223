"""Line endings: CRLF, LF and lone CR each end a line, and nothing else does.

The reader splits a block of CRLF lines without first copying it to LF; whatever a file's
endings, it must read exactly as the same file with every ending written as LF.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from sie.reader import SieReader

HEAD = [
    b"#FLAGGA 0",
    b"#SIETYP 4",
    b'#PROGRAM "Fortnox" 3.60',
    b'#FNAMN "Bolaget \x94st AB"',  # CP437: a non-ASCII block, read as CP437
    b"#RAR 0 20250101 20251231",
    b'#KONTO 1930 "F\x94retagskonto"',
    b'#KONTO 3001 "F\x94rs\x84ljning"',
]
VOUCHER = [
    b'#VER A 1 20250105 "Faktura \\"1\\"" 20250106',
    b"{",
    b'#TRANS 1930 {} 100.50 "" "" 0',
    b'#TRANS 3001 {} -100.5 "" "" 0',
    b"}",
]


def _read(data: bytes, chunk: int) -> list[str]:
    reader = SieReader()
    events: list[str] = []
    for start in range(0, len(data), chunk):
        events += map(repr, reader.feed(data[start : start + chunk]))
    events += map(repr, reader.close())
    events.append(repr(replace(reader.summary(), bytes_read=0)))  # LF makes fewer bytes
    return events


def _as_lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _file(endings: list[bytes], extra: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    lines = HEAD + VOUCHER + list(extra) + VOUCHER[:1] + [b"#VER A 2 20250107 \"x\""] + VOUCHER[1:]
    return b"".join(line + endings[i % len(endings)] for i, line in enumerate(lines))


CASES = {
    "crlf": _file([b"\r\n"]),
    "crlf, no final newline": _file([b"\r\n"])[:-2],
    "crlf, blank lines at the end": _file([b"\r\n"]) + b"\r\n\r\n",
    "crlf and lf mixed": _file([b"\r\n", b"\n"]),
    "lone cr": _file([b"\r"]),
    "crlf and lone cr": _file([b"\r\n", b"\r\n", b"\r"]),
    "cr cr lf": _file([b"\r\n", b"\r\r\n"]),
    "crlf, form feed and file separator inside lines": _file(
        [b"\r\n"], [b'#VER B 1 20250105 "a\x0cb\x1cc"', b"{", b"#TRANS 1930 {} 0", b"}"]
    ),
    "crlf, vertical tab between fields": _file([b"\r\n"], [b"#KONTO 1510\x0b\"Kund\""]),
}


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 16])
@pytest.mark.parametrize("name", list(CASES))
def test_a_file_reads_as_its_lf_twin(name: str, chunk: int) -> None:
    data = CASES[name]
    expected = _read(_as_lf(data), 1 << 16)
    assert any("Voucher(" in event for event in expected)
    assert _read(data, chunk) == expected
