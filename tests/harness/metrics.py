"""The whole service in-process against the sandbox, with metrics and spans kept in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util.types import AttributeValue

from adapters import metrics as adapter_metrics
from server.app import RunningServer
from server.config import Settings
from server.telemetry import build_meter_provider, build_tracer_provider
from tests.harness.service import serving_in_process

Attributes = dict[str, AttributeValue]


@dataclass
class Point:
    """One collected data point: its metric, attributes and value (sum, count of a histogram)."""

    metric: str
    unit: str
    attributes: Attributes
    value: float


@contextmanager
def recording_metrics() -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    """A meter provider read in memory, bound as ``serve`` binds it, unbound afterwards."""
    reader = InMemoryMetricReader()
    provider = build_meter_provider(otlp_endpoint="", console=False, extra_readers=(reader,))
    adapter_metrics.use_meter_provider(provider)
    try:
        yield provider, reader
    finally:
        adapter_metrics.use_meter_provider(NoOpMeterProvider())
        provider.shutdown()


def points(reader: InMemoryMetricReader) -> list[Point]:
    """Every data point collected so far (histograms count their recordings)."""
    found = []
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    found.append(Point(
                        metric.name, metric.unit or "", dict(point.attributes or {}),
                        float(point.count if value is None else value),  # type: ignore[union-attr]
                    ))
    return found


def total(found: list[Point], metric: str, attributes: Attributes | None = None) -> float:
    """The sum over the points of ``metric`` whose attributes include ``attributes``."""
    wanted = (attributes or {}).items()
    return sum(p.value for p in found
               if p.metric == metric and all(p.attributes.get(k) == v for k, v in wanted))


@asynccontextmanager
async def serving_metered(
    settings: Settings, meter_provider: MeterProvider | None = None,
) -> AsyncIterator[tuple[RunningServer, InMemorySpanExporter]]:
    """The service in this process with its meters, and its spans kept in memory."""
    spans = InMemorySpanExporter()
    tracer_provider: TracerProvider = build_tracer_provider(
        otlp_endpoint="", console=False, extra_processors=(SimpleSpanProcessor(spans),))
    async with serving_in_process(settings, tracer_provider, meter_provider) as running:
        yield running, spans
