"""Fingerprints of vouchers and balances, to tell what changed between two imports of a year."""

from __future__ import annotations

import hashlib

from sie import Balance, Voucher

#: Keys of non-voucher fingerprints start with this, so they never collide with a voucher key.
PSEUDO_PREFIX = "~"
BALANCES_KEY = "~balances"


def voucher_key(voucher: Voucher) -> str:
    """``SERIES:NUMBER`` (the voucher's identity in Fortnox within a year)."""
    return f"{voucher.series}:{voucher.number}"


def voucher_digest(voucher: Voucher) -> str:
    """A digest of everything that makes the voucher what it is (not its line in the file)."""
    parts = [voucher.date.isoformat(), voucher.text, voucher.reg_date.isoformat()
             if voucher.reg_date else ""]
    for row in voucher.rows:
        parts += [row.kind, row.account, str(row.amount), repr(row.objects),
                  row.date.isoformat() if row.date else "", row.text]
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


class BalanceDigest:
    """An order-sensitive digest of a file's stated balances, updated as they stream by."""

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=16)

    def add(self, balance: Balance) -> None:
        """Adds one balance record."""
        self._hash.update(
            f"{balance.kind}\x1f{balance.year}\x1f{balance.account}\x1f{balance.amount}"
            f"\x1f{balance.objects!r}\x1f{balance.period}\x1e".encode()
        )

    def hexdigest(self) -> str:
        """The digest so far."""
        return self._hash.hexdigest()
