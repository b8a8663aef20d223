"""Fortnox's versioned event types map to the kinds of book change a caller sees."""

from __future__ import annotations

import pytest

from core.feed.model import ChangeKind, change_kind


@pytest.mark.parametrize(("event_type", "kind"), [
    ("voucher-created-v1", ChangeKind.VOUCHER_CREATED),
    ("voucher-updated-v2", ChangeKind.VOUCHER_UPDATED),
    ("voucher-deleted-v1", ChangeKind.VOUCHER_DELETED),
    ("financial-year-created-v1", ChangeKind.FINANCIAL_YEAR_CHANGED),
    ("invoice-bookkeep-v1", ChangeKind.INVOICE_BOOKED),
    ("invoicepayment-bookkeep-v1", ChangeKind.INVOICE_PAYMENT),
    ("invoicepayment-deleted-v1", ChangeKind.INVOICE_PAYMENT),
    ("supplier-invoice-bookkeep-v1", ChangeKind.SUPPLIER_INVOICE_BOOKED),
    ("supplier-invoice-cancelled-v1", ChangeKind.SUPPLIER_INVOICE_BOOKED),
    ("customer-updated-v1", ChangeKind.OTHER),
    ("voucher-created", ChangeKind.VOUCHER_CREATED),  # no version: read as it stands
    ("voucher-created-vx", ChangeKind.OTHER),
])
def test_event_types_map_to_kinds(event_type: str, kind: ChangeKind) -> None:
    assert change_kind(event_type) is kind
