"""How the controls classify an account number (BAS chart conventions)."""

from __future__ import annotations

_BALANCE_CLASSES = frozenset("12")
_RESULT_CLASSES = frozenset("345678")


def is_result_account(account: str, *, has_result: bool) -> bool:
    """Tell whether `account` is a result (P&L) account rather than a balance account.

    BAS classes 1-2 are balance accounts and 3-8 result accounts; for anything else
    (class 0 or 9, non-numeric numbers) the file decides: an account it states a
    `#RES` for is treated as a result account.
    """
    first = account[:1]
    if first in _BALANCE_CLASSES:
        return False
    if first in _RESULT_CLASSES:
        return True
    return has_result


def is_equity_account(account: str) -> bool:
    """BAS 20xx: equity (retained earnings, the year's result 2099, ...)."""
    return account.startswith("20")


def is_vat_account(account: str) -> bool:
    """BAS 26xx: VAT and excise accounts, settled to the tax account period by period."""
    return account.startswith("26")
