"""``/3/vouchers``, ``/3/voucherseries`` and ``/3/accounts``: the bookkeeping resources."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from sandbox import errors
from sandbox.api_common import ApiContext, LostAnswer, paginate
from sandbox.api_company import selected_year
from sandbox.errors import FortnoxError
from sandbox.jsonout import FortnoxJSON, money
from sandbox.model import Account, Voucher, VoucherRow
from sandbox.posting import post_voucher


def voucher_summary(url: str, v: Voucher) -> dict[str, Any]:
    """A voucher as a list item (no rows)."""
    return {
        "@url": url, "ApprovalState": 0, "Comments": v.comments, "Description": v.description,
        "ReferenceNumber": v.reference_number, "ReferenceType": v.reference_type,
        "TransactionDate": v.transaction_date.isoformat(), "VoucherNumber": v.number,
        "VoucherSeries": v.series, "Year": v.year_id,
    }


def _row(row: VoucherRow) -> dict[str, Any]:
    return {
        "Account": row.account, "CostCenter": row.cost_center,
        "Credit": money(-row.amount if row.amount < 0 else 0),
        "Debit": money(row.amount if row.amount > 0 else 0), "Description": row.description,
        "Project": row.project, "Quantity": row.quantity, "Removed": row.removed,
        "TransactionInformation": row.transaction_information,
    }


def voucher_detail(url: str, v: Voucher) -> dict[str, Any]:
    """A voucher with its rows (removed rows included, flagged ``Removed``)."""
    return {**voucher_summary(url, v), "CostCenter": "", "Project": "",
            "VoucherRows": [_row(r) for r in v.rows]}


def _voucher_url(ctx: ApiContext, v: Voucher) -> str:
    return ctx.url(f"vouchers/{v.series}/{v.number}?financialyear={v.year_id}")


async def vouchers(ctx: ApiContext) -> Response:
    """A year's vouchers (optionally one series), with ``fromdate``/``todate``."""
    year = selected_year(ctx)
    series = ctx.request.path_params.get("series")
    if series is not None and series not in ctx.books.series:
        raise FortnoxError(errors.SERIES_NOT_FOUND, series)
    items = ctx.books.vouchers(year.id, series)
    start, end = ctx.date_param("fromdate"), ctx.date_param("todate")
    if start or end:
        items = [v for v in items if (not start or v.transaction_date >= start)
                 and (not end or v.transaction_date <= end)]
    return paginate(ctx, "Vouchers", items, lambda v: voucher_summary(_voucher_url(ctx, v), v))


async def voucher(ctx: ApiContext) -> Response:
    """One voucher by series, number and ``financialyear``."""
    year = selected_year(ctx)
    params = ctx.request.path_params
    try:
        number = int(params["number"])
    except ValueError as exc:
        raise FortnoxError(errors.INVALID_PARAMETER, "VoucherNumber") from exc
    found = ctx.books.voucher(year.id, params["series"], number)
    if found is None:
        raise FortnoxError(errors.NOT_FOUND_VOUCHER)
    return FortnoxJSON({"Voucher": voucher_detail(_voucher_url(ctx, found), found)})


async def create_voucher(ctx: ApiContext) -> Response:
    """Book a voucher; with a ``commit_drop`` fault the answer is lost after booking."""
    year = selected_year(ctx)
    try:
        body = json.loads(await ctx.request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise FortnoxError(errors.INVALID_JSON) from exc
    booked = post_voucher(ctx.books, year, body, ctx.state.clock.now())
    ctx.state.topic_log.voucher("created", ctx.books.tenant.id, booked.year_id, booked.series,
                                booked.number)
    response = FortnoxJSON({"Voucher": voucher_detail(_voucher_url(ctx, booked), booked)},
                           status_code=201, headers={"Location": "vouchers"})
    if ctx.fault("commit_drop"):
        return LostAnswer(response)
    return response


async def voucher_series(ctx: ApiContext) -> Response:
    """The voucher series of a year (list items carry no ``NextVoucherNumber``)."""
    year = selected_year(ctx)
    return paginate(ctx, "VoucherSeriesCollection", list(ctx.books.series.values()),
                    lambda s: {"@url": ctx.url(f"voucherseries/{s.code}"), "Code": s.code,
                               "Description": s.description, "Manual": s.manual,
                               "Year": year.id})


async def one_voucher_series(ctx: ApiContext) -> Response:
    """One series with its next number in the selected year."""
    year = selected_year(ctx)
    code = ctx.request.path_params["code"]
    found = ctx.books.series.get(code)
    if found is None:
        raise FortnoxError(errors.NOT_FOUND_SERIES)
    return FortnoxJSON({"VoucherSeries": {
        "@url": ctx.url(f"voucherseries/{code}"), "Code": code,
        "Description": found.description, "Manual": found.manual,
        "NextVoucherNumber": ctx.books.next_number(year.id, code), "Year": year.id}})


def _account(ctx: ApiContext, year_id: int, account: Account, opening: int,
             closing: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "@url": ctx.url(f"accounts/{account.number}?financialyear={year_id}"),
        "Active": account.active, "BalanceBroughtForward": money(opening), "CostCenter": "",
        "CostCenterSettings": "ALLOWED", "Description": account.description,
        "Number": account.number, "Project": "", "ProjectSettings": "ALLOWED",
        "SRU": account.sru, "VATCode": account.vat_code, "Year": year_id,
    }
    if closing is not None:
        item["BalanceCarriedForward"] = money(closing)
    return item


async def accounts(ctx: ApiContext) -> Response:
    """The chart of accounts of a year, with ``BalanceBroughtForward``."""
    year = selected_year(ctx)
    balances = ctx.books.balances(year.id)
    chart = sorted(ctx.books.accounts.values(), key=lambda a: a.number)
    return paginate(ctx, "Accounts", chart, lambda a: _account(
        ctx, year.id, a, balances.opening.get(a.number, 0), None))


async def account(ctx: ApiContext) -> Response:
    """One account with its opening and closing balance in the selected year."""
    year = selected_year(ctx)
    try:
        found = ctx.books.accounts.get(int(ctx.request.path_params["number"]))
    except ValueError:
        found = None
    if found is None:
        raise FortnoxError(errors.ACCOUNT_NOT_FOUND)
    balances = ctx.books.balances(year.id)
    opening = balances.opening.get(found.number, 0)
    return FortnoxJSON({"Account": _account(
        ctx, year.id, found, opening, opening + balances.movement.get(found.number, 0))})
