"""``fortnox-bridge serve`` on PostgreSQL as a real process: serving, SIGTERM, a bad database."""

from __future__ import annotations

import json
import signal
import subprocess

from tests.harness.postgres import PostgresServer
from tests.harness.processes import BIN, grpcurl, serving

SERVICE = "spiris.skattbokslut.fortnox.v1.FortnoxService"


def test_serves_from_postgres_and_stops_cleanly_on_sigterm(
    serve_env: dict[str, str], postgres_url: str
) -> None:
    with serving({**serve_env, "FORTNOX_BRIDGE_DATABASE_URL": postgres_url}) as served:
        health = grpcurl("-plaintext", served.address, "grpc.health.v1.Health/Check")
        assert json.loads(health.stdout) == {"status": "SERVING"}, health.stderr
        call = grpcurl("-plaintext", "-format-error", "-d", '{"tenant": "acme"}',
                       served.address, f"{SERVICE}/ListImports")
        assert call.returncode == 0, call.stderr  # read from PostgreSQL: an empty history
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == 0


def test_an_unreachable_database_exits_with_one_line_and_no_password(
    serve_env: dict[str, str], postgres_server: PostgresServer
) -> None:
    url = f"postgresql://bridge:pw-secret@127.0.0.1:{postgres_server.port}/missing_db"
    result = subprocess.run(
        [str(BIN / "fortnox-bridge"), "serve"], capture_output=True, text=True, timeout=60,
        env={**serve_env, "FORTNOX_BRIDGE_DATABASE_URL": url},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "FORTNOX_BRIDGE_DATABASE_URL" in lines[0], result.stderr
    assert "pw-secret" not in result.stderr
