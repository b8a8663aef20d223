"""Typed SIE records: what the reader emits and the writer consumes.

Every record carries its 1-based source `line`; it is excluded from equality so that a
document read back from written bytes compares equal to the original. The records built
once per file are frozen dataclasses; those built per line of a large file (`Balance`,
`TransRow`, `Voucher`) are NamedTuples, which construct several times faster. Amounts and
quantities are exact: a voucher row's amount is an integer of öre (`TransRow.ore`, with
`TransRow.amount` its `Decimal`), every other amount and quantity a `Decimal`; dates are
`datetime.date`, object lists are tuples of (dimension, object) string pairs, and absent
optional texts are empty strings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from sie.findings import Finding
from sie.values import ore_decimal

ObjectList = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Flag:
    """`#FLAGGA`: 0 when written, 1 after the receiver imported the file."""

    value: int
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Program:
    """`#PROGRAM`: the program that wrote the file."""

    name: str
    version: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Generated:
    """`#GEN`: creation date and optional signature."""

    date: dt.date
    sign: str = ""
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class SieType:
    """`#SIETYP`: 1, 2, 3 or 4."""

    value: int
    line: int = field(default=0, compare=False)


class TextLabel(StrEnum):
    """Identification records holding one text value."""

    FORMAT = "#FORMAT"
    PROSA = "#PROSA"
    FTYP = "#FTYP"
    FNR = "#FNR"
    BKOD = "#BKOD"
    FNAMN = "#FNAMN"
    KPTYP = "#KPTYP"
    VALUTA = "#VALUTA"


@dataclass(frozen=True, slots=True)
class TextRecord:
    """A one-text identification record (`#FNAMN`, `#FNR`, `#KPTYP`, ...)."""

    label: TextLabel
    text: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class OrgNumber:
    """`#ORGNR`: organisation number with optional division and activity numbers."""

    number: str
    division: str = ""
    activity: str = ""
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Address:
    """`#ADRESS`: contact, street, postcode+town, phone."""

    contact: str
    street: str
    postal: str
    phone: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class FinancialYear:
    """`#RAR`: financial year by index (0 current, -1 previous, ...)."""

    index: int
    start: dt.date
    end: dt.date
    line: int = field(default=0, compare=False)

    def contains(self, day: dt.date) -> bool:
        """Tell whether `day` falls inside this year."""
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class TaxYear:
    """`#TAXAR`: the taxation year the `#SRU` codes belong to."""

    year: int
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Extent:
    """`#OMFATTN`: balances are valid up to and including this date."""

    date: dt.date
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Account:
    """`#KONTO`: an account of the chart."""

    number: str
    name: str
    line: int = field(default=0, compare=False)


class AccountAttribute(StrEnum):
    """Per-account records holding one value."""

    KTYP = "#KTYP"
    ENHET = "#ENHET"
    SRU = "#SRU"


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """`#KTYP`, `#ENHET` or `#SRU`: one attribute of an account."""

    label: AccountAttribute
    account: str
    value: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Dimension:
    """`#DIM` (parent empty) or `#UNDERDIM` (parent = super-dimension)."""

    number: str
    name: str
    parent: str = ""
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ObjectDef:
    """`#OBJEKT`: an object (cost centre, project, ...) of a dimension."""

    dimension: str
    number: str
    name: str
    line: int = field(default=0, compare=False)


class BalanceKind(StrEnum):
    """Balance record labels (without `#`)."""

    IB = "IB"
    UB = "UB"
    OIB = "OIB"
    OUB = "OUB"
    RES = "RES"
    PSALDO = "PSALDO"
    PBUDGET = "PBUDGET"


class Balance(NamedTuple):
    """`#IB #UB #OIB #OUB #RES #PSALDO #PBUDGET` with its year index.

    `period` is the first day of the month for `#PSALDO`/`#PBUDGET`, else None;
    `objects` is empty for `#IB #UB #RES`. (A NamedTuple rather than a frozen dataclass
    because millions are built per file: construction is four times cheaper.)
    """

    kind: BalanceKind
    year: int
    account: str
    amount: Decimal
    quantity: Decimal | None = None
    objects: ObjectList = ()
    period: dt.date | None = None
    line: int = 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Balance) and self[:-1] == other[:-1]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self[:-1])


class RowKind(StrEnum):
    """Voucher row labels (without `#`)."""

    TRANS = "TRANS"
    RTRANS = "RTRANS"
    BTRANS = "BTRANS"


class TransRow(NamedTuple):
    """A voucher row: `#TRANS` (posted), `#RTRANS` (added later), `#BTRANS` (struck).

    `date` None means the voucher date applies. The amount is kept as an integer of öre
    (`ore`; a SIE amount has at most two decimals): the reader has that integer already,
    and a `Decimal` per row cost a fifth of the reader's time. `amount` gives it as the
    exact `Decimal`, always with two decimals. A NamedTuple for speed, like `Balance`;
    `line` takes no part in equality.
    """

    kind: RowKind
    account: str
    ore: int
    objects: ObjectList = ()
    date: dt.date | None = None
    text: str = ""
    quantity: Decimal | None = None
    sign: str = ""
    line: int = 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TransRow) and self[:-1] == other[:-1]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self[:-1])

    @property
    def amount(self) -> Decimal:
        """The amount as an exact `Decimal` with two decimals (`ore` -3580 is -35.80)."""
        return ore_decimal(self.ore)


class Voucher(NamedTuple):
    """`#VER` with its rows; `#RTRANS`/`#BTRANS` rows are kept as correction history.

    `year` is the index of the `#RAR` year holding `date` (None if unknown); it is
    derived while reading, so, like `line` and `source` (the voucher's lines, kept when
    `ReadPolicy.keep_voucher_source` asks), it takes no part in equality.
    """

    series: str
    number: str
    date: dt.date
    rows: tuple[TransRow, ...] = ()
    text: str = ""
    reg_date: dt.date | None = None
    sign: str = ""
    line: int = 0
    year: int | None = None
    source: str = ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Voucher) and self[:-3] == other[:-3]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self[:-3])

    @property
    def transactions(self) -> tuple[TransRow, ...]:
        """The posted rows (`#TRANS`), the only ones that count for balances."""
        return tuple(r for r in self.rows if r.kind is RowKind.TRANS)

    def imbalance(self) -> Decimal:
        """Sum of the `#TRANS` amounts (two decimals); zero for a balanced voucher."""
        return ore_decimal(self.imbalance_ore())

    def imbalance_ore(self) -> int:
        """`imbalance` in öre."""
        return sum(r.ore for r in self.rows if r.kind is RowKind.TRANS)


Record = (
    Flag
    | Program
    | Generated
    | SieType
    | TextRecord
    | OrgNumber
    | Address
    | FinancialYear
    | TaxYear
    | Extent
    | Account
    | AccountInfo
    | Dimension
    | ObjectDef
    | Balance
    | Voucher
)
Event = Record | Finding
