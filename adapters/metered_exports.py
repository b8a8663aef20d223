"""The export history, counted for operators: claims this process holds, lease take-overs and
claims lost to one.

A wrapper rather than a line in each store, so both backends are counted the same way; the
methods it does not count pass through to the store untouched (a new store method needs
nothing here). A claim is held from ``TAKEN`` until the voucher is marked (created, rejected
or unknown); one taken from another owner whose unsettled record it replaced is a take-over
(that owner's lease ran out: it died or hung); one whose renewal, proof or write is refused
because another took it over is lost (this process was the one that hung), and held no
longer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from adapters import metrics
from adapters.metrics import ClaimKind
from core.voucher_export.history import (
    ClaimLost,
    ClaimStatus,
    ExportClaim,
    ExportHistory,
    Fence,
    Refusal,
)
from core.voucher_export.model import VoucherResult

_KIND = ClaimKind.VOUCHER_EXPORT


class MeteredExportHistory:
    """``ExportHistory`` over another one, recording ``claims.active`` and take-overs."""

    def __init__(self, inner: ExportHistory) -> None:
        self._inner = inner
        self._held: set[tuple[str, str]] = set()

    def __getattr__(self, name: str) -> Any:
        """Every method not counted here is the inner history's, as it is."""
        if name.startswith("_"):  # not the inner's private parts (nor itself, before set)
            raise AttributeError(name)
        return getattr(self._inner, name)

    async def claim(
        self, tenant: str, external_id: str, request_id: str, payload_sha256: str, marker: str,
        financial_year_id: int, requested_by: str, *, series: str, owner: str, lease: timedelta,
    ) -> ExportClaim:
        claim = await self._inner.claim(
            tenant, external_id, request_id, payload_sha256, marker, financial_year_id,
            requested_by, series=series, owner=owner, lease=lease)
        if claim.status is ClaimStatus.TAKEN:
            previous = claim.record
            if previous is not None and not previous.status.settled and previous.owner != owner:
                metrics.lease_taken_over(_KIND)
            if (tenant, external_id) not in self._held:
                self._held.add((tenant, external_id))
                metrics.claim_taken(_KIND)
        return claim

    async def renew(
        self, tenant: str, external_id: str, fence: Fence, lease: timedelta
    ) -> bool:
        held = await self._inner.renew(tenant, external_id, fence, lease)
        if not held:
            self._lose(tenant, external_id)
        return held

    async def mark_unknown(self, tenant: str, external_id: str, fence: Fence) -> None:
        with self._fenced(tenant, external_id):
            await self._inner.mark_unknown(tenant, external_id, fence)
        self._release(tenant, external_id)

    async def mark_created(
        self, tenant: str, external_id: str, series: str, number: int, financial_year_id: int,
        fence: Fence,
    ) -> VoucherResult:
        with self._fenced(tenant, external_id):
            result = await self._inner.mark_created(
                tenant, external_id, series, number, financial_year_id, fence)
        self._release(tenant, external_id)
        return result

    async def mark_rejected(
        self, tenant: str, external_id: str, refusal: Refusal, fence: Fence
    ) -> VoucherResult:
        with self._fenced(tenant, external_id):
            result = await self._inner.mark_rejected(tenant, external_id, refusal, fence)
        self._release(tenant, external_id)
        return result

    @contextlib.contextmanager
    def _fenced(self, tenant: str, external_id: str) -> Iterator[None]:
        """Counts a write refused for a stale token as a lost claim."""
        try:
            yield
        except ClaimLost:
            self._lose(tenant, external_id)
            raise

    def _lose(self, tenant: str, external_id: str) -> None:
        if (tenant, external_id) in self._held:
            metrics.claim_lost(_KIND)
        self._release(tenant, external_id)

    def _release(self, tenant: str, external_id: str) -> None:
        if (tenant, external_id) in self._held:
            self._held.discard((tenant, external_id))
            metrics.claim_released(_KIND)
