"""Deterministic seeded companies whose books add up.

Every company's general ledger agrees with its sub-ledgers: account 1510 equals the open
customer invoices and 2440 the open supplier invoices (in SEK at the invoice rate) at any
date, each closed year ends with a result entry in series ``I`` (8999 against 2099), and the
next year's opening balances are this year's closing balances. The ``default`` seed's third
company breaks one of these on purpose (see :data:`PLANTED_DIFFERENCE`).
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sandbox.books import Books, FileConnection
from sandbox.chart import COST_CENTERS, PROJECTS, bas_accounts
from sandbox.documents import JPEG, PDF
from sandbox.model import (
    CostCenter,
    FinancialYear,
    Invoice,
    Party,
    Payment,
    Project,
    StoredFile,
    Tenant,
    User,
    Voucher,
    VoucherRef,
    VoucherRow,
    VoucherSeries,
)
from sandbox.options import SandboxOptions

PLANTED_AMOUNT = 125_000
PLANTED_DIFFERENCE = (
    "Voucher A (dated 15 October of the second year) debits 1510 by 1250.00 SEK against 3990 "
    "with no customer invoice behind it: from that date on, account 1510 is 1250.00 SEK above "
    "the open customer invoices."
)
SERIES = (
    VoucherSeries("A", "Redovisning"),
    VoucherSeries("B", "Kundfakturor", manual=False),
    VoucherSeries("C", "Kundinbetalningar", manual=False),
    VoucherSeries("D", "Leverantörsfakturor", manual=False),
    VoucherSeries("E", "Leverantörsbetalningar", manual=False),
    VoucherSeries("I", "Bokslut"),
)
_OPENING = {1930: 40_000_000, 1220: 15_000_000, 1229: -3_000_000, 2081: -5_000_000,
            2091: -47_000_000}
_SIGNERS = ("Anna Andersson", "Erik Svensson", "Maria Öberg")
_CUSTOMERS = (
    "Åkesson Bygg AB", "Norrlands Trä AB", "Café Göta Kanal", "Malmö Måleri HB", "Bäckströms El",
    "Östgöta Data AB", "Skärgårdsbåtar AB", "Lunds Tandvård AB", "Fjällstugan i Åre AB",
    "Kvarnen Bageri", "Berliner Technik GmbH", "Helsinki Design Oy",
)
_SUPPLIERS = (
    "Kontorsgiganten AB", "Telia Sverige AB", "Fastighets AB Kvarteret", "Bensinbolaget Väst",
    "Åhléns Grossist AB", "Deutsche Teile GmbH", "Molntjänst Nord AB", "Städ & Service i Umeå",
)
_CITIES = (("Stockholm", "111 22"), ("Göteborg", "411 03"), ("Malmö", "211 20"),
           ("Umeå", "903 26"), ("Örebro", "702 10"))


@dataclass(frozen=True)
class CompanyPlan:
    """What to generate for one company."""

    tenant_id: int
    name: str
    first_month: int
    vouchers_per_year: list[int]
    planted: bool = False


def luhn_digit(digits: str) -> int:
    """The mod-10 check digit Swedish organisation and OCR numbers end with."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


def _org_number(rng: random.Random) -> str:
    body = f"55{rng.randint(0, 9999999):07d}"
    return f"{body[:6]}-{body[6:]}{luhn_digit(body)}"


def _sek(amount: int, rate: Decimal) -> int:
    return int((Decimal(amount) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def plans(options: SandboxOptions) -> list[CompanyPlan]:
    """The companies of the chosen seed."""
    n_years = len(options.years)
    normal = [options.vouchers_per_year] * n_years
    if options.seed == "minimal":
        return [CompanyPlan(1_000_001, "Minibolaget AB", 1, [min(12, v) for v in normal])]
    if options.seed == "large":
        big = list(normal)
        big[max(0, n_years - 2)] = options.large_year_vouchers
        return [CompanyPlan(1_000_001, "Storbolaget AB", 1, big)]
    if options.seed != "default":
        raise ValueError(f"unknown seed {options.seed!r}")
    return [
        CompanyPlan(1_000_001, "Sandlådan Handel AB", 1, normal),
        CompanyPlan(1_000_002, "Brutet Räkenskapsår AB", 7, normal),
        CompanyPlan(1_000_003, "Avstämningsfel AB", 1, normal, planted=True),
    ]


def build_all(options: SandboxOptions) -> list[Books]:
    """Every company of the seed, generated from scratch (same options → same data)."""
    return [_CompanyBuilder(options, plan).build() for plan in plans(options)]


def extra_companies(options: SandboxOptions, first_id: int, count: int,
                    vouchers_per_year: int = 0) -> list[Books]:
    """``count`` plain companies with ids from ``first_id`` on (calendar years, no invoices),
    for tests and benchmarks that watch many tenants."""
    plain = replace(options, invoices_per_year=0, supplier_invoices_per_year=0)
    return [
        _CompanyBuilder(plain, CompanyPlan(tenant_id, f"Bolag {tenant_id} AB", 1,
                                           [vouchers_per_year] * len(options.years))).build()
        for tenant_id in range(first_id, first_id + count)
    ]


def _years(options: SandboxOptions, first_month: int) -> list[FinancialYear]:
    years = []
    for index, start_year in enumerate(options.years, start=1):
        start = date(start_year, first_month, 1)
        end_year = start_year if first_month == 1 else start_year + 1
        end_month = 12 if first_month == 1 else first_month - 1
        end = (date(end_year, end_month, 28) + timedelta(days=4)).replace(day=1) - timedelta(1)
        years.append(FinancialYear(index, start, end))
    return years


class _CompanyBuilder:
    """Builds one company: master data, general vouchers, sub-ledgers, then year closings."""

    def __init__(self, options: SandboxOptions, plan: CompanyPlan) -> None:
        self.options = options
        self.plan = plan
        self.rng = random.Random(zlib.crc32(f"{options.seed}/{plan.tenant_id}".encode()))
        city, zip_code = _CITIES[plan.tenant_id % len(_CITIES)]
        tenant = Tenant(
            id=plan.tenant_id, database_number=plan.tenant_id + 90_000, name=plan.name,
            organisation_number=_org_number(self.rng), address="Storgatan 1", zip_code=zip_code,
            city=city, years=_years(options, plan.first_month),
            planted=PLANTED_DIFFERENCE if plan.planted else "",
            users=(User(f"admin-{plan.tenant_id}", "Alva Administratör", administrator=True),
                   User(f"user-{plan.tenant_id}", "Ulf Användare", administrator=False)),
        )
        self.books = Books(tenant, bas_accounts(), {s.code: s for s in SERIES}, dict(_OPENING))
        self.first_day = tenant.years[0].from_date
        self.last_day = tenant.years[-1].to_date
        self.pending: list[Voucher] = []
        self.links: list[tuple[Invoice | Payment, Voucher]] = []
        self.file_counter = 0

    def stamp(self, day: date) -> datetime:
        """The seeded last-modified time of a record dated ``day``."""
        return datetime.combine(day, time(12, 0), UTC)

    def build(self) -> Books:
        self._master_data()
        for year, count in zip(self.books.tenant.years, self.plan.vouchers_per_year, strict=True):
            self._general_vouchers(year, count)
        self._customer_invoices()
        self._supplier_invoices()
        if self.plan.planted:
            self._planted_difference()
        self._book_pending()
        for year in self.books.tenant.years[:-1]:
            self.books.close_year(year.id, self.stamp(year.to_date))
        self.books.locked_until = self.books.tenant.years[0].to_date
        return self.books

    # -- master data -------------------------------------------------------------------
    def _master_data(self) -> None:
        b = self.books
        b.cost_centers = {code: CostCenter(code, text) for code, text in COST_CENTERS}
        b.projects = {
            number: Project(number, text, self.first_day + timedelta(days=40 * i))
            for i, (number, text) in enumerate(PROJECTS)
        }
        for index, name in enumerate(_CUSTOMERS, start=1):
            b.customers[str(index)] = self._party(str(index), name)
        for index, name in enumerate(_SUPPLIERS, start=1):
            b.suppliers[str(index)] = self._party(str(index), name)
        for index in range(3):
            self._new_file("inbox", f"kvitto-{index + 1}.pdf", "Kvitto i inkorgen", ())

    def _party(self, number: str, name: str) -> Party:
        foreign = name.endswith(("GmbH", "Oy"))
        city, zip_code = self.rng.choice(_CITIES)
        street = self.rng.choice(("Kungsgatan", "Bygatan", "Hamnvägen"))
        slug = "".join(c for c in name.lower() if c.isascii() and c.isalnum())[:16]
        return Party(
            number=number, name=name, organisation_number="" if foreign else _org_number(self.rng),
            city=city, zip_code=zip_code, address=f"{street} {self.rng.randint(1, 80)}",
            email=f"info@{slug}.example", currency="EUR" if foreign else "SEK",
            last_modified=self.stamp(self.first_day),
        )

    def _new_file(self, folder: str, name: str, title: str, lines: tuple[str, ...],
                  content_type: str = PDF) -> str:
        self.file_counter += 1
        file_id = f"{self.plan.tenant_id:08x}-0000-4000-8000-{self.file_counter:012x}"
        self.books.files[file_id] = StoredFile(file_id, name, folder, title, lines, content_type)
        return file_id

    # -- general vouchers (series A) ---------------------------------------------------
    def _general_vouchers(self, year: FinancialYear, count: int) -> None:
        rng = self.rng
        span = (year.to_date - year.from_date).days
        days = sorted(rng.randint(0, span) for _ in range(count))
        for index, offset in enumerate(days):
            day = year.from_date + timedelta(days=offset)
            text, rows = self._general_rows(rng.random())
            if index % 25 == 7:
                rows = self._corrected(rows)
            voucher = Voucher("A", 0, year.id, day, text, rows,
                              day + timedelta(days=rng.randint(0, 3)),
                              last_modified=self.stamp(day))
            self.books.add_voucher(voucher)
            if self.options.voucher_files:
                self._receipts(voucher, index)

    def _receipts(self, voucher: Voucher, index: int) -> None:
        """Attach documents to some vouchers: a PDF to every tenth, a photographed receipt
        (JPEG) and a PDF to every tenth after that, a third file to every twentieth; none to
        the rest."""
        kinds = {3: ("pdf",), 6: ("jpg", "pdf")}.get(index % 10, ())
        if index % 20 == 16:
            kinds += ("jpg",)
        for n, kind in enumerate(kinds, start=1):
            name = f"underlag-{voucher.year_id}-{voucher.series}{voucher.number}-{n}.{kind}"
            file_id = self._new_file(
                "archive", name, f"Underlag {voucher.description}",
                (voucher.transaction_date.isoformat(), f"Verifikation {voucher.series}"
                 f"{voucher.number}"), JPEG if kind == "jpg" else PDF)
            self.books.voucher_files.append(FileConnection(
                file_id, VoucherRef(voucher.series, voucher.number, voucher.year_id)))

    def _general_rows(self, pick: float) -> tuple[str, list[VoucherRow]]:
        rng = self.rng
        cc = rng.choice(COST_CENTERS)[0] if rng.random() < 0.5 else ""
        project = rng.choice(PROJECTS)[0] if rng.random() < 0.3 else ""
        if pick < 0.35:
            account = rng.choice((5010, 5410, 6110, 6212, 6230, 6570))
            net = rng.randint(200, 20_000) * 100 + rng.choice((0, 50, 25))
            vat = 0 if account == 6570 else net // 4
            rows = [VoucherRow(account, net, cost_center=cc, project=project)]
            if vat:
                rows.append(VoucherRow(2641, vat))
            rows.append(VoucherRow(1930, -(net + vat)))
            return "Inköp med kort", rows
        if pick < 0.60:
            net = rng.randint(100, 9_000) * 100
            return "Kortförsäljning", [VoucherRow(1930, net + net // 4),
                                       VoucherRow(3041, -net, cost_center=cc, project=project),
                                       VoucherRow(2611, -(net // 4))]
        if pick < 0.75:
            gross = rng.randint(250, 450) * 10_000
            tax, fee = gross * 30 // 100, gross * 3142 // 10_000
            return "Löner", [VoucherRow(7010, gross, cost_center=cc), VoucherRow(7510, fee),
                             VoucherRow(2710, -tax), VoucherRow(2731, -fee),
                             VoucherRow(1930, -(gross - tax))]
        if pick < 0.87:
            amount = rng.randint(500, 9_000) * 100
            return "Skatteinbetalning", [VoucherRow(2710, amount), VoucherRow(1930, -amount)]
        if pick < 0.95:
            amount = rng.randint(1, 900) * 100 + rng.randint(0, 99)
            return "Ränta bankkonto", [VoucherRow(1930, amount), VoucherRow(8310, -amount)]
        amount = rng.randint(5, 40) * 10_000
        return "Avskrivning inventarier", [VoucherRow(7832, amount), VoucherRow(1229, -amount)]

    def _corrected(self, rows: list[VoucherRow]) -> list[VoucherRow]:
        """Re-account the first row, as a user correcting a voucher does (#BTRANS/#RTRANS)."""
        signer = self.rng.choice(_SIGNERS)
        first = rows[0]
        replacement = {5010: 5410, 5410: 6110, 6110: 5410, 6212: 6230, 6230: 6212, 6570: 6110,
                       1930: 1630, 7010: 7010, 2710: 2731, 7832: 7832}.get(first.account, 6110)
        if replacement == first.account or first.account < 2000 <= replacement:
            return rows
        removed = VoucherRow(first.account, first.amount, first.description, first.cost_center,
                             first.project, removed=True, changed_by=signer)
        added = VoucherRow(replacement, first.amount, first.description, first.cost_center,
                           first.project, changed_by=signer)
        return [removed, added, *rows[1:]]

    # -- sub-ledgers -------------------------------------------------------------------
    def _dates(self, per_year: int) -> list[date]:
        out = []
        for year in self.books.tenant.years:
            span = (year.to_date - year.from_date).days
            out += [year.from_date + timedelta(days=self.rng.randint(0, span))
                    for _ in range(per_year)]
        return sorted(out)

    def _pending(self, document: Invoice | Payment, series: str, day: date, text: str,
                 rows: list[VoucherRow], ref_type: str, ref: int) -> None:
        """Queue the voucher of ``document`` for booking in date order."""
        year = self.books.year_for_date(day)
        assert year is not None, "documents are only dated inside the company's years"
        voucher = Voucher(series, 0, year.id, day, text, rows, day, ref_type, str(ref),
                          last_modified=self.stamp(day))
        self.pending.append(voucher)
        self.links.append((document, voucher))

    def _book_pending(self) -> None:
        for voucher in sorted(self.pending, key=lambda v: (v.transaction_date, v.series)):
            self.books.add_voucher(voucher)
        for document, voucher in self.links:
            document.voucher = VoucherRef(voucher.series, voucher.number, voucher.year_id)

    def _rate(self, currency: str) -> Decimal:
        if currency == "SEK":
            return Decimal(1)
        return Decimal("11.2000") + Decimal(self.rng.randint(-6000, 6000)).scaleb(-4)

    def _customer_invoices(self) -> None:
        rng = self.rng
        docs: list[Invoice] = []
        for day in self._dates(self.options.invoices_per_year):
            customer = self.books.customers[str(rng.randint(1, len(_CUSTOMERS)))]
            net = rng.randint(10, 800) * 10_000 + rng.choice((0, 5_000))
            vat = 0 if customer.currency != "SEK" else net // 4
            invoice = Invoice(
                "customer", 0, customer.number, day, day + timedelta(days=30), net + vat, vat,
                customer.currency, self._rate(customer.currency), None,
                cost_center=rng.choice(COST_CENTERS)[0] if rng.random() < 0.4 else "",
                project=rng.choice(PROJECTS)[0] if rng.random() < 0.3 else "",
                last_modified=self.stamp(day),
            )
            docs.append(invoice)
            fate = rng.random()
            if fate < 0.06:
                invoice.cancelled = True
            elif fate < 0.12 and invoice.currency == "SEK":
                credit_day = day + timedelta(days=rng.randint(3, 20))
                if self.books.year_for_date(credit_day):
                    invoice.credit_date = credit_day
                    docs.append(Invoice(
                        "customer", 0, customer.number, credit_day, credit_day, -invoice.total,
                        -vat, "SEK", Decimal(1), None, credit_of=id(invoice),
                        last_modified=self.stamp(credit_day)))
            elif fate < 0.24 and invoice.currency == "SEK":
                part = invoice.total * rng.randint(30, 70) // 100
                self._pay(invoice, day + timedelta(days=rng.randint(15, 40)), part)
            elif fate < 0.86:
                self._pay(invoice, day + timedelta(days=rng.randint(5, 60)), invoice.total)
        self._number_customer_documents(docs)

    def _pay(self, invoice: Invoice, day: date, amount: int) -> None:
        if day > self.last_day:
            return
        pay_rate = invoice.rate if invoice.currency == "SEK" else invoice.rate * (
            Decimal(1) + Decimal(self.rng.randint(-300, 300)).scaleb(-4))
        pay_rate = pay_rate.quantize(Decimal("0.0001"))
        invoice.payments.append(Payment(0, 0, day, amount, _sek(amount, pay_rate),
                                        invoice.currency, pay_rate, None,
                                        last_modified=self.stamp(day)))

    def _number_customer_documents(self, docs: list[Invoice]) -> None:
        docs.sort(key=lambda d: d.invoice_date)
        by_identity = {id(d): d for d in docs}
        for number, doc in enumerate(docs, start=1):
            doc.number = number
            doc.ocr = f"{number}{luhn_digit(str(number))}"
        for doc in docs:
            if doc.credit_of is not None:
                original = by_identity[doc.credit_of]
                doc.credit_of, original.credited_by = original.number, doc.number
            self.books.invoices[doc.number] = doc
            if not doc.cancelled:
                self._book_invoice(doc, 1510, 3108 if doc.currency != "SEK" else 3001, 2611)
        self._number_payments(docs, "C", 1510, "INVOICEPAYMENT")

    def _number_payments(self, docs: list[Invoice], series: str, ledger: int,
                         ref_type: str) -> None:
        payments = [(p, d) for d in docs for p in d.payments]
        payments.sort(key=lambda pair: (pair[0].payment_date, pair[1].number))
        for number, (payment, doc) in enumerate(payments, start=1):
            payment.number, payment.invoice_number = number, doc.number
            self._book_payment(doc, payment, series, ledger, ref_type)

    def _book_invoice(self, doc: Invoice, ledger: int, counter: int, vat_account: int) -> None:
        """Customer invoice: 1510 / revenue / output VAT. Supplier invoice: the mirror image
        (2440 / cost / input VAT). Signs follow the ledger account's side."""
        sign = 1 if doc.kind == "customer" else -1
        total_sek, vat_sek = _sek(doc.total, doc.rate), _sek(doc.vat, doc.rate)
        rows = [VoucherRow(ledger, sign * total_sek),
                VoucherRow(counter, -sign * (total_sek - vat_sek), cost_center=doc.cost_center,
                           project=doc.project)]
        if vat_sek:
            rows.append(VoucherRow(vat_account, -sign * vat_sek))
        if doc.kind == "customer":
            party = self.books.customers[doc.party_number]
            kind, series, ref_type = ("Kreditfaktura" if doc.credit_of else "Faktura", "B",
                                      "INVOICE")
        else:
            party = self.books.suppliers[doc.party_number]
            kind, series, ref_type = "Leverantörsfaktura", "D", "SUPPLIERINVOICE"
        self._pending(doc, series, doc.invoice_date, f"{kind} {doc.number} {party.name}", rows,
                      ref_type, doc.number)

    def _book_payment(self, doc: Invoice, payment: Payment, series: str, ledger: int,
                      ref_type: str) -> None:
        """Bank against the ledger account at the invoice rate; the rate difference goes to
        3960 (gain) or 7960 (loss), so the ledger account always equals the open items."""
        sign = 1 if doc.kind == "customer" else -1
        ledger_sek = _sek(payment.amount, doc.rate)
        rows = [VoucherRow(1930, sign * payment.amount_sek), VoucherRow(ledger, -sign * ledger_sek)]
        difference = sign * (ledger_sek - payment.amount_sek)
        if difference:
            rows.append(VoucherRow(3960 if difference < 0 else 7960, difference))
        self._pending(payment, series, payment.payment_date, f"Betalning faktura {doc.number}",
                      rows, ref_type, payment.number)

    def _supplier_invoices(self) -> None:
        rng = self.rng
        docs: list[Invoice] = []
        for day in self._dates(self.options.supplier_invoices_per_year):
            supplier = self.books.suppliers[str(rng.randint(1, len(_SUPPLIERS)))]
            net = rng.randint(5, 400) * 10_000 + rng.choice((0, 2_500))
            vat = 0 if supplier.currency != "SEK" else net // 4
            invoice = Invoice(
                "supplier", 0, supplier.number, day, day + timedelta(days=30), net + vat, vat,
                supplier.currency, self._rate(supplier.currency), None,
                external_number=f"F{rng.randint(10_000, 99_999)}",
                cost_center=rng.choice(COST_CENTERS)[0] if rng.random() < 0.3 else "",
                last_modified=self.stamp(day),
            )
            invoice.ocr = f"{rng.randint(10**8, 10**9 - 1)}"
            docs.append(invoice)
            fate = rng.random()
            if fate < 0.04:
                invoice.cancelled = True
            elif fate < 0.12 and invoice.currency == "SEK":
                part = invoice.total * rng.randint(20, 60) // 100
                self._pay(invoice, day + timedelta(days=rng.randint(10, 30)), part)
            elif fate < 0.88:
                self._pay(invoice, day + timedelta(days=rng.randint(10, 40)), invoice.total)
        for number, doc in enumerate(docs, start=1):
            doc.number = number
            supplier = self.books.suppliers[doc.party_number]
            doc.file_ids.append(self._new_file(
                "archive", f"leverantorsfaktura-{number}.pdf",
                f"Faktura {doc.external_number} från {supplier.name}",
                (f"Fakturadatum {doc.invoice_date.isoformat()}",
                 f"Att betala {doc.total // 100},{doc.total % 100:02d} {doc.currency}")))
            self.books.supplier_invoices[number] = doc
            if not doc.cancelled:
                self._book_invoice(doc, 2440, 4010, 2641)
        self._number_payments(docs, "E", 2440, "SUPPLIERPAYMENT")

    def _planted_difference(self) -> None:
        years = self.books.tenant.years
        year = years[1] if len(years) > 1 else years[0]
        day = date(year.to_date.year if year.from_date.month == 1 else year.from_date.year, 10, 15)
        rows = [VoucherRow(1510, PLANTED_AMOUNT), VoucherRow(3990, -PLANTED_AMOUNT)]
        self.pending.append(Voucher("A", 0, year.id, day, "Justering kundfordran", rows, day,
                                    last_modified=self.stamp(day)))
