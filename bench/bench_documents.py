"""Voucher documents benchmark: how close one tenant's year of documents comes to Fortnox's
rate limit, and the service's memory while it streams a 50 MB file.

* one tenant, ``DownloadYearDocuments`` of a seeded year (about 84 receipts, PDF and JPEG),
  the sandbox enforcing 25 requests per 5 s and the service keeping within the same: documents
  per second, and the share of the limit used. Each document is one request, plus two for the
  year and the listing, made one after another; the N-th request can at best be sent
  ``floor((N - 1) / 25)`` windows after the first, so the share is that ideal time over the
  measured one (1.0 = ideal);
* one 50 MB PDF connected to a voucher, streamed by ``DownloadVoucherDocuments``: the service's
  resident memory before and at its highest during the stream (sampled every 20 ms), which must
  stay flat (the file goes through a spool on disk, and out in 1 MiB chunks).

Both run as real processes (``fortnox-bridge sandbox``, ``fortnox-bridge serve``).
``BENCH_SIZE=tiny`` runs a 30-voucher year and a 5 MB file, in a few seconds.
Run: ``.venv/bin/python -m bench.bench_documents``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sys
import tempfile
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx

from bench.children import child
from bench.size import tiny
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import sie_import_pb2 as sie_pb
from spiris.skattbokslut.fortnox.v1 import voucher_documents_pb2 as doc_pb
from tests.harness.service import service_env

TINY = tiny()
BIN = Path(sys.executable).parent / "fortnox-bridge"
REDIRECT_URI = "http://localhost:8080/callback"
LIMIT, WINDOW_S = 25, 5.0
VOUCHERS_PER_YEAR = 30 if TINY else 240
LARGE_FILE = (5 if TINY else 50) * 1_000_000
#: Flat: the service may grow by at most this while streaming the large file.
FLAT_MIB = 16
TARGET_SHARE = 0.9


def _sandbox() -> AbstractContextManager[tuple[int, str]]:
    return child([str(BIN), "sandbox", "--listen", "127.0.0.1:0", "--vouchers-per-year",
                     str(VOUCHERS_PER_YEAR), "--rate-limit", str(LIMIT), "--rate-window",
                     str(WINDOW_S)], r"sandbox listening on (http://\S+)", dict(os.environ))


def _service(sandbox_url: str, db: Path) -> AbstractContextManager[tuple[int, str]]:
    env = service_env(sandbox_url, db, FORTNOX_RATE_LIMIT_REQUESTS=str(LIMIT),
                      FORTNOX_RATE_LIMIT_WINDOW_S=str(WINDOW_S),
                      FORTNOX_BRIDGE_LOG_LEVEL="warning", FORTNOX_BRIDGE_SIE_PARSERS="1",
                      TMPDIR=str(db.parent))
    return child([str(BIN), "serve"], r"serving on (\S+)", env)


def _rss_mib(pid: int, key: str = "VmRSS") -> float:
    match = re.search(rf"{key}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


async def _requests(sandbox_url: str, company: int) -> dict[str, int]:
    async with httpx.AsyncClient() as http:
        stats: dict[str, Any] = (await http.get(f"{sandbox_url}/_sandbox/stats")).json()
    return {k: int(v) for k, v in stats["requests"].get(str(company), {}).items()}


async def _connect(stub: pb_grpc.FortnoxServiceStub, tenant: str) -> None:
    started = await stub.Connect(pb.ConnectRequest(tenant=tenant, redirect_uri=REDIRECT_URI,
                                                   allow_any_company=True))
    async with httpx.AsyncClient() as http:
        answer = await http.get(started.authorization_url)
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    await stub.CompleteConnect(pb.CompleteConnectRequest(state=query["state"][0],
                                                         code=query["code"][0]))


async def _year(stub: pb_grpc.FortnoxServiceStub, sandbox_url: str, company: int) -> None:
    if not TINY:  # the connect's lookups leave the window first (tiny stays within one)
        await asyncio.sleep(WINDOW_S)
    before = await _requests(sandbox_url, company)
    started = time.monotonic()
    first_estimate = None
    summary = None
    async for message in stub.DownloadYearDocuments(doc_pb.DownloadYearDocumentsRequest(
            tenant="bench", year=sie_pb.YearSelector(financial_year_id=1))):
        if message.HasField("progress") and first_estimate is None:
            first_estimate = message.progress.estimated_seconds_left
        if message.HasField("summary"):
            summary = message.summary
    elapsed = time.monotonic() - started
    after = await _requests(sandbox_url, company)
    assert summary is not None and summary.files_failed == 0
    sent = after.get("200", 0) - before.get("200", 0)
    refused = after.get("429", 0) - before.get("429", 0)
    print(f"one tenant, year 1: {summary.files_sent} documents, {summary.bytes_sent / 1e6:.2f} MB"
          f" in {elapsed:.1f} s = {summary.files_sent / elapsed:.2f} documents/s")
    print(f"  requests answered 200: {sent}, 429: {refused}; first estimate of the time left "
          f"{first_estimate} s")
    if sent > LIMIT:
        share = (sent - 1) // LIMIT * WINDOW_S / elapsed
        verdict = "met" if share >= TARGET_SHARE and refused == 0 else "NOT met"
        print(f"  share of the {LIMIT} per {WINDOW_S:.0f} s limit used: {share:.3f} (target >= "
              f"{TARGET_SHARE} with 0 x 429: {verdict})")
    else:
        print(f"  ({sent} requests fit in one window: no share of the limit to measure)")


async def _large_file(stub: pb_grpc.FortnoxServiceStub, sandbox_url: str, company: int,
                      service_pid: int) -> None:
    async with httpx.AsyncClient(timeout=120) as http:
        answer = await http.post(
            f"{sandbox_url}/_sandbox/tenants/{company}/vouchers/1/A/1/files",
            json={"size": LARGE_FILE, "name": "stor-bilaga.pdf"})
    answer.raise_for_status()
    file_id = answer.json()["FileId"]
    if not TINY:
        await asyncio.sleep(WINDOW_S)
    baseline = _rss_mib(service_pid)
    peak = [baseline]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak.append(_rss_mib(service_pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sha, size, chunks, header = hashlib.sha256(), 0, 0, None
    started = time.monotonic()
    try:
        async for message in stub.DownloadVoucherDocuments(doc_pb.DownloadVoucherDocumentsRequest(
                tenant="bench", year=sie_pb.YearSelector(financial_year_id=1),
                voucher_series="A", voucher_number=1)):
            if message.HasField("document") and message.document.file_id == file_id:
                header = message.document
            elif message.HasField("chunk") and message.chunk.file_id == file_id:
                sha.update(message.chunk.data)
                size += len(message.chunk.data)
                chunks += 1
    finally:
        stop.set()
        sampler.join()
    elapsed = time.monotonic() - started
    assert header is not None and header.sha256 == sha.hexdigest() and header.size == size
    growth = max(peak) - baseline
    print(f"one {size / 1e6:.0f} MB file: {chunks} chunks in {elapsed:.1f} s "
          f"({size / 1e6 / elapsed:.1f} MB/s), SHA-256 as announced")
    verdict = "met" if growth < FLAT_MIB else "NOT met"
    print(f"  service memory (VmRSS): {baseline:.0f} MiB before, {max(peak):.0f} MiB at most "
          f"during ({len(peak)} samples): +{growth:.1f} MiB (target flat, < {FLAT_MIB} MiB: "
          f"{verdict}); VmHWM {_rss_mib(service_pid, 'VmHWM'):.0f} MiB")


async def main() -> None:
    print(f"size: {'tiny' if TINY else 'full'} ({VOUCHERS_PER_YEAR} vouchers a year, "
          f"a {LARGE_FILE / 1e6:.0f} MB file)")
    with tempfile.TemporaryDirectory() as work, _sandbox() as (_, sandbox_url), _service(
        sandbox_url, Path(work) / "bench.sqlite3"
    ) as (service_pid, address):
        async with httpx.AsyncClient() as http:
            tenants = (await http.get(f"{sandbox_url}/_sandbox/tenants")).json()["tenants"]
        company = int(tenants[0]["id"])
        async with grpc.aio.insecure_channel(address) as channel:
            stub = pb_grpc.FortnoxServiceStub(channel)
            await _connect(stub, "bench")
            await _year(stub, sandbox_url, company)
            await _large_file(stub, sandbox_url, company, service_pid)


if __name__ == "__main__":
    asyncio.run(main())
