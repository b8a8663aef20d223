"""The command line: help documents the flags; the server starts fast and says where it is."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sandbox.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_help_documents_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--listen", "--seed", "--vouchers-per-year", "--rate-limit", "--rate-window",
                 "--redirect-uri", "--client-id", "--large-year-vouchers"):
        assert flag in text


def test_starts_quickly_and_prints_banner() -> None:
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "sandbox", "--listen", "127.0.0.1:0"],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        assert first.startswith("sandbox listening on http://127.0.0.1:")
        url = first.removeprefix("sandbox listening on ")
        lines = [process.stdout.readline().strip() for _ in range(8)]
        while True:
            try:
                if httpx.get(f"{url}/_sandbox/tenants").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.02)
        assert time.monotonic() - started < 2.0
        assert "client id: sandbox-client" in lines
        assert any("http://localhost:8080/callback" in line for line in lines)
        assert sum(line.startswith("tenant ") for line in lines) == 3
        assert any("admin-1000001 (system administrator) or user-1000001 (ordinary user)"
                   in line for line in lines)
    finally:
        process.terminate()
        process.wait(timeout=10)
