"""Export requests for the tests and the benchmark: balanced year-end vouchers."""

from __future__ import annotations

import uuid
from datetime import date

from google.type import date_pb2

from spiris.skattbokslut.fortnox.v1 import fortnox_service_pb2 as pb
from spiris.skattbokslut.fortnox.v1 import vouchers_pb2 as v_pb


def voucher(external_id: str, day: date, amount: int, *, debit: int = 6110,
            credit: int = 1930, text: str = "Periodisering") -> v_pb.ExportVoucher:
    """A balanced two-row voucher."""
    return v_pb.ExportVoucher(
        external_id=external_id,
        transaction_date=date_pb2.Date(year=day.year, month=day.month, day=day.day),
        description=text,
        rows=[v_pb.ExportVoucherRow(account=debit, debit_minor=amount, description="rad"),
              v_pb.ExportVoucherRow(account=credit, credit_minor=amount)],
    )


def request(tenant: str, vouchers: list[v_pb.ExportVoucher], request_id: str | None = None,
            **fields: object) -> pb.ExportVouchersRequest:
    """An ExportVouchers request with a fresh request id unless one is given."""
    return pb.ExportVouchersRequest(tenant=tenant, request_id=request_id or str(uuid.uuid4()),
                                    vouchers=vouchers, **fields)  # type: ignore[arg-type]


def many(prefix: str, day: date, count: int) -> list[v_pb.ExportVoucher]:
    """``count`` distinct vouchers on ``day``."""
    return [voucher(f"{prefix}-{n}", day, 100 * (n + 1)) for n in range(count)]
