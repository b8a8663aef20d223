"""Every RPC of the service produces a span; health checks do not; callers' traces continue."""

from __future__ import annotations

import contextlib

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from server.app import SERVICE_FULL_NAME
from spiris.skattbokslut.fortnox.v1 import book_changes_pb2 as bc
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from spiris.skattbokslut.fortnox.v1 import voucher_documents_pb2 as doc_pb

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def _call_every_rpc(stub: pb_grpc.FortnoxServiceStub) -> None:
    metadata = (("traceparent", f"00-{TRACE_ID}-00f067aa0ba902b7-01"),)
    unary = [
        (stub.Connect, pb.ConnectRequest(tenant="t")),
        (stub.CompleteConnect, pb.CompleteConnectRequest(state="s", code="c")),
        (stub.GetConnection, pb.GetConnectionRequest(tenant="t")),
        (stub.Disconnect, pb.DisconnectRequest(tenant="t")),
        (stub.ListConnections, pb.ListConnectionsRequest()),
        (stub.ExportVouchers, pb.ExportVouchersRequest(tenant="t")),
        (stub.ListVoucherExports, pb.ListVoucherExportsRequest(tenant="t")),
        (stub.GetImport, pb.GetImportRequest(tenant="t", import_id="i")),
        (stub.ListImports, pb.ListImportsRequest(tenant="t")),
        (stub.WatchTenant, bc.WatchTenantRequest(tenant="t")),
        (stub.UnwatchTenant, bc.UnwatchTenantRequest(tenant="t")),
        (stub.GetWatch, bc.GetWatchRequest(tenant="t")),
        (stub.ListWatches, bc.ListWatchesRequest()),
    ]
    for method, request in unary:
        with contextlib.suppress(grpc.aio.AioRpcError):
            await method(request, metadata=metadata, timeout=10)
    for stream in (
        stub.ImportSie(pb.ImportSieRequest(tenant="t"), metadata=metadata, timeout=10),
        stub.ImportLedgers(pb.ImportLedgersRequest(tenant="t"), metadata=metadata, timeout=10),
        stub.DownloadVoucherDocuments(doc_pb.DownloadVoucherDocumentsRequest(tenant="t"),
                                      metadata=metadata, timeout=10),
        stub.DownloadYearDocuments(doc_pb.DownloadYearDocumentsRequest(tenant="t"),
                                   metadata=metadata, timeout=10),
        stub.StreamBookChanges(bc.StreamBookChangesRequest(tenants=["t"], catch_up_only=True),
                               metadata=metadata, timeout=10),
    ):
        try:
            async for _ in stream:
                pass
        except grpc.aio.AioRpcError:
            pass


async def test_every_rpc_produces_a_span_in_the_callers_trace(
    channel: grpc.aio.Channel, spans: InMemorySpanExporter
) -> None:
    await _call_every_rpc(pb_grpc.FortnoxServiceStub(channel))
    health = health_pb2_grpc.HealthStub(channel)
    await health.Check(health_pb2.HealthCheckRequest(service=""))

    finished = spans.get_finished_spans()
    rpc_names = pb.DESCRIPTOR.services_by_name["FortnoxService"].methods_by_name
    expected = {f"/{SERVICE_FULL_NAME}/{name}" for name in rpc_names}
    assert {s.name for s in finished} == expected
    assert {format(s.context.trace_id, "032x") for s in finished} == {TRACE_ID}
    assert all(s.parent is not None and s.parent.is_remote for s in finished)
