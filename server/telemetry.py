"""OpenTelemetry wiring: one tracer and one meter provider per process, the tracing
interceptor, exporters (OTLP when an endpoint is set, stdout when asked, else none)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

SERVICE_NAME = "fortnox-bridge"

#: Probes and grpcurl's discovery calls would drown the traces of real work.
_UNTRACED_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                      "grpc.reflection.v1.ServerReflection")


def build_tracer_provider(
    *, otlp_endpoint: str, console: bool, extra_processors: tuple[SpanProcessor, ...] = ()
) -> TracerProvider:
    """A provider exporting over OTLP when an endpoint is set, to stdout when asked."""
    provider = TracerProvider(resource=_resource())
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    if console:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    return provider


def build_meter_provider(
    *, otlp_endpoint: str, console: bool, extra_readers: tuple[MetricReader, ...] = ()
) -> MeterProvider:
    """A provider exporting the same way as the tracer provider (every 60 s, or
    ``OTEL_METRIC_EXPORT_INTERVAL`` ms)."""
    readers: list[MetricReader] = []
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=otlp_endpoint)))
    if console:
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
    return MeterProvider(resource=_resource(), metric_readers=(*readers, *extra_readers))


def _resource() -> Resource:
    return Resource.create({"service.name": SERVICE_NAME})


def tracing_interceptor(provider: TracerProvider) -> Any:
    """The server interceptor: a span per RPC, parented by the caller's W3C ``traceparent``."""
    untraced = filters.any_of(*(filters.service_name(name) for name in _UNTRACED_SERVICES))
    return aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=provider, filter_=filters.negate(untraced)
    )


def tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The tracer the service's own spans (imports, parsing, Fortnox calls) are made with."""
    return trace.get_tracer(SERVICE_NAME, tracer_provider=provider)
