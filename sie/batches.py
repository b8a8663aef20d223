"""A year's records gathered into batches to send, each cut by count and by size.

With a year's records asked for, a parser steps through every event the reader gives it; in
Python that loop, with a call or two per record, was a third of the instructions that sending
records added to the parse. `Batches` is compiled with the reader, as `fingerprints` is.
"""

from __future__ import annotations

from typing import Final

from sie.findings import Finding
from sie.records import Account, Balance, Event, Voucher

Gathered = tuple[list[Account], list[Balance], list[Voucher]]
"""One batch's records: accounts, balances and vouchers, each in the file's order."""

_VOUCHER: Final = Voucher
_BALANCE: Final = Balance
_ACCOUNT: Final = Account


class Batches:
    """Gathers the records worth sending into batches of at most ``max_vouchers`` vouchers,
    ``max_balances`` balances and about ``max_bytes`` of the file (a record counting for
    ``overhead`` bytes beside its text; one longer record is a batch of its own)."""

    def __init__(self, max_vouchers: int, max_balances: int, max_bytes: int, overhead: int,
                 *, keep_source: bool) -> None:
        self._max_vouchers = max_vouchers
        self._max_balances = max_balances
        self._max_bytes = max_bytes
        self._overhead = overhead
        #: Whether a voucher's lines go with it (an encoder leaves them out itself; a batch
        #: that is pickled must not carry them).
        self._keep_source = keep_source
        self._accounts: list[Account] = []
        self._balances: list[Balance] = []
        self._vouchers: list[Voucher] = []
        self._size = 0

    def add(self, events: list[Event], records: bool) -> list[Finding | Balance | Gathered]:
        """In the order they come: the findings among ``events``, their balances (every one,
        for the year's digest of them) and, where ``records`` are gathered, each batch they
        fill."""
        out: list[Finding | Balance | Gathered] = []
        for event in events:
            kind = type(event)  # the reader's own types: cheaper than isinstance
            if kind is _BALANCE:
                out.append(event)  # type: ignore[arg-type]
            elif kind is not _VOUCHER and kind is not _ACCOUNT:
                if isinstance(event, Finding):
                    out.append(event)
                continue
            if not records:
                continue
            if kind is _VOUCHER:
                voucher: Voucher = event  # type: ignore[assignment]
                self._count(len(voucher.source), out)
                self._vouchers.append(voucher if self._keep_source
                                      else voucher._replace(source=""))
            elif kind is _BALANCE:
                balance: Balance = event  # type: ignore[assignment]
                self._count(16 * len(balance.objects), out)
                self._balances.append(balance)
            else:
                account: Account = event  # type: ignore[assignment]
                self._count(len(account.name), out)
                self._accounts.append(account)
            if (len(self._vouchers) >= self._max_vouchers
                    or len(self._balances) >= self._max_balances
                    or self._size >= self._max_bytes):
                out.append(self.take())
        return out

    def _count(self, text: int, out: list[Finding | Balance | Gathered]) -> None:
        """Counts a record of ``text`` bytes into the batch, ending the batch first where the
        record would take it over ``max_bytes``."""
        size = self._overhead + text
        if self._size and self._size + size > self._max_bytes:
            out.append(self.take())
        self._size += size

    def take(self) -> Gathered:
        """The batch gathered so far (perhaps empty), and a new one begun."""
        gathered = (self._accounts, self._balances, self._vouchers)
        self._accounts, self._balances, self._vouchers, self._size = [], [], [], 0
        return gathered
