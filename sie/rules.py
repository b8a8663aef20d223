"""Which records each file type requires or forbids (sie-format.md §7, spec §6 table).

Balance records are "mandatory when non-zero", so their absence is never reported.
"""

from __future__ import annotations

ALWAYS = ("#FLAGGA", "#PROGRAM", "#FORMAT", "#GEN", "#FNAMN")

MANDATORY: dict[str, tuple[str, ...]] = {
    "1": (*ALWAYS, "#RAR", "#KONTO", "#SRU"),
    "2": (*ALWAYS, "#SIETYP", "#RAR", "#OMFATTN", "#KONTO", "#SRU"),
    "3": (*ALWAYS, "#SIETYP", "#RAR", "#OMFATTN", "#KONTO"),
    "4E": (*ALWAYS, "#SIETYP", "#RAR", "#KONTO"),
    "4I": (*ALWAYS, "#SIETYP"),
    "4": (*ALWAYS, "#SIETYP"),
}
"""Mandatory labels per type key (`4` = type 4 of unknown flavour)."""

FORBIDDEN_IN_4I = frozenset(
    {"#BKOD", "#OMFATTN", "#IB", "#UB", "#OIB", "#OUB", "#RES", "#PSALDO", "#PBUDGET"}
)

