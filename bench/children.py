"""Benchmark children: a ``fortnox-bridge`` process started and waited for until it says where
it listens, so a benchmark measures it from outside as a caller would, and the CPU a child
has used."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def child(args: list[str], ready: str, env: dict[str, str]) -> Iterator[tuple[int, str]]:
    """Starts a child, waits for the line matching ``ready``; yields (pid, captured group)."""
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            match = re.search(ready, line)
            if match:
                yield process.pid, match.group(1)
                return
        raise RuntimeError(f"{args[1]} exited with {process.wait()}")
    finally:
        process.terminate()
        process.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used so far (Linux's ``/proc``; 0 if it is gone
    or there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
