"""Fingerprints of vouchers and balances, to tell what changed between two imports of a year.

They travel and are stored in batches (``DigestBatch``): the keys as one text, the digests
as one byte string, so neither a pipe, the event loop nor the database handles a voucher at
a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from sie import Balance
from sie.fingerprints import DIGEST_SIZE as DIGEST_SIZE
from sie.fingerprints import voucher_digest as voucher_digest
from sie.fingerprints import voucher_key as voucher_key

# ``DIGEST_SIZE``, ``voucher_key`` and ``voucher_digest`` are ``sie.fingerprints``' (compiled
# with the reader, which fingerprints a year's vouchers in C); the bytes they hash are those
# the hex digests stored before m011 spelled.

#: Keys of non-voucher fingerprints start with ``~``, so they never collide with a voucher key.
BALANCES_KEY = "~balances"
#: What separates the keys of a batch: a SIE field never holds a line end.
KEY_SEPARATOR = "\n"


@dataclass(frozen=True)
class DigestBatch:
    """Consecutive fingerprints of a year's file: ``keys`` joined by ``KEY_SEPARATOR``,
    ``digests`` end to end in the same order; ``start`` is the position of the first in the
    file (a later fingerprint of the same key wins)."""

    start: int
    keys: str
    digests: bytes

    def __len__(self) -> int:
        return len(self.digests) // DIGEST_SIZE

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, bytes]], start: int = 0) -> DigestBatch:
        """A batch of (key, digest) pairs."""
        listed = list(pairs)
        for key, digest in listed:
            if KEY_SEPARATOR in key or len(digest) != DIGEST_SIZE:
                raise ValueError(f"not a fingerprint: {key!r}")
        return cls(start, KEY_SEPARATOR.join(k for k, _ in listed),
                   b"".join(d for _, d in listed))

    @classmethod
    def joined(cls, batches: Iterable[DigestBatch]) -> DigestBatch:
        """Consecutive batches as one."""
        listed = [b for b in batches if len(b)]
        if not listed:
            return cls(0, "", b"")
        return cls(listed[0].start, KEY_SEPARATOR.join(b.keys for b in listed),
                   b"".join(b.digests for b in listed))

    def pairs(self) -> Iterator[tuple[str, bytes]]:
        """(key, digest) in order."""
        if not self.digests:
            return
        digests = self.digests
        for index, key in enumerate(self.keys.split(KEY_SEPARATOR)):
            yield key, digests[index * DIGEST_SIZE:(index + 1) * DIGEST_SIZE]


class Matches(NamedTuple):
    """Going from one import's fingerprints of a year to another's: how many the new one
    added, how many it changed, and how many both have."""

    added: int
    changed: int
    matched: int


class Comparison(NamedTuple):
    """Two imports' fingerprints of a year compared: how many of vouchers the old one kept,
    and the matches of vouchers and of other things (keys starting with ``~``)."""

    kept: int
    kept_others: int
    vouchers: Matches
    others: Matches


def compare(old: Iterable[DigestBatch], new: Iterable[DigestBatch]) -> Comparison:
    """Compares two imports' fingerprints of one year, each given in file order."""
    before: dict[str, bytes] = {}
    for batch in old:
        before.update(batch.pairs())
    after: dict[str, bytes] = {}
    for batch in new:
        after.update(batch.pairs())
    counts = {False: [0, 0, 0], True: [0, 0, 0]}  # by pseudo: added, changed, matched
    for key, digest in after.items():
        tally = counts[key.startswith("~")]
        previous = before.get(key)
        if previous is None:
            tally[0] += 1
        else:
            tally[2] += 1
            if previous != digest:
                tally[1] += 1
    others = sum(1 for key in before if key.startswith("~"))
    return Comparison(len(before) - others, others, Matches(*counts[False]),
                      Matches(*counts[True]))


class BalanceDigest:
    """An order-sensitive digest of a file's stated balances, updated as they stream by."""

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=DIGEST_SIZE)

    def add(self, balance: Balance) -> None:
        """Adds one balance record."""
        self._hash.update(
            f"{balance.kind}\x1f{balance.year}\x1f{balance.account}\x1f{balance.amount}"
            f"\x1f{balance.objects!r}\x1f{balance.period}\x1e".encode()
        )

    def digest(self) -> bytes:
        """The digest so far."""
        return self._hash.digest()
