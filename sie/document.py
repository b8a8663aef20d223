"""A whole SIE file as one value, built from the reader's events.

Use it for files that fit in memory (tests, small 4I files, the CLI); stream large
exports with `SieReader` instead. Line numbers do not take part in equality, so
`read_document(write_document(doc)) == doc`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date

from sie.findings import Finding
from sie.records import (
    Account,
    AccountInfo,
    Address,
    Balance,
    Dimension,
    Event,
    Extent,
    FinancialYear,
    Flag,
    Generated,
    ObjectDef,
    OrgNumber,
    Program,
    SieType,
    TaxYear,
    TextLabel,
    TextRecord,
    Voucher,
)
from sie.summary import ReadSummary


@dataclass(frozen=True, slots=True)
class SieDocument:
    """The content of a SIE file, grouped as the spec orders it.

    Single identification records are fields (None or '' when absent); repeated records
    are tuples in file order. `texts` maps the one-text labels (`#FNR`, `#KPTYP`, ...)
    except `#FNAMN` and `#FORMAT` to their value.
    """

    program: Program
    generated: Generated
    company_name: str
    flag: int = 0
    sie_type: int = 4
    texts: tuple[tuple[TextLabel, str], ...] = ()
    org_number: OrgNumber | None = None
    address: Address | None = None
    financial_years: tuple[FinancialYear, ...] = ()
    tax_year: int | None = None
    extent: date | None = None
    accounts: tuple[Account, ...] = ()
    account_info: tuple[AccountInfo, ...] = ()
    dimensions: tuple[Dimension, ...] = ()
    objects: tuple[ObjectDef, ...] = ()
    balances: tuple[Balance, ...] = ()
    vouchers: tuple[Voucher, ...] = ()
    findings: tuple[Finding, ...] = field(default=(), compare=False)
    summary: ReadSummary | None = field(default=None, compare=False)

    def text(self, label: TextLabel) -> str:
        """Value of a one-text record, '' if absent."""
        return dict(self.texts).get(label, "")


_UNKNOWN_PROGRAM = Program("", "")
_UNKNOWN_DATE = Generated(date(1970, 1, 1))


class DocumentBuilder:
    """Collects events into a `SieDocument`."""

    def __init__(self) -> None:
        self.flag = 0
        self.program = _UNKNOWN_PROGRAM
        self.generated = _UNKNOWN_DATE
        self.sie_type = 4
        self.company_name = ""
        self.texts: dict[TextLabel, str] = {}
        self.org_number: OrgNumber | None = None
        self.address: Address | None = None
        self.tax_year: int | None = None
        self.extent: date | None = None
        self.years: list[FinancialYear] = []
        self.accounts: list[Account] = []
        self.account_info: list[AccountInfo] = []
        self.dimensions: list[Dimension] = []
        self.objects: list[ObjectDef] = []
        self.balances: list[Balance] = []
        self.vouchers: list[Voucher] = []
        self.findings: list[Finding] = []

    def add_all(self, events: Iterable[Event]) -> None:
        """Add a batch of events."""
        for event in events:
            self.add(event)

    def add(self, event: Event) -> None:
        """Add one event."""
        match event:
            case Voucher():
                self.vouchers.append(event)
            case Balance():
                self.balances.append(event)
            case Account():
                self.accounts.append(event)
            case AccountInfo():
                self.account_info.append(event)
            case Finding():
                self.findings.append(event)
            case Dimension():
                self.dimensions.append(event)
            case ObjectDef():
                self.objects.append(event)
            case FinancialYear():
                self.years.append(event)
            case TextRecord(label=TextLabel.FNAMN):
                self.company_name = event.text
            case TextRecord(label=TextLabel.FORMAT):
                pass  # never trusted; the writer always writes PC8
            case TextRecord():
                self.texts[event.label] = event.text
            case Flag():
                self.flag = event.value
            case Program():
                self.program = event
            case Generated():
                self.generated = event
            case SieType():
                self.sie_type = event.value
            case OrgNumber():
                self.org_number = event
            case Address():
                self.address = event
            case TaxYear():
                self.tax_year = event.year
            case Extent():
                self.extent = event.date

    def build(self, summary: ReadSummary | None = None) -> SieDocument:
        """Return the document collected so far."""
        order = list(TextLabel)
        texts = tuple(sorted(self.texts.items(), key=lambda item: order.index(item[0])))
        document = SieDocument(
            program=self.program,
            generated=self.generated,
            company_name=self.company_name,
            flag=self.flag,
            sie_type=self.sie_type,
            texts=texts,
            org_number=self.org_number,
            address=self.address,
            financial_years=tuple(self.years),
            tax_year=self.tax_year,
            extent=self.extent,
            accounts=tuple(self.accounts),
            account_info=tuple(self.account_info),
            dimensions=tuple(self.dimensions),
            objects=tuple(self.objects),
            balances=tuple(self.balances),
            vouchers=tuple(self.vouchers),
            findings=tuple(self.findings),
        )
        return replace(document, summary=summary) if summary is not None else document
