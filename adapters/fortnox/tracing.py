"""Attribute names of the client spans around Fortnox calls (never URLs with ids, never tokens)."""

from __future__ import annotations

from opentelemetry import trace

# The attributes spans and metrics share, under OpenTelemetry's names.
from adapters.metrics import METHOD as METHOD
from adapters.metrics import ROUTE as ROUTE
from adapters.metrics import SERVER as SERVER
from adapters.metrics import STATUS as STATUS

TRACER_NAME = "fortnox_bridge.adapters.fortnox"

#: Our tenant (the Skatt & Bokslut company a call is made for), never Fortnox's ``TenantId``.
TENANT = "skattbokslut.tenant"
RETRIES = "fortnox.retry_count"
ERROR_CODE = "fortnox.error_code"
BYTES = "fortnox.response_bytes"
GRANT_TYPE = "oauth.grant_type"


def get_tracer(provider: trace.TracerProvider | None) -> trace.Tracer:
    """The adapter's tracer from ``provider`` (the global provider when ``None``)."""
    return trace.get_tracer(TRACER_NAME, tracer_provider=provider)
