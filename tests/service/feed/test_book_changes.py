"""What changed in the books, through gRPC against the sandbox with the feed holder running:
the customer books, amends and deletes vouchers in Fortnox, and the caller's stream delivers
exactly those changes, GetImport says how many vouchers of the imported year changed, and a
voucher the service exported itself is marked as ours."""

from __future__ import annotations

from datetime import date
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from sandbox.testing import SandboxHandle
from spiris.skattbokslut.fortnox.v1 import book_changes_pb2 as bc
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import sie_import_pb2 as sie_pb
from tests.harness.connect import connect
from tests.harness.errors import fails
from tests.harness.vouchers import request, voucher
from tests.service.feed.watching import Follower, watch

TENANT = "acme"
NOT_FOUND, INVALID = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT
Kind = bc.BookChange.Kind


def customer_voucher(day: str, amount: float, text: str) -> dict[str, Any]:
    """A voucher as the customer books it in Fortnox."""
    return {"Voucher": {"Description": text, "TransactionDate": day, "VoucherSeries": "A",
                        "VoucherRows": [{"Account": 1930, "Debit": amount},
                                        {"Account": 3001, "Credit": amount}]}}


async def test_the_customers_changes_reach_the_stream_and_the_import(
        stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    year = company.financial_years[-1]
    await connect(stub, TENANT, company)
    watched = await watch(stub, TENANT)
    assert watched.fortnox_tenant_id == company.id and watched.state == bc.Watch.STATE_WATCHING
    imported = [m async for m in stub.ImportSie(pb.ImportSieRequest(
        tenant=TENANT, omit_raw_chunks=True,
        years=[sie_pb.YearSelector(financial_year_id=year["id"])]))]
    import_id = imported[-1].summary.import_id
    follower = Follower(stub, [TENANT])
    try:
        existing = [v for v in sandbox.all_vouchers(company.id) if v["Year"] == year["id"]]
        booked = sandbox.book_voucher(company.id, customer_voucher(year["from"], 125.5,
                                                                   "Sen leverantörsfaktura"))
        sandbox.amend_voucher(company.id, year["id"], "A", existing[0]["VoucherNumber"],
                              description="Rättad text")
        sandbox.delete_voucher(company.id, year["id"], "A", existing[1]["VoucherNumber"])
        # A marker after the three: the stream delivers it fourth, so nothing came between.
        sandbox.emit_event(company.id, "invoices", "invoicepayment-bookkeep-v1", "3817")
        changes = await follower.wait_for(4)
    finally:
        await follower.close()
    assert [(c.kind, c.voucher_series, c.voucher_number, c.financial_year_id, c.ours)
            for c in changes[:3]] == [
        (Kind.KIND_VOUCHER_CREATED, "A", booked["VoucherNumber"], year["id"], False),
        (Kind.KIND_VOUCHER_UPDATED, "A", existing[0]["VoucherNumber"], year["id"], False),
        (Kind.KIND_VOUCHER_DELETED, "A", existing[1]["VoucherNumber"], year["id"], False)]
    assert (changes[3].kind, changes[3].entity_id) == (Kind.KIND_INVOICE_PAYMENT, "3817")
    assert all(c.tenant == TENANT for c in changes)
    cursors = [c.cursor for c in changes]
    assert cursors == sorted(cursors) and len(set(cursors)) == 4

    got: pb.GetImportResponse = await stub.GetImport(pb.GetImportRequest(
        tenant=TENANT, import_id=import_id))
    (imported_year,) = got.import_record.years
    assert imported_year.HasField("changed_since")
    assert imported_year.changed_since.books_changed
    assert imported_year.changed_since.vouchers_changed == 3
    listed: pb.ListImportsResponse = await stub.ListImports(pb.ListImportsRequest(tenant=TENANT))
    assert listed.imports[0].years[0].changed_since.vouchers_changed == 3


async def test_a_voucher_we_exported_is_marked_ours(
        stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    year = company.financial_years[-1]
    await connect(stub, TENANT, company)
    await watch(stub, TENANT)
    follower = Follower(stub, [TENANT])
    try:
        exported: pb.ExportVouchersResponse = await stub.ExportVouchers(request(TENANT, [
            voucher("closing-1", date.fromisoformat(year["to"]), 1_250_000)]))
        sandbox.book_voucher(company.id, customer_voucher(year["to"], 10, "Kundens"))
        changes = await follower.wait_for(2)
    finally:
        await follower.close()
    (result,) = exported.results
    ours = changes[0]
    assert (ours.voucher_series, ours.voucher_number, ours.financial_year_id) == (
        result.voucher_series, result.voucher_number, result.financial_year_id)
    assert [c.ours for c in changes] == [True, False]


async def test_a_stream_resumed_from_its_cursor_misses_nothing_and_repeats_nothing(
        stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle) -> None:
    company = sandbox.tenants[0]
    await connect(stub, TENANT, company)
    await watch(stub, TENANT)
    first = Follower(stub, [TENANT])
    sandbox.feed_burst(5, [company.id])
    try:
        seen = await first.wait_for(5)
    finally:
        await first.close()
    sandbox.feed_burst(7, [company.id])  # while nobody follows
    resumed = Follower(stub, [TENANT], after=seen[2].cursor)
    try:
        rest = await resumed.wait_for(9)
        sandbox.emit_event(company.id, "invoices", "invoice-bookkeep-v1", "marker")
        rest = await resumed.wait_for(10)
    finally:
        await resumed.close()
    assert rest[:2] == seen[3:]
    assert rest[-1].entity_id == "marker"
    numbers = [c.voucher_number for c in seen[:3] + rest[:-1]]
    logged = [e["number"] for e in sandbox.feed_events("vouchers", company.id)]
    assert numbers == logged


async def test_watch_bounds_and_unknown_watches_are_refused(
        stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle) -> None:
    await fails(stub.GetWatch(bc.GetWatchRequest(tenant="nobody")), NOT_FOUND,
                "WATCH_NOT_FOUND")
    await fails(stub.WatchTenant(bc.WatchTenantRequest(
        tenant="nobody", duration=Duration(seconds=60))), NOT_FOUND, "CONNECTION_NOT_FOUND")
    await connect(stub, TENANT, sandbox.tenants[0])
    await fails(stub.WatchTenant(bc.WatchTenantRequest(
        tenant=TENANT, duration=Duration(seconds=200 * 86400))), INVALID, "INVALID_REQUEST")
    await fails(stub.StreamBookChanges(bc.StreamBookChangesRequest()).read(), INVALID,
                "INVALID_REQUEST")
    await fails(stub.StreamBookChanges(bc.StreamBookChangesRequest(
        tenants=[TENANT], after_cursor=-1)).read(), INVALID, "INVALID_REQUEST")
    await stub.WatchTenant(bc.WatchTenantRequest(tenant=TENANT, duration=Duration(seconds=60)))
    stopped: bc.UnwatchTenantResponse = await stub.UnwatchTenant(
        bc.UnwatchTenantRequest(tenant=TENANT))
    assert stopped.watch.state == bc.Watch.STATE_ENDED
    assert stopped.watch.reason == "Stopped by the caller."
    listed: bc.ListWatchesResponse = await stub.ListWatches(bc.ListWatchesRequest())
    assert [w.tenant for w in listed.watches] == [TENANT]


async def test_watches_are_listed_a_page_at_a_time_with_tokens_this_service_issued(
        stub: pb_grpc.FortnoxServiceStub, sandbox: SandboxHandle) -> None:
    tenants = ["w-a", "w-b", "w-c"]
    for tenant in tenants:
        await connect(stub, tenant, sandbox.tenants[0])
        await stub.WatchTenant(bc.WatchTenantRequest(tenant=tenant,
                                                     duration=Duration(seconds=60)))
    first: bc.ListWatchesResponse = await stub.ListWatches(bc.ListWatchesRequest(page_size=2))
    assert [w.tenant for w in first.watches] == tenants[:2] and first.next_page_token
    rest: bc.ListWatchesResponse = await stub.ListWatches(
        bc.ListWatchesRequest(page_size=2, page_token=first.next_page_token))
    assert [w.tenant for w in rest.watches] == tenants[2:] and not rest.next_page_token
    await fails(stub.ListWatches(bc.ListWatchesRequest(page_token="w-a")), INVALID,
                "INVALID_REQUEST")
    await fails(stub.ListWatches(bc.ListWatchesRequest(page_size=501)), INVALID,
                "INVALID_REQUEST")
