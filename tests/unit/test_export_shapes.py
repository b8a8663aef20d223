"""The export's shapes derived from one another: a voucher row's fields reach the digest and
come from the request by name, and an export record's columns are written from its row type."""

from __future__ import annotations

from dataclasses import fields
from datetime import date

from adapters.sql import statements
from adapters.sql.rows import ExportRow as StoredRow
from core.voucher_export.history import Refusal
from core.voucher_export.model import ExportRequest, ExportRow, ExportVoucher
from server.rpc_exports import _voucher
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb

VOUCHER = ExportVoucher("ext-1", date(2025, 12, 31), "Periodisering", (
    ExportRow(6110, debit=12300, cost_center="CC", project="P1", description="rad"),
    ExportRow(1930, credit=12300)))


def test_the_digest_of_a_voucher_stays_what_stored_requests_were_given() -> None:
    """Request-id reuse compares with digests stored by earlier versions: the same voucher
    must keep giving the same digest."""
    assert VOUCHER.digest() == (
        "8ba241f8ae68b864e1e2e6fe44a2c31f29ef621b68c8471fa6ae9c8422966da3")
    other = ExportVoucher(VOUCHER.external_id, VOUCHER.transaction_date, VOUCHER.description,
                          (VOUCHER.rows[0], ExportRow(1930, credit=12300, description="x")))
    assert other.digest() != VOUCHER.digest()
    request = ExportRequest("t", "r", (VOUCHER,))
    assert request.digest("I") != request.digest("A")


def test_every_field_of_a_request_row_reaches_the_voucher_row() -> None:
    message = v_pb.ExportVoucher(external_id="ext-1", description="Periodisering", rows=[
        v_pb.ExportVoucherRow(account=6110, debit_minor=12300, cost_center="CC", project="P1",
                              description="rad"),
        v_pb.ExportVoucherRow(account=1930, credit_minor=12300)])
    message.transaction_date.year, message.transaction_date.month = 2025, 12
    message.transaction_date.day = 31
    assert _voucher(message, 0) == VOUCHER


def test_a_claim_writes_every_column_and_a_refusal_its_own() -> None:
    claim = statements.CLAIM_EXPORT
    for column in StoredRow._fields:
        assert f"{column} = excluded.{column}" in claim or column in ("tenant", "external_id")
    assert claim.count("?") == len(StoredRow._fields)
    for column in (f.name for f in fields(Refusal)):
        assert f"{column} = ?" in statements.MARK_REJECTED
    refusal = Refusal("FORTNOX_REJECTED", "refused", "2000423", "Kontot finns inte")
    assert statements.refused(refusal) == [
        "FORTNOX_REJECTED", "refused", "2000423", "Kontot finns inte"]
