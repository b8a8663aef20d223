"""SIE 1–4 export shaped like Fortnox 3.60's: CP437, CRLF, Fortnox's header order,
``#RTRANS``/``#BTRANS`` correction history, and no line end after the last ``}``.

Written here rather than with the project's SIE library on purpose: the sandbox is an
independent producer, like Fortnox. Lines are produced lazily and encoded in chunks, so a
year of any size streams with memory bounded by the chunk size (plus the account balances).

``#PSALDO`` carries each account's movement in the month (result and balance accounts).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from sandbox.books import Books, YearBalances, is_balance_account
from sandbox.jsonout import money
from sandbox.model import FinancialYear, VoucherRow

PROGRAM_VERSION = "3.60.16"
DIMENSIONS = ((1, "Kostnadsställe"), (6, "Projekt"))


def quote(text: str) -> str:
    """A quoted SIE field: ``"`` escaped as ``\\"``, control characters dropped."""
    clean = "".join(c for c in text if c >= " " and c != "\x7f").replace('"', '\\"')
    return f'"{clean}"'


def amount(ore: int) -> str:
    """Fortnox's amount style: no trailing zeros (``29266``, ``-35.8``, ``-59820.63``)."""
    return format(money(ore), "f")


def _ymd(day: date) -> str:
    return day.strftime("%Y%m%d")


def _objects(row: VoucherRow) -> str:
    pairs = []
    if row.cost_center:
        pairs.append(f"1 {quote(row.cost_center)}")
    if row.project:
        pairs.append(f"6 {quote(row.project)}")
    return "{" + " ".join(pairs) + "}"


class SieExport:
    """One export: type 1–4 of one financial year of one company."""

    def __init__(self, books: Books, year: FinancialYear, sie_type: int, generated: date,
                 chunk_bytes: int) -> None:
        self.books, self.year, self.sie_type = books, year, sie_type
        self.generated, self.chunk_bytes = generated, chunk_bytes
        self.previous = books.previous_year(year.id)

    def filename(self) -> str:
        """A download name like Fortnox's."""
        org = self.books.tenant.organisation_number.replace("-", "")
        return f"{org}_SIE{self.sie_type}_{_ymd(self.year.from_date)}-{_ymd(self.year.to_date)}.se"

    def chunks(self) -> Iterator[bytes]:
        """The file as CP437 byte chunks of about ``chunk_bytes``."""
        buffer: list[str] = []
        size = 0
        first = True
        for line in self.lines():
            piece = line if first else "\r\n" + line
            first = False
            buffer.append(piece)
            size += len(piece)
            if size >= self.chunk_bytes:
                yield "".join(buffer).encode("cp437", errors="replace")
                buffer.clear()
                size = 0
        if buffer:
            yield "".join(buffer).encode("cp437", errors="replace")

    def lines(self) -> Iterator[str]:
        """Every line of the file, without line ends."""
        yield from self._header()
        yield from self._chart()
        current = self.books.balances(self.year.id)
        before = self.books.balances(self.previous.id) if self.previous else None
        yield from self._balances(current, before)
        if self.sie_type >= 2:
            yield from self._periods(current)
        if self.sie_type == 4:
            yield from self._vouchers()

    def _header(self) -> Iterator[str]:
        t = self.books.tenant
        yield "#FLAGGA 0"
        yield "#FORMAT PC8"
        yield f"#SIETYP {self.sie_type}"
        yield f'#PROGRAM "Fortnox" {PROGRAM_VERSION}'
        yield f"#GEN {_ymd(self.generated)}"
        yield f"#FNR {t.database_number}"
        yield f"#FNAMN {quote(t.name)}"
        yield (f"#ADRESS {quote('Ekonomiavdelningen')} {quote(t.address)} "
               f"{quote(f'{t.zip_code} {t.city}')} {quote('08-123 456 78')} ")
        yield f"#RAR 0 {_ymd(self.year.from_date)} {_ymd(self.year.to_date)}"
        if self.previous:
            yield f"#RAR -1 {_ymd(self.previous.from_date)} {_ymd(self.previous.to_date)}"
        yield f"#ORGNR {t.organisation_number}"
        if self.sie_type >= 2:
            yield f"#OMFATTN {_ymd(self.year.to_date)}"
        yield "#KPTYP EUBAS97"
        yield ""

    def _chart(self) -> Iterator[str]:
        for account in sorted(self.books.accounts.values(), key=lambda a: a.number):
            yield f"#KONTO {account.number} {quote(account.description)}"
            if account.sru:
                yield f"#SRU {account.number} {account.sru}"
        if self.sie_type >= 3:
            for number, name in DIMENSIONS:
                yield f"#DIM {number} {quote(name)}"
            for cc in self.books.cost_centers.values():
                yield f"#OBJEKT 1 {quote(cc.code)} {quote(cc.description)}"
            for project in self.books.projects.values():
                yield f"#OBJEKT 6 {quote(project.number)} {quote(project.description)}"

    def _balances(self, current: YearBalances, before: YearBalances | None) -> Iterator[str]:
        years = [(0, current)] + ([(-1, before)] if before is not None else [])
        for index, figures in years:
            accounts = sorted(set(figures.opening) | set(figures.movement))
            balance_accounts = [a for a in accounts if is_balance_account(a)]
            for account in balance_accounts:
                if figures.opening.get(account, 0):
                    yield f"#IB {index} {account} {amount(figures.opening[account])} 0"
            for account in balance_accounts:
                if figures.closing(account):
                    yield f"#UB {index} {account} {amount(figures.closing(account))} 0"
        for index, figures in years:
            for account in sorted(figures.movement):
                if not is_balance_account(account) and figures.movement[account]:
                    yield f"#RES {index} {account} {amount(figures.movement[account])} 0"

    def _periods(self, current: YearBalances) -> Iterator[str]:
        objects = self.sie_type >= 3
        by_account: dict[int, list[str]] = {}
        for (account, month), value in sorted(current.period.items()):
            if value:
                by_account.setdefault(account, []).append(
                    f"#PSALDO 0 {month} {account} {{}} {amount(value)} 0")
        if objects:
            for (account, dim, code, month), value in sorted(current.object_period.items()):
                if value:
                    by_account.setdefault(account, []).append(
                        f"#PSALDO 0 {month} {account} {{{dim} {quote(code)}}} {amount(value)} 0")
        for account in sorted(by_account):
            yield from by_account[account]

    def _vouchers(self) -> Iterator[str]:
        for v in self.books.vouchers(self.year.id):
            yield (f"#VER {v.series} {v.number} {_ymd(v.transaction_date)} "
                   f"{quote(v.description)} {_ymd(v.reg_date)}")
            yield "{"
            for row in v.rows:
                fields = f"{row.account} {_objects(row)} {amount(row.amount)} \"\" " \
                         f"{quote(row.description)} {row.quantity}"
                if row.removed:
                    yield f"#BTRANS {fields} {quote(row.changed_by)}"
                    continue
                if row.changed_by:
                    yield f"#RTRANS {fields} {quote(row.changed_by)}"
                yield f"#TRANS {fields}"
            yield "}"
