"""Fingerprints of vouchers and balances, to tell what changed between two imports of a year."""

from __future__ import annotations

import hashlib

from sie import Balance, Voucher

#: Keys of non-voucher fingerprints start with ``~``, so they never collide with a voucher key.
BALANCES_KEY = "~balances"


def voucher_key(voucher: Voucher) -> str:
    """``SERIES:NUMBER`` (the voucher's identity in Fortnox within a year)."""
    return f"{voucher.series}:{voucher.number}"


def voucher_digest(source: str) -> str:
    """A digest of a voucher's lines as the file states them (``Voucher.source``).

    Hashing the text, rather than re-serialising the parsed voucher, costs a quarter as much.
    The price: if the exporting program changed how it formats vouchers, every voucher would
    show as changed once.
    """
    return hashlib.blake2b(source.encode(), digest_size=16).hexdigest()


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
