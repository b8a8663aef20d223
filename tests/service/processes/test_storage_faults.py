"""Real storage faults against the real process: a database that cannot be written at start,
a disk that fills up while serving (a small tmpfs of its own, filled by a file), and the
service's recovery once the space is back.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from adapters.sqlite import open_database
from sandbox.options import DEMO_REDIRECT_URIS
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.connect import connect
from tests.harness.disk import Disk, next_write_grows_the_wal, small_disk_fixture  # noqa: F401
from tests.harness.errors import error_info
from tests.harness.processes import BIN
from tests.harness.sandbox import SandboxProcess, sandbox_process
from tests.harness.service import replica_env


@pytest.fixture
def sandbox() -> Iterator[SandboxProcess]:
    with sandbox_process() as sb:
        yield sb


@dataclass
class Served:
    """A serve process whose log goes to a file (a full disk makes it talk)."""

    process: subprocess.Popen[str]
    address: str
    log: Path


@contextmanager
def serve(env: dict[str, str], log: Path) -> Iterator[Served]:
    with log.open("w") as err:
        process = subprocess.Popen([str(BIN / "fortnox-bridge"), "serve"], env=env,
                                   stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "serving on" in line, log.read_text()
        yield Served(process, f"127.0.0.1:{line.rsplit(':', 1)[1].strip()}", log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def _connect_call(address: str) -> pb.ConnectResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        response: pb.ConnectResponse = await pb_grpc.FortnoxServiceStub(channel).Connect(
            pb.ConnectRequest(tenant="other", redirect_uri=DEMO_REDIRECT_URIS[0],
                              allow_any_company=True), timeout=30)
        return response


async def _get_connection(address: str) -> pb.GetConnectionResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        response: pb.GetConnectionResponse = await pb_grpc.FortnoxServiceStub(
            channel).GetConnection(pb.GetConnectionRequest(tenant="acme"), timeout=30)
        return response


def test_an_unwritable_database_at_start_is_a_configuration_error(tmp_path: Path) -> None:
    db_path = tmp_path / "bridge.sqlite3"
    open_database(db_path).close()
    # chmod stops no root: as root the file is made immutable, which stops root too.
    as_root = os.geteuid() == 0
    if as_root:
        subprocess.run(["chattr", "+i", str(db_path)], check=True)
    else:
        db_path.chmod(0o400)
    try:
        env = replica_env("http://127.0.0.1:9", db_path=db_path)
        done = subprocess.run([str(BIN / "fortnox-bridge"), "serve"], env=env,
                              capture_output=True, text=True, timeout=60)
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(db_path)], check=True)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "FORTNOX_BRIDGE_DB_PATH" in lines[0], done.stderr
    assert "readonly" in lines[0]
    assert "serving" not in done.stdout


async def test_a_full_disk_answers_storage_unavailable_and_the_service_recovers(
    sandbox: SandboxProcess, small_disk: Disk, tmp_path: Path
) -> None:
    env = replica_env(sandbox.url, db_path=small_disk.path / "bridge.sqlite3")
    with serve(env, tmp_path / "serve.log") as served:
        await connect(served.address, "acme")
        with next_write_grows_the_wal(small_disk.path / "bridge.sqlite3"):
            small_disk.fill()
            with pytest.raises(grpc.aio.AioRpcError) as full:
                await _connect_call(served.address)
            assert full.value.code() == grpc.StatusCode.UNAVAILABLE
            info = error_info(full.value)
            assert info.reason == "STORAGE_UNAVAILABLE", full.value.details()
            assert "full" not in full.value.details()  # SQLite's words stay in the log
            assert "database or disk is full" in served.log.read_text()
            # Reading needs no space.
            assert (await _get_connection(served.address)).connection.tenant == "acme"
            small_disk.free()
            assert (await _connect_call(served.address)).state  # recovered by itself
        small_disk.fill()
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=30) == 0, served.log.read_text()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def test_the_sweeper_outlives_a_full_disk_and_ends_an_abandoned_import_after(
    sandbox: SandboxProcess, small_disk: Disk, tmp_path: Path
) -> None:
    db_path = small_disk.path / "bridge.sqlite3"
    env = replica_env(sandbox.url, db_path=db_path, FORTNOX_BRIDGE_IMPORT_STALE_S="1")
    with serve(env, tmp_path / "serve.log") as served:
        # An import of a worker that died: its last heartbeat turns stale in 1.5 s.
        import_id = str(uuid.uuid4())
        beat = _iso(datetime.now(UTC) + timedelta(seconds=0.5))
        with closing(sqlite3.connect(db_path)) as db, db:
            db.execute("INSERT INTO imports (import_id, tenant, kind, status, started_at,"
                       " heartbeat_at, worker_id) VALUES (?, 'acme', 'sie', 'running', ?, ?,"
                       " 'dead')", (import_id, beat, beat))
        with next_write_grows_the_wal(db_path):
            small_disk.fill()
            time.sleep(3)  # six sweeps, each refused by the disk
            assert served.process.poll() is None
            assert served.log.read_text().count("background job failed") >= 2

        def status() -> tuple[str, str]:
            with closing(sqlite3.connect(db_path)) as db:
                row = db.execute("SELECT status, error_reason FROM imports WHERE import_id = ?",
                                 (import_id,)).fetchone()
            return str(row[0]), str(row[1])

        assert status() == ("running", "")
        small_disk.free()
        deadline = time.monotonic() + 10
        while status()[0] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status() == ("failed", "IMPORT_INTERRUPTED")
