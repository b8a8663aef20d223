"""What a year's changes since its previous import amount to is decided in the domain."""

from __future__ import annotations

import pytest

from core.imports import ChangeKind, VoucherChanges


@pytest.mark.parametrize(("changes", "kind"), [
    (VoucherChanges(None, None, 0, 0, 0), ChangeKind.FIRST_IMPORT),
    (VoucherChanges("i1", "same", 0, 0, 0), ChangeKind.UNCHANGED),
    (VoucherChanges("i1", "same", 0, 0, 0, counted=False), ChangeKind.UNCHANGED),
    (VoucherChanges("i1", "old", 0, 0, 0, counted=False), ChangeKind.UNKNOWN),
    (VoucherChanges("i1", "old", 0, 0, 0), ChangeKind.UNCHANGED),  # other bytes, same vouchers
    (VoucherChanges("i1", "old", 1, 0, 0), ChangeKind.CHANGED),
    (VoucherChanges("i1", "old", 0, 2, 0), ChangeKind.CHANGED),
    (VoucherChanges("i1", "old", 0, 0, 3), ChangeKind.CHANGED),
    (VoucherChanges("i1", "old", 0, 0, 0, other_changed=True), ChangeKind.CHANGED),
])
def test_the_kind_of_a_years_changes(changes: VoucherChanges, kind: ChangeKind) -> None:
    assert changes.kind("same") is kind
