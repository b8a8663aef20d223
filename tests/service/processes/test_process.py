"""The real ``fortnox-bridge serve`` process: health, reflection, errors, clean SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.harness.processes import BIN, grpcurl, serving

SERVICE = "spiris.skattbokslut.fortnox.v1.FortnoxService"


def test_serves_health_and_reflection_and_stops_cleanly_on_sigterm(
    serve_env: dict[str, str],
) -> None:
    with serving(serve_env) as served:
        health = grpcurl("-plaintext", served.address, "grpc.health.v1.Health/Check")
        assert health.returncode == 0, health.stderr
        assert json.loads(health.stdout) == {"status": "SERVING"}

        listed = grpcurl("-plaintext", served.address, "list")
        assert listed.returncode == 0, listed.stderr
        assert set(listed.stdout.split()) == {
            SERVICE,
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }

        described = grpcurl("-plaintext", served.address, "describe", SERVICE)
        assert "rpc ImportSie" in described.stdout, described.stderr

        call = grpcurl(
            "-plaintext", "-format-error", "-d", '{"tenant": "acme", "import_id": "x"}',
            served.address, f"{SERVICE}/GetImport",
        )
        assert call.returncode != 0
        error = json.loads(call.stdout or call.stderr)
        assert error["code"] == 5  # NOT_FOUND
        assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
        assert error["details"][0]["reason"] == "IMPORT_NOT_FOUND"

        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == 0
        logs = served.process.stderr.read() if served.process.stderr else ""
    events = [json.loads(line)["message"] for line in logs.splitlines() if line.startswith("{")]
    assert events[-2:] == ["draining", "stopped"]


def _serve_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "fortnox-bridge"), "serve"], env=env, capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"FORTNOX_BRIDGE_LISTEN": "localhost:99999"}, "FORTNOX_BRIDGE_LISTEN"),
        ({"FORTNOX_BRIDGE_TLS_CERT": "/nonexistent/cert.pem"}, "FORTNOX_BRIDGE_TLS_CERT"),
        ({"FORTNOX_BRIDGE_DB_PATH": "/proc/forbidden/bridge.sqlite3"}, "FORTNOX_BRIDGE_DB_PATH"),
        ({"FORTNOX_CLIENT_SECRET": ""}, "FORTNOX_CLIENT_SECRET"),
        ({"FORTNOX_BRIDGE_ENV": "production"}, "FORTNOX_REDIRECT_URIS"),
    ],
)
def test_bad_configuration_exits_with_one_line_naming_the_setting(
    serve_env: dict[str, str], override: dict[str, str], named: str
) -> None:
    result = _serve_once({**serve_env, **override})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert "test-secret" not in result.stderr


def test_listen_flag_overrides_the_environment_and_is_validated(
    serve_env: dict[str, str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [str(BIN / "fortnox-bridge"), "serve", "--listen", "nonsense"],
        env=serve_env, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "--listen" in result.stderr
