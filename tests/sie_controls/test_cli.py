"""`sie balances` and `sie inspect --json` as real processes (`python -m sie`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.sie_controls.reckoner import CORPUS

ROOT = Path(__file__).resolve().parents[2]
MAMUT = CORPUS / "idstam__jsisie" / "MAMUT_SIE4_EXPORT.SE"


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
    done = _sie("balances", str(MAMUT), "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert set(document) == {"year", "accounts", "findings"} and document["year"] == 0
    rows = {row["account"]: row for row in document["accounts"]}
    assert rows["1930"]["name"] == "Checkräkningskonto"
    assert rows["1930"]["stated_closing"] == "12391938.29"  # #UB 0 1930 in the file
    assert rows["3740"]["stated_result"] == "-0.98" and "stated_closing" not in rows["3740"]
    codes = [f["code"] for f in document["findings"]]
    assert codes == ["OPENING_NOT_PREVIOUS_CLOSING"]
    assert document["findings"][0]["year"] == 0


def test_balances_table_is_aligned_with_swedish_names() -> None:
    done = _sie("balances", str(MAMUT), "--year", "-1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("account"))
    table = [line for line in lines[header:] if line.strip()]
    assert any("Öresutjämning" in line or "Checkräkningskonto" in line for line in table)
    widths = {len(line.removesuffix("  !")) for line in table if not line.startswith("  ")}
    assert len(widths) == 1, widths  # every row ends at the same column


def test_balances_usage_errors_exit_2() -> None:
    assert _sie("balances", str(MAMUT), "--year", "7").returncode == 2
    assert _sie("balances", str(ROOT / "no-such-file.se")).returncode == 2


def test_inspect_json_lists_control_findings_with_the_readers() -> None:
    done = _sie("inspect", str(CORPUS / "idstam__jsisie" / "Sie4.se"), "--json")
    codes = [f["code"] for f in json.loads(done.stdout)["findings"]]
    assert "ACCOUNT_NOT_DECLARED" in codes  # the reader's
    assert codes.count("CLOSING_BALANCE_MISMATCH") == 3 and "RESULT_MISMATCH" in codes
