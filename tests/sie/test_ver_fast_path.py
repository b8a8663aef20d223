"""The `#VER` fast paths read a line exactly as the general path (tokenize, then `_on_ver`).

A lower-case `#ver` label takes the general path (the fast paths only look for `#VER `), so
each line is read both ways and the events compared: the vouchers, their rows and every
finding with its line.
"""

from __future__ import annotations

import pytest

from sie.reader import SieReader

HEAD = b'#FLAGGA 0\n#SIETYP 4\n#FNAMN "AB"\n#RAR 0 20250101 20251231\n#KONTO 1930 "Bank"\n'
ROWS = b"{\n#TRANS 1930 {} 100.00\n#TRANS 1930 {} -100.00\n}\n"

LINES = [
    b'#VER A 1 20250105 "Faktura"',
    b'#VER A 1 20250105 "Faktura" 20250106',
    b'#VER "A" "1" 20250105 "Faktura" 20250106',
    b'#VER "A" 1 20250105 "Faktura"',
    b'#VER A "1" 20250105 "Faktura"',
    b'#VER "" "" 20250105 "utan serie"',
    b'#VER "A B" 1 20250105 "serie med blanksteg"',
    b'#VER "A"1 20250105 "ihopskrivet"',
    b'#VER A 1 20250105 "Faktura \\"12\\" {x}" 20250106',
    b'#VER A 1 20250105 "{" 20250106',
    b'#VER A 1 20250105 "" 20250106 "Anna"',
    b'#VER A 1 20250105 "text" 2025010',
    b'#VER A 1 20251305 "felaktigt datum"',
    b'#VER A  1 20250105 "dubbla blanksteg"',
    b'#VER A 1 20250105  "dubbla blanksteg"',
    b'#VER A\t1 20250105 "tabb"',
    b'#VER \x84 1 20250105 "icke-ASCII serie"',
    b'#VER A 1 20250105 "oavslutad',
    b'#VER A 1 20250105 "text"x',
    b'#VER {A} 1 20250105 "klammer"',
    b'#VER "A\\" 1 20250105 "snedstreck"',
    b"#VER A 1 20250105",
]


def _read(data: bytes) -> list[str]:
    reader = SieReader()
    events = [*reader.feed(data), *reader.close()]
    return [repr(event) for event in events] + [repr(reader.summary())]


@pytest.mark.parametrize("line", LINES, ids=[line.decode("cp437") for line in LINES])
def test_a_ver_line_reads_as_the_general_path_reads_it(line: bytes) -> None:
    fast = _read(HEAD + line + b"\n" + ROWS)
    general = _read(HEAD + b"#ver" + line[4:] + b"\n" + ROWS)
    assert fast == general
