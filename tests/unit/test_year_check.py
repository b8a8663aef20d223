"""The check of a downloaded file's head (``core.sie_import._YearCheck``), fed as Fortnox's
download hands it over: in one large chunk, the check reads only as far as the head goes
(``YEAR_CHECK_STEP`` at a time), and a head that runs past a step is still read whole."""

from __future__ import annotations

from datetime import date

import pytest

from core.errors import SieInvalid
from core.fortnox_api import FinancialYear
from core.sie_import import YEAR_CHECK_BYTES, YEAR_CHECK_STEP, _YearCheck

YEAR = FinancialYear(6, date(2026, 1, 1), date(2026, 12, 31), "BAS 2024", "ACCRUAL")
ORG = "556677-8899"


def _file(*, rar: int = 2026, padding: int = 0, vouchers: int = 2000) -> bytes:
    """A SIE 4 file whose head (``padding`` bytes of #ADRESS before ``#RAR 0``) is followed
    by ``vouchers`` vouchers."""
    lines = ["#FLAGGA 0", "#SIETYP 4", f'#ADRESS "{"x" * padding}"',
             f"#RAR 0 {rar}0101 {rar}1231", f"#ORGNR {ORG}", '#KONTO 1910 "Kassa"']
    for number in range(1, vouchers + 1):
        lines += [f'#VER A {number} 20260115 "Sale {number}"', "{",
                  "#TRANS 1910 {} 100.00", "#TRANS 3000 {} -100.00", "}"]
    return ("\r\n".join(lines) + "\r\n").encode("cp437")


def test_a_large_chunk_is_read_only_as_far_as_the_head() -> None:
    data = _file()
    assert len(data) > YEAR_CHECK_BYTES
    check = _YearCheck(YEAR, ORG)
    check.feed(data[:YEAR_CHECK_BYTES])
    assert check.done and check.seen == YEAR_CHECK_STEP


def test_a_head_past_the_first_step_is_read_whole() -> None:
    check = _YearCheck(YEAR, ORG)
    with pytest.raises(SieInvalid) as raised:
        check.feed(_file(rar=2025, padding=3 * YEAR_CHECK_STEP)[:YEAR_CHECK_BYTES])
    assert raised.value.reason == "SIE_YEAR_MISMATCH"
    assert check.seen == 4 * YEAR_CHECK_STEP


def test_a_file_ending_within_a_step_is_checked_at_its_end() -> None:
    check = _YearCheck(YEAR, ORG)
    check.feed(b"#FLAGGA 0\r\n#SIETYP 4\r\n")
    assert not check.done
    check.feed(b"", last=True)
    assert check.done


def test_a_file_ending_in_its_last_chunk_without_the_mark_is_no_sie() -> None:
    check = _YearCheck(YEAR, ORG)
    with pytest.raises(SieInvalid) as raised:
        check.feed(b'#KONTO 1910 "Kassa"\r\n' * 1000, last=True)
    assert raised.value.reason == "SIE_NOT_SIE"
