"""The README's grpcurl walkthrough, run as written against the processes `make run` starts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
_SERVICE = re.compile(r"make run: service\s+(\S+)")
_SANDBOX = re.compile(r"make run: sandbox\s+(\S+)")


@dataclass
class MakeRun:
    """The addresses `make run` printed."""

    service: str
    sandbox: str


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[MakeRun]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORTNOX_", "OTEL_"))}
    env.update(FORTNOX_DEVRUN_STATE_DIR=str(tmp_path / "state"),
               FORTNOX_BRIDGE_LISTEN="127.0.0.1:0", FORTNOX_SANDBOX_LISTEN="127.0.0.1:0")
    process = subprocess.Popen([sys.executable, "-m", "fortnox_bridge.devrun"], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    assert process.stdout is not None
    found: dict[str, str] = {}
    for line in process.stdout:
        for name, pattern in (("service", _SERVICE), ("sandbox", _SANDBOX)):
            if match := pattern.search(line):
                found[name] = match.group(1)
        if len(found) == 2:
            break
    try:
        assert len(found) == 2, f"make run did not print both addresses (exit {process.poll()})"
        yield MakeRun(**found)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # what the service logged says where it waits
            os.killpg(process.pid, signal.SIGKILL)  # make run and the servers it started
            output, _ = process.communicate()
            pytest.fail(f"make run did not stop within 30 s of SIGTERM:\n{output[-5000:]}")
        assert process.returncode == 0, output[-5000:]
        assert "did not stop when cancelled" not in output, output[-5000:]


def walkthrough() -> str:
    """The shell block that follows the README's ``<!-- walkthrough -->`` marker."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```sh", readme.index("<!-- walkthrough -->")) + len("```sh\n")
    return readme[start:readme.index("```", start)]


def test_the_readme_walkthrough_runs_against_make_run(make_run: MakeRun) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough()], cwd=ROOT,
        env={**os.environ, "SVC": make_run.service, "SANDBOX": make_run.sandbox},
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert '"status": "SERVING"' in out
    assert out.count('"state": "STATE_CONNECTED"') == 4  # user, its Get, service, its List
    assert out.count('"account_type": "ACCOUNT_TYPE_SERVICE"') == 3  # Complete, List, Disconnect
    assert out.count('"outcome": "OUTCOME_CREATED"') == 3  # the booking, its retry, the history
    assert '"outcome": "OUTCOME_VALID"' in out
    # ImportSie, ImportLedgers and both DownloadYearDocuments ended well
    assert out.count('"summary": {') == 4
    assert '"content_type": "image/jpeg"' in out and '"sha256"' in out  # voucher A 7's files
    assert out.count('"files_skipped"') == 2  # the resumed call's last progress and summary
    assert '"state": "STATE_REVOKED"' in out
    assert '"state": "STATE_WATCHING"' in out
    assert out.count('"ours": true') == 1  # the depreciation; the customer's voucher is not
    assert '"kind": "KIND_VOUCHER_CREATED"' in out
    assert '"books_changed": true' in out and '"vouchers_changed": "1"' in out
    vouchers = httpx.get(f"{make_run.sandbox}/_sandbox/tenants/1000001/vouchers").json()
    assert [v["Description"] for v in vouchers["Vouchers"]] == ["Avskrivning inventarier 2025"]
