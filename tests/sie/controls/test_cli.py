"""`sie balances` and `sie inspect --json` as real processes (`python -m sie`)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.harness.sie_files import FIXTURES, ROOT

FAILING = FIXTURES / "sie4e_utf8_controls_fail.se"


def _sie(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sie", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )


def test_balances_json_is_one_object_with_two_decimal_strings() -> None:
    done = _sie("balances", str(FAILING), "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert set(document) == {"year", "accounts", "findings"} and document["year"] == 0
    rows = {row["account"]: row for row in document["accounts"]}
    assert rows["1930"]["name"] == "Checkräkningskonto"
    assert rows["1930"]["stated_closing"] == "8200.00"  # #UB 0 1930 in the file
    assert rows["5010"]["stated_result"] == "3100.00" and "stated_closing" not in rows["5010"]
    codes = {f["code"] for f in document["findings"]}
    assert codes == {
        "OPENING_NOT_PREVIOUS_CLOSING", "OPENING_BALANCE_SHEET_UNBALANCED", "RESULT_MISMATCH",
        "CLOSING_BALANCE_MISMATCH", "STATED_FIGURES_INCONSISTENT",
    }  # fmt: skip
    assert {f["year"] for f in document["findings"]} == {0}


def test_balances_table_is_aligned_with_swedish_names() -> None:
    done = _sie("balances", str(FAILING), "--year", "-1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("account"))
    table = [line for line in lines[header:] if line.strip()]
    assert any("Checkräkningskonto" in line for line in table)
    assert any("Årets resultat" in line for line in table)
    widths = {len(line.removesuffix("  !")) for line in table if not line.startswith("  ")}
    assert len(widths) == 1, widths  # every row ends at the same column


def test_balances_usage_errors_exit_2() -> None:
    assert _sie("balances", str(FAILING), "--year", "7").returncode == 2
    assert _sie("balances", str(ROOT / "no-such-file.se")).returncode == 2


def test_inspect_json_lists_control_findings_with_the_readers() -> None:
    done = _sie("inspect", str(FIXTURES / "sie4e_one_unbalanced.se"), "--json")
    codes = [f["code"] for f in json.loads(done.stdout)["findings"]]
    assert codes == ["VOUCHER_UNBALANCED", "CLOSING_BALANCE_MISMATCH"]  # the reader's, a control's
