"""The sandbox's SIE 4 export passes every control for every seeded company and year,
and consecutive years pass the cross-file opening check."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.testing import SandboxHandle, running_sandbox
from sie import ControlsResult, cross_year_findings, read_controls


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox(rate_limit=10_000, rate_window_seconds=1.0) as handle:
        yield handle


def test_every_tenant_and_year_passes_the_controls(sandbox: SandboxHandle) -> None:
    assert sandbox.tenants
    for tenant in sandbox.tenants:
        token = sandbox.tokens(tenant.id, scopes=["bookkeeping"])["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        results: list[ControlsResult] = []
        with httpx.Client(base_url=sandbox.api_url + "/", headers=headers, timeout=30) as api:
            for year in sorted(tenant.financial_years, key=lambda y: str(y["from"])):
                answer = api.get("sie/4", params={"financialyear": year["id"]})
                assert answer.status_code == 200
                result = read_controls(answer.content)
                current = result.year(0)
                assert current is not None and current.vouchers > 0, (tenant.name, year)
                assert result.findings == (), (tenant.name, year, result.findings)
                results.append(result)
        assert cross_year_findings(results) == [], tenant.name
