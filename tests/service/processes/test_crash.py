"""A service process killed mid-import: its parser processes stop, and after a restart the
import is not left running."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from sandbox.testing import SandboxHandle
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import import_history_pb2 as history_pb
from tests.harness.connect import connect
from tests.harness.processes import parser_pids, running, serving
from tests.harness.service import service_env

Import = history_pb.Import


async def test_an_import_killed_with_its_process_ends_failed_after_restart(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    env = service_env(sandbox.base_url, tmp_path / "bridge.sqlite3") | {
        "FORTNOX_BRIDGE_IMPORT_STALE_S": "2"}
    sandbox.add_fault("slow_sie", chunk_bytes=1024, chunk_delay_ms=100)
    with serving(env) as first:
        async with grpc.aio.insecure_channel(first.address) as channel:
            stub = pb_grpc.FortnoxServiceStub(channel)
            await connect(stub, "acme")
            call = stub.ImportSie(pb.ImportSieRequest(tenant="acme"))
            async for message in call:
                if message.WhichOneof("event") == "chunk":
                    break
            parsers = parser_pids(first.process.pid)
            first.process.kill()  # SIGKILL: nothing gets to record anything
            first.process.wait()
    assert parsers, "the import had no parser process"
    for _ in range(100):  # they see their input end, and stop
        if not any(running(pid) for pid in parsers):
            break
        await asyncio.sleep(0.05)
    assert not any(running(pid) for pid in parsers)
    sandbox.clear_faults()
    with serving(env) as second:
        async with grpc.aio.insecure_channel(second.address) as channel:
            stub = pb_grpc.FortnoxServiceStub(channel)
            for _ in range(100):
                (record,) = (await stub.ListImports(pb.ListImportsRequest(tenant="acme"))).imports
                if record.status != Import.STATUS_RUNNING:
                    break
                await asyncio.sleep(0.1)
            assert (record.status, record.error_reason) == (
                Import.STATUS_FAILED, "IMPORT_INTERRUPTED")
            again = [m async for m in stub.ImportSie(pb.ImportSieRequest(tenant="acme"))]
            assert again[-1].WhichOneof("event") == "summary"
