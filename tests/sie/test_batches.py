"""`Batches` (compiled with the reader) gathers a year's records into batches cut by count and
by size, and hands on findings and balances in the order the file has them."""

from __future__ import annotations

from sie.batches import Batches, Gathered
from sie.findings import Finding
from sie.policy import ReadPolicy
from sie.reader import SieReader
from sie.records import Balance, Event, Voucher

HEAD = (
    '#FLAGGA 0\n#PROGRAM "Kassa" 1\n#FORMAT PC8\n#GEN 20260110\n#SIETYP 4\n'
    '#FNAMN "Butiken AB"\n#RAR 0 20250101 20251231\n'
    '#KONTO 1910 "Kassa"\n#KONTO 3001 "Försäljning"\n'
    '#IB 0 1910 100.00\n#UB 0 1910 350.00\n'
)


def _voucher(number: int, text: str = "Dagskassa") -> str:
    return (f'#VER A {number} 20251231 "{text}"\n{{\n#TRANS 3001 {{}} -125.00\n'
            f'#TRANS 1910 {{}} 125.00\n}}\n')


def _events(text: str) -> list[Event]:
    reader = SieReader(ReadPolicy(keep_voucher_source=True))
    return [*reader.feed(text.encode("cp437")), *reader.close()]


def _batches(out: list[Finding | Balance | Gathered]) -> list[Gathered]:
    return [item for item in out if type(item) is tuple]


def test_batches_are_cut_by_count_and_the_rest_is_taken_at_the_end() -> None:
    events = _events(HEAD + "".join(_voucher(n) for n in range(1, 8)))
    batches = Batches(3, 100, 1 << 20, 64, keep_source=False)
    full = _batches(batches.add(events, True))
    rest = batches.take()
    assert [len(vouchers) for _, _, vouchers in [*full, rest]] == [3, 3, 1]
    assert [v.number for *_, vouchers in [*full, rest] for v in vouchers] == [
        str(n) for n in range(1, 8)]
    accounts, balances, _ = full[0]
    assert [a.number for a in accounts] == ["1910", "3001"]
    assert [b.amount for b in balances] == [100, 350]
    assert all(v.source == "" for *_, vouchers in full for v in vouchers)
    assert batches.take() == ([], [], [])


def test_a_batch_ends_before_a_record_that_would_take_it_over_the_size() -> None:
    long_text = "x" * 150
    events = [e for e in _events(HEAD + "".join(_voucher(n, long_text) for n in range(1, 6)))
              if type(e) is Voucher]
    size = 64 + len(events[0].source)
    batches = Batches(500, 2000, 2 * size + 10, 64, keep_source=True)
    full = _batches(batches.add(events, True))
    assert [len(vouchers) for *_, vouchers in [*full, batches.take()]] == [2, 2, 1]
    assert full[0][2][0].source == events[0].source  # kept for an encoder


def test_one_record_longer_than_the_size_is_a_batch_of_its_own() -> None:
    events = [e for e in _events(HEAD + _voucher(1) + _voucher(2, "y" * 400) + _voucher(3))
              if type(e) is Voucher]
    batches = Batches(500, 2000, 300, 64, keep_source=False)
    full = _batches(batches.add(events, True))
    assert [[v.number for v in vouchers] for *_, vouchers in [*full, batches.take()]] == [
        ["1"], ["2"], ["3"]]


def test_findings_and_balances_come_in_the_files_order_with_records_or_without() -> None:
    text = HEAD + _voucher(1) + "#TRANS 1910 {} 1.00\n" + _voucher(2)  # a row outside a voucher
    events = _events(text)
    for records in (False, True):
        out = Batches(500, 2000, 1 << 20, 64, keep_source=False).add(events, records)
        others = [item for item in out if type(item) is not tuple]
        assert [type(item) for item in others] == [
            type(e) for e in events if isinstance(e, Finding | Balance)]
        assert any(isinstance(item, Finding) for item in others)
        assert others == [e for e in events if isinstance(e, Finding | Balance)]
        assert _batches(out) == []  # none full: without records, none at all
