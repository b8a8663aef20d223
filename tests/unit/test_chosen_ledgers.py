"""ImportLedgers' default, set in the domain alone: no ledger chosen means both."""

from __future__ import annotations

import pytest

from core.ledgers.importer import chosen_ledgers
from core.ledgers.model import Ledger

C, S = Ledger.CUSTOMER, Ledger.SUPPLIER


@pytest.mark.parametrize(("asked", "chosen"), [
    ((), (C, S)),
    ((None,), (C, S)),
    ((S,), (S,)),
    ((S, C), (S, C)),
    ((C, C), (C,)),
    ((S, None), (S, C)),
])
def test_the_ledgers_an_import_reads(asked: tuple[Ledger | None, ...],
                                     chosen: tuple[Ledger, ...]) -> None:
    assert chosen_ledgers(asked) == chosen
