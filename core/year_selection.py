"""Which Fortnox financial years an import covers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from core.errors import FieldViolation, InvalidRequest
from core.fortnox_api import FinancialYear

YearChoice = int | date
"""A financial year named by Fortnox's id or by any date inside it."""

#: The default: the current financial year and the two before it (what Spiris imports first).
DEFAULT_YEARS = 3


def select_years(
    available: Sequence[FinancialYear], choices: Sequence[YearChoice], today: date
) -> list[FinancialYear]:
    """Resolves ``choices`` against the company's years, oldest first, without duplicates.

    With no choices: the year containing ``today`` (or else the latest year that has started)
    and the ``DEFAULT_YEARS - 1`` years before it.
    """
    ordered = sorted(available, key=lambda y: y.from_date)
    if not choices:
        started = [y for y in ordered if y.from_date <= today]
        if not started:
            raise InvalidRequest(
                "The Fortnox company has no financial year that has started.",
                reason="FINANCIAL_YEAR_NOT_FOUND",
            )
        return started[-DEFAULT_YEARS:]
    chosen: dict[int, FinancialYear] = {}
    violations = []
    for index, choice in enumerate(choices):
        match = next(
            (y for y in ordered
             if (y.id == choice if isinstance(choice, int) else y.contains(choice))),
            None,
        )
        if match is None:
            violations.append(FieldViolation(
                f"years[{index}]", f"no Fortnox financial year matches {choice}"
            ))
        else:
            chosen[match.id] = match
    if violations:
        raise InvalidRequest(
            "A requested financial year does not exist in Fortnox.",
            reason="FINANCIAL_YEAR_NOT_FOUND",
            violations=tuple(violations),
        )
    return sorted(chosen.values(), key=lambda y: y.from_date)
