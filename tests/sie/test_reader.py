"""Reader behaviour on small hand-written inputs, one rule per test."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from sie import (
    Balance,
    BalanceKind,
    ReadPolicy,
    RowKind,
    Severity,
    SieDocument,
    SieReader,
    Variant,
    Voucher,
    read_document,
)
from sie.numbering import VoucherNumbers
from sie.tokens import tokenize

HEAD = (
    '#FLAGGA 0\n#PROGRAM "Test" 1.0\n#FORMAT PC8\n#GEN 20250101\n#SIETYP 4\n'
    '#FNAMN "Bolaget AB"\n#RAR 0 20250101 20251231\n#KONTO 1930 "Bank"\n#KONTO 3001 "Sales"\n'
)


def doc(body: str, policy: ReadPolicy | None = None, head: str = HEAD) -> SieDocument:
    return read_document((head + body).encode("cp437"), policy)


def codes(document: SieDocument) -> list[str]:
    return [f.code for f in document.findings]


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ('#TRANS 3001 {6 "P1040"} -239282.5 "" "" 0',
         ["#TRANS", "3001", ("6", "P1040"), "-239282.5", "", "", "0"]),
        ("#TRANS\t1910\t{6\t\"VERK\"}\t5", ["#TRANS", "1910", ("6", "VERK"), "5"]),
        ('#PROGRAM "\\"Norstedts\\"" 2', ["#PROGRAM", '"Norstedts"', "2"]),
        ('#FNR "C:\\Data\\F"', ["#FNR", "C:\\Data\\F"]),
        ('#X {1 "4 5"}7 "{"', ["#X", ("1", "4 5"), "7", "{"]),
        ('#VER "" "" 20251216', ["#VER", "", "", "20251216"]),
        ('#X "open ended', ["#X", "open ended"]),
        ("#KONTO 1060 Hyresr\u00e4tt\u00a0x", ["#KONTO", "1060", "Hyresr\u00e4tt\u00a0x"]),
    ],
)  # fmt: skip
def test_tokenizer(line: str, fields: list[object]) -> None:
    assert tokenize(line) == fields


def test_voucher_record_is_typed_and_exact() -> None:
    d = doc(
        '#VER A 7 20250301 "Sale \\"X\\"" 20250302 "anna"\n{\n'
        '#TRANS 1930 {} 1250.5\n#TRANS 3001 {6 "P1" 1 "K"} -1250.50 20250303 "row" 2 "bo"\n}\n'
    )
    (voucher,) = d.vouchers
    assert voucher == Voucher(
        "A", "7", date(2025, 3, 1),
        (
            voucher.rows[0]._replace(line=0),
            voucher.rows[1]._replace(line=0),
        ),
        'Sale "X"', date(2025, 3, 2), "anna",
    )  # fmt: skip
    first, second = voucher.rows
    assert (first.amount, first.objects, first.date) == (Decimal("1250.5"), (), None)
    assert second.objects == (("6", "P1"), ("1", "K"))
    assert (second.date, second.text, second.quantity, second.sign) == (
        date(2025, 3, 3), "row", Decimal(2), "bo",
    )  # fmt: skip
    assert (voucher.line, first.line, second.line, voucher.year) == (10, 12, 13, 0)
    assert d.findings == ()


def test_rtrans_and_btrans_are_history_not_balance() -> None:
    d = doc(
        '#VER A 1 20250301\n{\n#TRANS 1930 {} 100\n#BTRANS 3001 {} -90 "" "" 0 "U"\n'
        '#RTRANS 3001 {} -100 "" "" 0 "U"\n#TRANS 3001 {} -100\n}\n'
    )
    (voucher,) = d.vouchers
    assert [r.kind for r in voucher.rows] == [
        RowKind.TRANS, RowKind.BTRANS, RowKind.RTRANS, RowKind.TRANS,
    ]  # fmt: skip
    assert voucher.imbalance() == 0
    assert len(voucher.transactions) == 2
    assert d.summary is not None and d.summary.transactions == 2
    assert "VOUCHER_UNBALANCED" not in codes(d)


def test_unbalanced_voucher_is_an_error_unless_policy_allows() -> None:
    body = "#VER A 1 20250301\n{\n#TRANS 1930 {} 100\n#TRANS 3001 {} -60\n}\n"
    strict = doc(body)
    (finding,) = strict.findings
    assert (finding.code, finding.severity, finding.line) == (
        "VOUCHER_UNBALANCED", Severity.ERROR, 10,
    )  # fmt: skip
    assert "40" in finding.message
    lenient = doc(body, ReadPolicy(allow_unbalanced=True))
    assert [f.severity for f in lenient.findings] == [Severity.WARNING]
    assert lenient.summary is not None and lenient.summary.unbalanced_vouchers == 1


@pytest.mark.parametrize(
    ("body", "code", "line"),
    [
        ("#VER A 1 20250229\n{\n}\n", "INVALID_DATE", 10),
        ("#VER A 1 2025-03-01\n{\n}\n", "INVALID_DATE", 10),
        ("#VER A 1 20260101\n{\n}\n", "VOUCHER_DATE_OUTSIDE_YEARS", 10),
        ("#VER A 1 20250101\n{\n#TRANS 1930 {} 1,5\n}\n", "INVALID_AMOUNT", 12),
        ("#VER A 1 20250101\n{\n#TRANS 1930 {} 1.505\n}\n", "INVALID_AMOUNT", 12),
        ("#VER A 1 20250101\n{\n#TRANS 1930 100\n}\n", "MALFORMED_RECORD", 12),
        ("#VER A 1 20250101\n{\n#TRANS 2440 {} 0\n}\n", "ACCOUNT_NOT_DECLARED", 12),
        ("#VER A 1 20250101\n{\n}\n#VER A 1 20250102\n{\n}\n", "DUPLICATE_VOUCHER_NUMBER", 13),
        ("#VER A 1 20250101\n{\n#TRANS 1930 {} 0\n", "TRUNCATED", 10),
        ("#MOMSKOD 1930 25\n#MOMSKOD 3001 25\n", "UNKNOWN_LABEL", 10),
        ("#TRANS 1930 {} 5\n", "MALFORMED_RECORD", 10),
        ('#VER A 1 20250101\n{\n#TRANS "" {} 100.00\n}\n', "MISSING_ACCOUNT", 12),
        ('#ORGNR "5566778899"\n', "INVALID_ORG_NUMBER", 10),
        ("#ORGNR\n", "INVALID_ORG_NUMBER", 10),
        ('#FNAMN ""\n', "MISSING_MANDATORY_RECORD", 10),
    ],
)
def test_finding_codes_and_lines(body: str, code: str, line: int) -> None:
    d = doc(body)
    assert [(f.code, f.line) for f in d.findings] == [(code, line)]


def test_a_row_without_an_account_is_an_error_and_never_reaches_the_caller() -> None:
    d = doc('#VER A 1 20250101\n{\n#TRANS "" {} 100.00\n#TRANS 1930 {} -100.00\n}\n')
    assert [(f.code, f.severity, f.line) for f in d.findings] == [
        ("MISSING_ACCOUNT", Severity.ERROR, 12)
    ]
    assert [r.account for r in d.vouchers[0].rows] == ["1930"]


def test_a_row_reads_alike_whatever_the_row_at_its_place_in_the_voucher_before() -> None:
    d = doc(
        "#VER A 1 20250101\n{\n#TRANS 1930 100.00\n#TRANS 3001 {} -100.00\n}\n"
        '#VER A 2 20250102\n{\n#TRANS 3001 {} 50.00\n#TRANS 1930 {6 "P1"} -50.00\n}\n'
        '#VER A 3 20250103\n{\n#TRANS 3001 {} 7\n#TRANS 1930 {6 "P2"} -7\n}\n'
    )
    assert [(f.code, f.line) for f in d.findings] == [("MALFORMED_RECORD", 12)]
    assert [[(r.account, r.objects, r.amount) for r in v.rows] for v in d.vouchers] == [
        [("3001", (), Decimal("-100.00"))],
        [("3001", (), Decimal("50.00")), ("1930", (("6", "P1"),), Decimal("-50.00"))],
        [("3001", (), Decimal("7")), ("1930", (("6", "P2"),), Decimal("-7"))],
    ]


@pytest.mark.parametrize("number", ["556677-8899", '"556677-8899" 1', "165502-1513"])
def test_well_formed_org_numbers_pass(number: str) -> None:
    assert doc(f"#ORGNR {number}\n").findings == ()


@pytest.mark.parametrize(
    "number", ["165502261513", "16550226-1513", '"5502261513"', "195502261513 1"]
)
def test_an_org_number_in_another_form_is_warned_about_with_its_10_digits(number: str) -> None:
    d = doc(f"#KONTO 1510 Kundfordringar\n#ORGNR {number}\n")
    assert [(f.code, f.severity, f.line) for f in d.findings] == [
        ("INVALID_ORG_NUMBER", Severity.WARNING, 11)]
    assert d.findings[0].message.endswith("read as the organisation number 550226-1513")
    assert d.org_number is not None and d.org_number.number == number.split()[0].strip('"')


def test_a_type_4_export_without_company_name_is_warned_about() -> None:
    head = HEAD.replace('#FNAMN "Bolaget AB"\n', "")
    d = doc("", ReadPolicy(variant=Variant.EXPORT), head=head)
    (finding,) = d.findings
    assert (finding.code, finding.severity) == ("MISSING_MANDATORY_RECORD", Severity.WARNING)
    assert finding.message == "mandatory record #FNAMN is missing for type 4E"


def test_duplicate_detection_is_per_series_and_tolerates_gaps() -> None:
    numbers = VoucherNumbers()
    assert all(numbers.add("A", str(n)) for n in (1, 2, 3, 10, 5, 4, 11))
    assert numbers.add("B", "1") and numbers.add("A", "X1")
    assert not numbers.add("A", "4") and not numbers.add("A", "11") and not numbers.add("A", "X1")
    assert numbers.add("A", "9") and numbers.add("A", "6")


def test_missing_mandatory_records_and_4i_rules() -> None:
    d = read_document(b"#FLAGGA 0\n#SIETYP 4\n#IB 0 1930 5\n", ReadPolicy(variant=Variant.IMPORT))
    found = {(f.code, f.severity) for f in d.findings}
    assert ("FORBIDDEN_RECORD_IN_4I", Severity.ERROR) in found
    missing = sorted(
        f.message.split()[2] for f in d.findings if f.code == "MISSING_MANDATORY_RECORD"
    )
    assert missing == ["#FNAMN", "#FORMAT", "#GEN", "#PROGRAM"]
    lenient = ReadPolicy(variant=Variant.IMPORT, strict_4i=False, strict_mandatory=True)
    found = {
        (f.code, f.severity) for f in read_document(b"#FLAGGA 0\n#IB 0 1930 5\n", lenient).findings
    }
    assert ("FORBIDDEN_RECORD_IN_4I", Severity.WARNING) in found
    assert ("MISSING_MANDATORY_RECORD", Severity.ERROR) in found


def test_balances_carry_year_index_objects_period_and_quantity() -> None:
    d = doc(
        "#IB -1 1930 100.5 3\n#OUB 0 1930 {6 P1} -7\n#PSALDO 0 202503 3001 {} -12.25\n"
        "#RES 0 3001 -12.25\n"
    )
    assert list(d.balances) == [
        Balance(BalanceKind.IB, -1, "1930", Decimal("100.5"), Decimal(3)),
        Balance(BalanceKind.OUB, 0, "1930", Decimal(-7), None, (("6", "P1"),)),
        Balance(BalanceKind.PSALDO, 0, "3001", Decimal("-12.25"), None, (), date(2025, 3, 1)),
        Balance(BalanceKind.RES, 0, "3001", Decimal("-12.25")),
    ]
    assert [b.line for b in d.balances] == [10, 11, 12, 13]


def test_checksum_mismatch_names_both_values_and_truncation_is_reported() -> None:
    base = "#FLAGGA 0\n#KSUMMA\n#PROGRAM X 1\n"
    d = read_document((base + "#KSUMMA 12345\n").encode())
    (mismatch,) = [f for f in d.findings if f.code == "CHECKSUM_MISMATCH"]
    assert "12345" in mismatch.message and "computed" in mismatch.message
    assert d.summary is not None and d.summary.checksum == "mismatch"
    truncated = read_document(base.encode())
    assert "TRUNCATED" in codes(truncated)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_endings_indentation_and_missing_final_newline(newline: bytes) -> None:
    text = HEAD + "  #VER A 1 20250101\n\t{\n   #TRANS 1930 {} 1\n\t#TRANS 3001 {} -1\n}"
    d = read_document(text.encode().replace(b"\n", newline))
    assert d.findings == ()
    assert len(d.vouchers) == 1 and d.vouchers[0].line == 10


@pytest.mark.parametrize(
    "data",
    [b"", b"\n\n", b"<html><body>404 Not Found</body></html>\n", b"\x00\x01\x02garbage"],
)
def test_not_sie(data: bytes) -> None:
    d = read_document(data)
    assert [f.code for f in d.findings] == ["NOT_SIE"]


def test_encoding_detection() -> None:
    cp437 = read_document(HEAD.replace("Bolaget", "Bolaget Övre").encode("cp437"))
    utf8 = read_document(HEAD.replace("Bolaget", "Bolaget Övre").encode("utf-8"))
    bom = read_document(b"\xef\xbb\xbf" + HEAD.encode())
    assert cp437.summary is not None and utf8.summary is not None
    assert (cp437.company_name, cp437.summary.encoding) == ("Bolaget Övre AB", "cp437")
    assert (utf8.company_name, utf8.summary.encoding) == ("Bolaget Övre AB", "utf-8")
    assert bom.summary is not None and bom.summary.encoding == "utf-8" and bom.findings == ()
    mixed = read_document(HEAD.replace("Bank", "Bänk").encode() + "#PROSA Å\n".encode("cp437"))
    assert "ENCODING_MIXED" in codes(mixed)


def test_long_lines_are_skipped_with_bounded_memory() -> None:
    reader = SieReader(ReadPolicy(max_line_bytes=100))
    events = reader.feed(HEAD.encode())
    for _ in range(50):
        events += reader.feed(b"x" * 1000)
        assert len(reader._pending) <= 1000
    events += reader.feed(b"\n#PROSA ok\n") + reader.close()
    assert [getattr(e, "code", None) for e in events].count("LINE_TOO_LONG") == 1


def test_summary_counts() -> None:
    d = doc("#VER A 1 20250101\n{\n#TRANS 1930 {} 1\n#TRANS 3001 {} -1\n}\n")
    s = d.summary
    assert s is not None
    assert (s.sie_type, s.program, s.company_name, s.accounts, s.vouchers, s.transactions) == (
        4, "Test", "Bolaget AB", 2, 1, 2,
    )  # fmt: skip
    assert [(y.index, y.start, y.end) for y in s.financial_years] == [
        (0, date(2025, 1, 1), date(2025, 12, 31))
    ]
    assert (s.checksum, s.errors, s.warnings) == ("absent", 0, 0)


SOURCE_BODY = (
    '#VER A 1 20250105 "Sale"\n{\n#TRANS 1930 {} 100.00\n#TRANS 3001 {} -100.00\n}\n'
    '#VER A 2 20250106 "Odd row"\n{\n  #TRANS 1930 {} 50 "" "" 0 "" extra\n#TRANS 3001 {} -50\n}\n'
    '#VER A 3 20250107 "Last, no newline"\n{\n#TRANS 1930 {} 7\n#TRANS 3001 {} -7\n}'
)


def sources(data: bytes, chunk: int) -> list[str]:
    reader = SieReader(ReadPolicy(keep_voucher_source=True))
    events = []
    for start in range(0, len(data), chunk):
        events += reader.feed(data[start:start + chunk])
    events += reader.close()
    return [e.source for e in events if isinstance(e, Voucher)]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_voucher_source_is_its_lines_whichever_path_reads_it(newline: bytes) -> None:
    # Whole chunks take the one-match path for vouchers 1 and 3; one byte at a time, and
    # voucher 2's odd row, take the line-by-line path. Both must keep the same text.
    data = (HEAD + SOURCE_BODY).encode("cp437").replace(b"\n", newline)
    expected = [
        '#VER A 1 20250105 "Sale"\n{\n#TRANS 1930 {} 100.00\n#TRANS 3001 {} -100.00\n}\n',
        '#VER A 2 20250106 "Odd row"\n{\n  #TRANS 1930 {} 50 "" "" 0 "" extra\n'
        "#TRANS 3001 {} -50\n}\n",
        '#VER A 3 20250107 "Last, no newline"\n{\n#TRANS 1930 {} 7\n#TRANS 3001 {} -7\n}\n',
    ]
    assert sources(data, len(data)) == expected
    assert sources(data, 1) == expected
    assert sources(data, 7) == expected


def test_voucher_source_is_kept_only_when_asked_and_never_counts_for_equality() -> None:
    data = (HEAD + SOURCE_BODY).encode("cp437")
    plain = [e for e in SieReader().feed(data) if isinstance(e, Voucher)]
    kept = [e for e in SieReader(ReadPolicy(keep_voucher_source=True)).feed(data)
            if isinstance(e, Voucher)]
    assert [v.source for v in plain] == ["", ""]  # the last one waits for close()
    assert all(v.source for v in kept)
    assert plain == kept
