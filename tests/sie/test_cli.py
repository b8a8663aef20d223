"""The `sie` command line, run in-process through `main(argv)` and as `python -m sie`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sie.cli import main
from tests.harness.sie_files import FIXTURES

KEYS = {
    "encoding", "sie_type", "program", "company_name", "org_number", "financial_years",
    "accounts", "vouchers", "transactions", "checksum", "unbalanced_vouchers", "findings",
}  # fmt: skip


def test_inspect_json_has_exactly_the_contract_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["inspect", str(FIXTURES / "sie4e_cp437_crlf_ksumma.se"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(report) == KEYS
    assert report["checksum"] == "verified" and report["sie_type"] == 4
    assert report["vouchers"] == 3 and report["encoding"] == "cp437"
    assert report["financial_years"][0] == {"index": 0, "start": "2024-01-01", "end": "2024-12-31"}
    assert (report["company_name"], report["org_number"]) == (
        "Övningsbolaget Åkesson AB",
        "556677-8899",
    )


def test_inspect_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = FIXTURES / "sie4e_one_unbalanced.se"
    assert main(["inspect", str(broken), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["unbalanced_vouchers"] == 1
    assert {f["code"] for f in report["findings"]} >= {"VOUCHER_UNBALANCED"}
    assert main(["inspect", str(tmp_path / "missing.se")]) == 2
    assert main(["inspect"]) == 2
    assert main(["inspect", str(broken), "--allow-unbalanced"]) == 0
    text = capsys.readouterr().out
    assert "VOUCHER_UNBALANCED" in text and "Checksum" in text


def test_write_then_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vouchers = [
        {
            "series": "A",
            "date": "2025-12-31",
            "text": "Hyra “dec”",
            "rows": [
                {"account": "1930", "amount": "-1000.10"},
                {"account": "5010", "amount": 1000.10, "objects": [["6", "P1"]]},
            ],
        }
    ]
    source = tmp_path / "v.json"
    source.write_text(json.dumps(vouchers), encoding="utf-8")
    target = tmp_path / "out.si"
    args = ["write", str(source), "-o", str(target), "--company-name", "Bolaget AB"]
    assert main([*args, "--checksum", "--org-number", "556677-8899"]) == 0
    assert "CHARACTER_REPLACED" in capsys.readouterr().err
    assert target.read_bytes().startswith(b"#FLAGGA 0\r\n#KSUMMA\r\n")
    assert main(["inspect", str(target), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["vouchers"], report["transactions"], report["checksum"]) == (1, 2, "verified")
    rows = vouchers[0]["rows"]
    assert isinstance(rows, list)
    rows.pop()
    source.write_text(json.dumps(vouchers), encoding="utf-8")
    assert main(args) == 1
    assert main([*args, "--year-start", "2025-01-01"]) == 2
    source.write_text("{not json", encoding="utf-8")
    assert main(args) == 2


def test_write_refuses_an_amount_finer_than_ore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [{"account": "1930", "amount": "-1000.001"}, {"account": "5010", "amount": "1000.001"}]
    source = tmp_path / "v.json"
    source.write_text(json.dumps([{"date": "2025-12-31", "rows": rows}]), encoding="utf-8")
    target = tmp_path / "out.si"
    assert main(["write", str(source), "-o", str(target), "--company-name", "Bolaget AB"]) == 2
    assert "voucher 1 row 1: amount -1000.001 has more than two decimals" in capsys.readouterr().err
    assert not target.exists()


def test_module_entry_point_and_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sie", "write", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0
    assert '"rows"' in done.stdout and "--checksum" in done.stdout
