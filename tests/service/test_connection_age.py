"""Connections age out (GOAWAY) so balancing clients re-resolve; a long-lived channel does not
notice, and a call running at the age finishes within the grace."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc

from sandbox.testing import SandboxHandle
from server.config import load_settings
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import sie_import_pb2 as sie_pb
from tests.harness.connect import connect
from tests.harness.metrics import serving_metered
from tests.harness.service import service_env

AGE = "FORTNOX_BRIDGE_MAX_CONNECTION_AGE_S"
GRACE = "FORTNOX_BRIDGE_MAX_CONNECTION_AGE_GRACE_S"


async def test_a_long_lived_channel_keeps_working_across_the_connection_age(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    env = service_env(sandbox.base_url, tmp_path / "bridge.sqlite3") | {AGE: "1", GRACE: "10"}
    settings = load_settings(env)
    async with (
        serving_metered(settings) as (running, spans),
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = pb_grpc.FortnoxServiceStub(channel)
        await connect(stub, "acme", sandbox.tenants[0])
        until = time.monotonic() + 3.5
        while time.monotonic() < until:  # every call succeeds, across three or so ages
            await stub.GetConnection(pb.GetConnectionRequest(tenant="acme"), timeout=5)
            await asyncio.sleep(0.1)
        # A call that outlives the age finishes on its old connection within the grace.
        sandbox.add_fault("slow_sie", chunk_bytes=4096, chunk_delay_ms=100, path="/3/sie/")
        began = time.monotonic()
        year = sandbox.tenants[0].financial_years[-1]["id"]
        answers = [a async for a in stub.ImportSie(pb.ImportSieRequest(
            tenant="acme", omit_raw_chunks=True,
            years=[sie_pb.YearSelector(financial_year_id=year)]))]
        assert time.monotonic() - began > 1.5
        assert answers[-1].WhichOneof("event") == "summary"
        await stub.GetConnection(pb.GetConnectionRequest(tenant="acme"), timeout=5)

    # The server saw the same channel arrive over new connections (new client ports).
    ports = [s.attributes["net.peer.port"] for s in spans.get_finished_spans()
             if s.name.endswith("/GetConnection") and s.attributes]
    assert len(set(ports)) >= 3, ports
    assert ports[-1] != ports[0]
