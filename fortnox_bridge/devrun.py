"""``make run``: the service beside a local Fortnox sandbox, wired together, for trying it by hand.

Starts ``fortnox-bridge sandbox`` and ``fortnox-bridge serve`` (development settings, SQLite
file and a generated token key under ``.state/``), prints how to reach both, and stops both on
Ctrl-C or when either exits.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path

_BIN = Path(sys.executable).parent / "fortnox-bridge"
_SANDBOX_LINE = re.compile(r"sandbox listening on (http://\S+)")
_SERVE_LINE = re.compile(r"serving on (\S+)")
REDIRECT_URI = "http://localhost:8080/callback"


def _dev_key(state_dir: Path) -> str:
    """A token-encryption key kept across runs so stored tokens stay readable."""
    path = state_dir / "dev-token-key"
    if not path.exists():
        path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


def _start(args: list[str], env: dict[str, str], ready: re.Pattern[str]) -> tuple[
    subprocess.Popen[str], str
]:
    """Starts a child and returns it with the first match of ``ready`` in its stdout."""
    child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for line in child.stdout:
        print(line, end="", flush=True)
        match = ready.search(line)
        if match:
            threading.Thread(target=_echo, args=(child,), daemon=True).start()
            return child, match.group(1)
    code = child.wait()
    raise SystemExit(f"make run: {' '.join(args[1:3])} exited with {code} before it was ready")


def _echo(child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        print(line, end="", flush=True)


def _stop_when_exits(child: subprocess.Popen[str], stopped: threading.Event) -> None:
    child.wait()
    stopped.set()


def main() -> int:
    """Runs both servers until interrupted; returns the first non-zero exit code."""
    state_dir = Path(os.environ.get("FORTNOX_DEVRUN_STATE_DIR", ".state"))
    state_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    sandbox_listen = env.get("FORTNOX_SANDBOX_LISTEN", "127.0.0.1:8099")
    sandbox, sandbox_url = _start(
        [str(_BIN), "sandbox", "--listen", sandbox_listen], env, _SANDBOX_LINE
    )
    env.update(
        FORTNOX_BRIDGE_ENV="development",
        FORTNOX_BRIDGE_LISTEN=env.get("FORTNOX_BRIDGE_LISTEN", "127.0.0.1:50051"),
        FORTNOX_BRIDGE_DB_PATH=str(state_dir / "fortnox-bridge.sqlite3"),
        FORTNOX_CLIENT_ID="sandbox-client",
        FORTNOX_CLIENT_SECRET="sandbox-secret",
        FORTNOX_API_BASE_URL=f"{sandbox_url}/3",
        FORTNOX_AUTH_BASE_URL=f"{sandbox_url}/oauth-v1",
        FORTNOX_TOPICS_URL=sandbox_url.replace("http://", "ws://", 1) + "/topics-v1",
        FORTNOX_REDIRECT_URIS=REDIRECT_URI,
        FORTNOX_TOKEN_KEY=_dev_key(state_dir),
        FORTNOX_BRIDGE_LOG_FORMAT=env.get("FORTNOX_BRIDGE_LOG_FORMAT", "text"),
    )
    try:
        service, address = _start([str(_BIN), "serve"], env, _SERVE_LINE)
    except SystemExit:
        sandbox.terminate()
        raise
    print(
        f"\nmake run: service  {address}  (grpcurl -plaintext {address} list)\n"
        f"make run: sandbox  {sandbox_url}  (demo client sandbox-client / sandbox-secret, "
        f"redirect URI {REDIRECT_URI})\n"
        "make run: the README's grpcurl walkthrough works against these; Ctrl-C stops both.\n",
        flush=True,
    )
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    for child in (service, sandbox):
        threading.Thread(target=_stop_when_exits, args=(child, stopped), daemon=True).start()
    stopped.wait()
    codes = []
    for child in (service, sandbox):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        codes.append(child.wait(timeout=30))
    return next((code for code in codes if code not in (0, -signal.SIGTERM)), 0)


if __name__ == "__main__":
    sys.exit(main())
