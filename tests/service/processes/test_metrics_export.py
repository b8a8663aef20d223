"""The real ``serve`` process exports its metrics the way it exports spans: over OTLP to a
collector when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, to stdout with console tracing."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc

from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2_grpc as pb_grpc
from tests.harness.processes import ServeProcess, serving


class Collector(metrics_grpc.MetricsServiceServicer, trace_grpc.TraceServiceServicer):
    """An OTLP/gRPC collector that keeps what it is sent."""

    def __init__(self) -> None:
        self.metrics: list[metrics_pb.ExportMetricsServiceRequest] = []
        self.spans: list[trace_pb.ExportTraceServiceRequest] = []

    def Export(self, request: Any, context: Any) -> Any:
        if isinstance(request, metrics_pb.ExportMetricsServiceRequest):
            self.metrics.append(request)
            return metrics_pb.ExportMetricsServiceResponse()
        self.spans.append(request)
        return trace_pb.ExportTraceServiceResponse()


@pytest.fixture
def collector() -> Iterator[tuple[Collector, int]]:
    kept = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    metrics_grpc.add_MetricsServiceServicer_to_server(kept, server)
    trace_grpc.add_TraceServiceServicer_to_server(kept, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield kept, port
    server.stop(None)


def _fail_one_call_and_stop(served: ServeProcess) -> str:
    """Calls GetImport for an unknown import (IMPORT_NOT_FOUND), SIGTERMs, returns stdout."""
    with grpc.insecure_channel(served.address) as channel, pytest.raises(grpc.RpcError):
        pb_grpc.FortnoxServiceStub(channel).GetImport(
            pb.GetImportRequest(tenant="acme", import_id="x"), timeout=10)
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=20) == 0
    return served.process.stdout.read() if served.process.stdout else ""


def test_metrics_go_over_otlp_to_the_configured_collector(
    serve_env: dict[str, str], collector: tuple[Collector, int]
) -> None:
    kept, port = collector
    env = serve_env | {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}
    with serving(env) as served:
        _fail_one_call_and_stop(served)  # shutting down flushes the last metrics

    points = []
    for request in kept.metrics:
        for resource in request.resource_metrics:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}
            assert service["service.name"] == "fortnox-bridge"
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "rpc.server.duration":
                        assert metric.unit == "ms"
                        points.extend(metric.histogram.data_points)
    attributes = [{a.key: a.value.string_value or a.value.int_value for a in p.attributes}
                  for p in points if p.count]
    assert {"rpc.system": "grpc", "rpc.service": "spiris.skattbokslut.fortnox.v1.FortnoxService",
            "rpc.method": "GetImport", "rpc.grpc.status_code": 5,
            "error.type": "IMPORT_NOT_FOUND"} in attributes
    assert kept.spans, "spans go to the same collector"


def test_console_tracing_prints_the_metrics_too(serve_env: dict[str, str]) -> None:
    with serving(serve_env | {"FORTNOX_BRIDGE_TRACE_CONSOLE": "1"}) as served:
        printed = _fail_one_call_and_stop(served)
    start = printed.index('{\n    "resource_metrics"')
    exported, _ = json.JSONDecoder().raw_decode(printed[start:])
    names = {m["name"] for r in exported["resource_metrics"] for s in r["scope_metrics"]
             for m in s["metrics"]}
    assert "rpc.server.duration" in names
