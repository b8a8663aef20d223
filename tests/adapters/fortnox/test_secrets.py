"""No token, code or client secret in any log record, span or error of a full flow."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.fortnox import FortnoxAdapter
from adapters.sqlite.connections import SqliteTokenStore
from core.errors import DomainError, ReconnectRequired
from sandbox.testing import SandboxHandle
from tests.adapters.fortnox.conftest import TENANT, MovableClock


class _Everything(logging.Handler):
    """Keeps every record of every logger, formatted with all its attributes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(record.getMessage())
        self.texts.append(repr(vars(record)))


async def test_full_flow_leaks_no_secret(
    adapter: FortnoxAdapter, sandbox: SandboxHandle, store: SqliteTokenStore,
    clock: MovableClock, spans: InMemorySpanExporter,
) -> None:
    handler = _Everything()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    secrets = {sandbox.client_secret}
    errors: list[DomainError] = []
    try:
        request = await adapter.connections.begin_connect(TENANT, sandbox.redirect_uri)
        root.removeHandler(handler)  # the browser's part: it sees the code, we do not log it
        code = sandbox.consent_code(None, sandbox.redirect_uri, state=request.state)
        root.addHandler(handler)
        secrets.add(code)
        connection = await adapter.connections.complete_connect(request.state, code)
        for _ in range(2):
            tokens = await store.current_tokens(TENANT)
            secrets |= {tokens.access_token, tokens.refresh_token}
            await adapter.api.financial_years(TENANT)
            clock.advance(minutes=58)
            await adapter.api.company_information(TENANT)
        tokens = await store.current_tokens(TENANT)
        secrets |= {tokens.access_token, tokens.refresh_token}
        sandbox.add_fault("error", status=503, count=1)
        await adapter.api.financial_years(TENANT)
        sandbox.invalidate_refresh_tokens(int(connection.fortnox_tenant_id))
        clock.advance(hours=2)
        with pytest.raises(ReconnectRequired) as dead:
            await adapter.api.company_information(TENANT)
        errors.append(dead.value)
        await adapter.connections.disconnect(TENANT)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)

    recorded = [*handler.texts]
    for span in spans.get_finished_spans():
        recorded.append(span.to_json())
    for error in errors:
        recorded += [str(error), repr(error.metadata), repr(error.__cause__),
                     repr(error.__context__)]
    assert len(secrets) == 8  # secret, code, three generations of access and refresh tokens
    assert any("fortnox" in text for text in recorded)  # the capture did capture
    assert len(spans.get_finished_spans()) >= 8
    leaks = [(secret[:6], text[:300]) for secret in secrets for text in recorded
             if secret in text]
    assert leaks == []
