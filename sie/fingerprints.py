"""Fingerprints of vouchers: which voucher (its key) and what its lines said (a digest).

Two imports of a year are compared by them to tell which vouchers changed, and they are
stored: the bytes hashed (the UTF-8 of `Voucher.source`) and the hash must never change, or
every stored voucher would read as changed. `Fingerprints` takes the reader's events a piece
at a time and is compiled with the reader, so a year's vouchers are fingerprinted in C, not
in a Python loop per voucher (about a tenth of a parser's work in Python).
"""

from __future__ import annotations

import hashlib
from typing import Final

from sie.records import Event, Voucher

DIGEST_SIZE: Final = 16
"""Bytes of one digest: BLAKE2b's digest size parameter, part of the hash (not a cut)."""
_VOUCHER: Final = Voucher
_COPY: Final = hashlib.blake2b.copy
_UPDATE: Final = hashlib.blake2b.update
_DIGEST: Final = hashlib.blake2b.digest
"""The hash's methods, called as functions: no lookup of a method by name per voucher."""


def voucher_key(voucher: Voucher) -> str:
    """``SERIES:NUMBER`` (the voucher's identity in Fortnox within a year)."""
    return f"{voucher.series}:{voucher.number}"


def voucher_digest(source: str) -> bytes:
    """A digest of a voucher's lines as the file states them (``Voucher.source``).

    Hashing the text, rather than re-serialising the parsed voucher, costs a quarter as much.
    The price: if the exporting program changed how it formats vouchers, every voucher would
    show as changed once.
    """
    return hashlib.blake2b(source.encode(), digest_size=DIGEST_SIZE).digest()


class Fingerprints:
    """The keys and digests (`voucher_key`, `voucher_digest`) of the vouchers among the
    events it is given, in order, until taken."""

    def __init__(self) -> None:
        self._blank = hashlib.blake2b(digest_size=DIGEST_SIZE)  # copied: a fifth cheaper
        self._keys: list[str] = []
        self._digests: list[bytes] = []

    def add(self, events: list[Event]) -> bool:
        """Fingerprint the vouchers among `events` (their `source` kept by the reader); tell
        whether any other event is among them."""
        blank, keys, digests = self._blank, self._keys, self._digests
        others = False
        for event in events:
            if type(event) is _VOUCHER:  # the reader's own type: cheaper than isinstance
                keys.append(f"{event.series}:{event.number}")
                digest = _COPY(blank)
                _UPDATE(digest, event.source.encode())
                digests.append(_DIGEST(digest))
            else:
                others = True
        return others

    def take(self) -> tuple[list[str], list[bytes]]:
        """The keys and digests so far, in order; none are kept."""
        keys, digests = self._keys, self._digests
        self._keys, self._digests = [], []
        return keys, digests
