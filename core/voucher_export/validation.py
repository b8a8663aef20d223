"""Validation before posting: everything is checked, every problem is reported, nothing is posted
while any remains. The checks mirror Fortnox's own voucher rules so a rejection at POST time is
the exception, not the way problems are found."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from core.errors import FieldViolation, InvalidRequest
from core.fortnox_api import Account, CostCenter, FinancialYear, Project
from core.voucher_export.answer import require_answer_fits
from core.voucher_export.model import ExportRequest, ExportRow, ExportVoucher, Target
from core.voucher_export.sie_file import least_file_bytes
from sie.values import MAX_INTEGER_DIGITS

#: Fortnox's limits on voucher texts and dimensions.
MAX_DESCRIPTION = 200
MAX_EXTERNAL_ID = 200
MAX_ROW_TEXT = 100
MAX_COST_CENTER = 10
MAX_PROJECT = 20
MAX_SERIES = 10
MAX_VOUCHERS = 5000
#: The largest row amount (öre) each target takes: Fortnox at most 14 digits including the
#: two decimals, a SIE file at most 15 digits before them.
MAX_AMOUNT = {
    Target.FORTNOX_API: 10**14 - 1,
    Target.SIE_4I_FILE: 10**(MAX_INTEGER_DIGITS + 2) - 1,
}
_TARGET_LIMIT = {
    Target.FORTNOX_API: "Fortnox takes at most 14 digits including the decimals",
    Target.SIE_4I_FILE: f"a SIE file takes at most {MAX_INTEGER_DIGITS} digits before the decimals",
}


@dataclass(frozen=True)
class BookFacts:
    """What Fortnox says about the books the vouchers go into."""

    years: Sequence[FinancialYear]
    accounts: Mapping[int, Mapping[int, Account]]
    series: Mapping[int, frozenset[str]]
    locked_until: date | None
    cost_centers: Mapping[str, CostCenter] | None = None
    projects: Mapping[str, Project] | None = None

    def year_for(self, day: date) -> FinancialYear | None:
        """The financial year containing ``day``."""
        return next((y for y in self.years if y.contains(day)), None)


def check_request(request: ExportRequest) -> list[FieldViolation]:
    """The problems visible in the request alone (shape, texts, balance). A valid request whose
    answer could not fit raises ``ANSWER_TOO_LARGE`` at once, a reason of its own: the vouchers
    are right, there are just too many of them for one answer."""
    problems: list[FieldViolation] = []
    if not request.vouchers:
        problems.append(FieldViolation("vouchers", "must hold at least one voucher"))
    if len(request.vouchers) > MAX_VOUCHERS:
        problems.append(FieldViolation("vouchers", f"at most {MAX_VOUCHERS} per request"))
    if len(request.series) > MAX_SERIES:
        problems.append(FieldViolation("voucher_series", f"at most {MAX_SERIES} characters"))
    seen: set[str] = set()
    for index, voucher in enumerate(request.vouchers):
        problems += _check_voucher(f"vouchers[{index}]", voucher, seen, request.target)
    if not problems:
        if request.target is Target.SIE_4I_FILE:  # at least: the file is checked once written
            least = least_file_bytes(request, request.series)
            require_answer_fits(request, request.series, least, exact=False)
        else:  # at most: the closing series is not known here, so the longest stands for it
            require_answer_fits(request, request.series or "I" * MAX_SERIES)
    return problems


def _check_voucher(path: str, voucher: ExportVoucher, seen: set[str], target: Target
                   ) -> list[FieldViolation]:
    problems: list[FieldViolation] = []
    ext = voucher.external_id
    if not ext.strip() or len(ext) > MAX_EXTERNAL_ID:
        problems.append(FieldViolation(
            f"{path}.external_id", f"must be 1-{MAX_EXTERNAL_ID} characters"))
    elif ext in seen:
        problems.append(FieldViolation(f"{path}.external_id", f"{ext!r} appears twice"))
    seen.add(ext)
    if voucher.transaction_date is None:
        problems.append(FieldViolation(f"{path}.transaction_date", "is required"))
    if not voucher.description.strip() or len(voucher.description) > MAX_DESCRIPTION:
        problems.append(FieldViolation(
            f"{path}.description", f"must be 1-{MAX_DESCRIPTION} characters (Fortnox needs a text)",
        ))
    if len(voucher.rows) < 2:
        problems.append(FieldViolation(f"{path}.rows", "a voucher needs at least two rows"))
    for number, row in enumerate(voucher.rows):
        where = f"{path}.rows[{number}]"
        if not 1000 <= row.account <= 9999:
            problems.append(FieldViolation(f"{where}.account", "must be a 4-digit account"))
        if row.debit < 0 or row.credit < 0 or (row.debit > 0) == (row.credit > 0):
            problems.append(FieldViolation(
                where, "exactly one of debit_minor and credit_minor must be positive"))
        for name, amount in (("debit_minor", row.debit), ("credit_minor", row.credit)):
            if amount > MAX_AMOUNT[target]:
                problems.append(FieldViolation(
                    f"{where}.{name}",
                    f"at most {MAX_AMOUNT[target]} öre: {_TARGET_LIMIT[target]}"))
        if len(row.cost_center) > MAX_COST_CENTER:
            problems.append(FieldViolation(f"{where}.cost_center", "at most 10 characters"))
        if len(row.project) > MAX_PROJECT:
            problems.append(FieldViolation(f"{where}.project", "at most 20 characters"))
        if len(row.description) > MAX_ROW_TEXT:
            problems.append(FieldViolation(
                f"{where}.description", f"at most {MAX_ROW_TEXT} characters"))
    imbalance = sum(r.debit - r.credit for r in voucher.rows)
    if voucher.rows and imbalance:
        problems.append(FieldViolation(
            f"{path}.rows", f"debit and credit differ by {imbalance} öre; they must balance"))
    return problems


def check_against_books(
    vouchers: Sequence[tuple[int, ExportVoucher]], series: str, facts: BookFacts
) -> list[FieldViolation]:
    """The problems only Fortnox's books reveal: year, lock, series, accounts.

    ``vouchers`` pairs each voucher with its index in the request, for the field paths.
    """
    problems: list[FieldViolation] = []
    for index, voucher in vouchers:
        path = f"vouchers[{index}]"
        day = voucher.transaction_date
        assert day is not None, "check_request runs first"
        year = facts.year_for(day)
        if year is None:
            problems.append(FieldViolation(
                f"{path}.transaction_date", f"{day} is in no Fortnox financial year"))
            continue
        if facts.locked_until is not None and day <= facts.locked_until:
            problems.append(FieldViolation(
                f"{path}.transaction_date",
                f"{day} is in a locked period (locked until {facts.locked_until})"))
        if series not in facts.series.get(year.id, frozenset()):
            problems.append(FieldViolation(
                "voucher_series", f"series {series!r} does not exist in year {year.id}"))
        chart = facts.accounts.get(year.id, {})
        for number, row in enumerate(voucher.rows):
            account = chart.get(row.account)
            if account is None:
                problems.append(FieldViolation(
                    f"{path}.rows[{number}].account",
                    f"account {row.account} does not exist in year {year.id}"))
            elif not account.active:
                problems.append(FieldViolation(
                    f"{path}.rows[{number}].account", f"account {row.account} is inactive"))
            problems += _dimensions(f"{path}.rows[{number}]", row, account, facts)
    return _unique(problems)


def _dimensions(where: str, row: ExportRow, account: Account | None, facts: BookFacts
                ) -> list[FieldViolation]:
    """A row's cost centre and project must exist and be active, and be given when the
    account demands one (``MANDATORY``) and left out when it refuses one (``NOTALLOWED``)."""
    checks: tuple[tuple[str, str, str, Mapping[str, CostCenter | Project] | None, str, str],
                  ...] = (
        ("cost_center", "cost centre", row.cost_center, facts.cost_centers, "is inactive",
         account.cost_center_settings if account else ""),
        ("project", "project", row.project, facts.projects, "is completed",
         account.project_settings if account else ""),
    )
    problems = []
    for field, noun, code, known, inactive, setting in checks:
        if setting == "MANDATORY" and not code:
            problems.append(FieldViolation(
                f"{where}.{field}", f"account {row.account} needs a {noun}"))
        elif setting == "NOTALLOWED" and code:
            problems.append(FieldViolation(
                f"{where}.{field}", f"account {row.account} takes no {noun}"))
        found = known.get(code) if code and known is not None else None
        if code and known is not None and (found is None or not found.active):
            problems.append(FieldViolation(
                f"{where}.{field}",
                f"{noun} {code!r} " + ("does not exist" if found is None else inactive)))
    return problems


def raise_if_any(problems: Sequence[FieldViolation]) -> None:
    """Raises ``InvalidRequest`` carrying every problem, if there is one."""
    if problems:
        raise InvalidRequest(
            f"{len(problems)} problem(s) in the vouchers; nothing was posted.",
            reason="VOUCHERS_INVALID",
            metadata={"violations": str(len(problems))},
            violations=tuple(problems),
        )


def _unique(problems: list[FieldViolation]) -> list[FieldViolation]:
    return list(dict.fromkeys(problems))
