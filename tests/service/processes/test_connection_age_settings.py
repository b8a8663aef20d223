"""The connection age settings: defaults, and a bad value stops ``serve`` with exit code 2."""

from __future__ import annotations

import subprocess

import pytest

from server.config import ConfigError, ConnectionAge, load_settings
from tests.harness.processes import BIN

AGE = "FORTNOX_BRIDGE_MAX_CONNECTION_AGE_S"
GRACE = "FORTNOX_BRIDGE_MAX_CONNECTION_AGE_GRACE_S"


def test_connection_age_defaults_and_settings(serve_env: dict[str, str]) -> None:
    assert load_settings(serve_env).connection_age == ConnectionAge(max_age_s=300, grace_s=1800)
    tuned = load_settings(serve_env | {AGE: "120", GRACE: "0"})
    assert tuned.connection_age == ConnectionAge(max_age_s=120, grace_s=0)


@pytest.mark.parametrize(
    ("name", "value"),
    [(AGE, "soon"), (AGE, "0"), (AGE, "-5"), (AGE, "inf"), (AGE, "nan"),
     (GRACE, "-1"), (GRACE, "a while"), (GRACE, "nan")],
)
def test_a_bad_connection_age_exits_2_naming_the_setting(
    serve_env: dict[str, str], name: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{name}: "):
        load_settings({**serve_env, name: value})
    result = subprocess.run([str(BIN / "fortnox-bridge"), "serve"], env={**serve_env, name: value},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], result.stderr
