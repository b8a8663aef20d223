"""``/3/companyinformation``, ``/3/financialyears`` and ``/3/settings/lockedperiod``."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from sandbox import errors
from sandbox.api_common import ApiContext, paginate
from sandbox.errors import FortnoxError
from sandbox.jsonout import FortnoxJSON
from sandbox.model import FinancialYear


async def company_information(ctx: ApiContext) -> Response:
    """The company behind the access token."""
    t = ctx.books.tenant
    return FortnoxJSON({"CompanyInformation": {
        "Address": t.address, "City": t.city, "CompanyName": t.name, "CountryCode": "SE",
        "DatabaseNumber": t.database_number, "OrganizationNumber": t.organisation_number,
        "VisitAddress": t.address, "VisitCity": t.city, "VisitCountryCode": "SE",
        "VisitZipCode": t.zip_code, "ZipCode": t.zip_code,
    }})


def _year(ctx: ApiContext, year: FinancialYear) -> dict[str, Any]:
    return {
        "@url": ctx.url(f"financialyears/{year.id}"), "Id": year.id,
        "FromDate": year.from_date.isoformat(), "ToDate": year.to_date.isoformat(),
        "AccountChartType": "Bas 2024", "AccountingMethod": "ACCRUAL",
    }


async def financial_years(ctx: ApiContext) -> Response:
    """All years, or the one containing ``date`` (the SDK spells it ``Date``)."""
    day = ctx.date_param("date", "Date")
    years = ctx.books.tenant.years
    if day is not None:
        years = [y for y in years if y.contains(day)]
    return paginate(ctx, "FinancialYears", years, lambda y: _year(ctx, y))


async def financial_year(ctx: ApiContext) -> Response:
    """One year by id."""
    year = ctx.books.year(int(ctx.request.path_params["id"]))
    if year is None:
        raise FortnoxError(errors.NOT_FOUND_YEAR)
    return FortnoxJSON({"FinancialYear": _year(ctx, year)})


async def locked_period(ctx: ApiContext) -> Response:
    """The date up to which bookkeeping is locked (no ``EndDate`` when nothing is: the
    model types it as an optional date)."""
    end = ctx.books.locked_until
    return FortnoxJSON({"LockedPeriod": {"EndDate": end.isoformat()} if end else {}})


def selected_year(ctx: ApiContext, *spellings: str) -> FinancialYear:
    """The year named by ``financialyear`` (or one of the documented ``spellings``), else by
    ``financialyeardate``, else Fortnox's preselected year (the one containing today)."""
    year_id = ctx.int_param("financialyear", *spellings)
    if year_id is not None:
        year = ctx.books.year(year_id)
        if year is None:
            raise FortnoxError(errors.UNKNOWN_FINANCIAL_YEAR)
        return year
    day = ctx.date_param("financialyeardate")
    if day is not None:
        found = ctx.books.year_for_date(day)
        if found is None:
            raise FortnoxError(errors.NO_FINANCIAL_YEAR)
        return found
    return ctx.books.current_year(ctx.state.clock.today())
