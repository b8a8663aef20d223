"""A minimal SIE reader for the tests: just enough to recompute balances independently."""

from __future__ import annotations

import shlex
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class ParsedSie:
    """Balances stated in the file and sums of its #TRANS rows (year 0)."""

    header: list[str] = field(default_factory=list)
    ib: dict[tuple[int, int], Decimal] = field(default_factory=dict)
    ub: dict[tuple[int, int], Decimal] = field(default_factory=dict)
    res: dict[tuple[int, int], Decimal] = field(default_factory=dict)
    trans: dict[int, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    vouchers: int = 0
    unbalanced: int = 0
    rtrans: int = 0
    btrans: int = 0


def _fields(line: str) -> list[str]:
    return shlex.split(line.replace("{", " { ").replace("}", " } "), posix=True)


def parse(raw: bytes) -> ParsedSie:
    """Parse CP437 SIE text; #RTRANS/#BTRANS are counted but not posted."""
    text = raw.decode("cp437")
    out = ParsedSie()
    voucher_sum: Decimal | None = None
    for line in text.split("\r\n"):
        if line == "}" and voucher_sum is not None:
            out.unbalanced += voucher_sum != 0
            voucher_sum = None
        if not line.startswith("#"):
            continue
        label = line.split(" ", 1)[0]
        if label in ("#IB", "#UB", "#RES"):
            _, year, account, amount, *_ = line.split()
            target = {"#IB": out.ib, "#UB": out.ub, "#RES": out.res}[label]
            target[(int(year), int(account))] = Decimal(amount)
        elif label == "#VER":
            out.vouchers += 1
            voucher_sum = Decimal(0)
        elif label == "#TRANS":
            fields = _fields(line)
            close = fields.index("}")
            value = Decimal(fields[close + 1])
            out.trans[int(fields[1])] += value
            assert voucher_sum is not None
            voucher_sum += value
        elif label == "#RTRANS":
            out.rtrans += 1
        elif label == "#BTRANS":
            out.btrans += 1
        elif len(out.header) < 13:
            out.header.append(label)
    return out


def control_errors(sie: ParsedSie) -> list[str]:
    """The year-end controls for year 0: IB + TRANS = UB, TRANS = RES, IB sums to zero."""
    problems = []
    accounts = {a for (y, a) in (*sie.ib, *sie.ub, *sie.res) if y == 0} | set(sie.trans)
    for account in sorted(accounts):
        movement = sie.trans.get(account, Decimal(0))
        if account < 3000:
            expected = sie.ib.get((0, account), Decimal(0)) + movement
            if expected != sie.ub.get((0, account), Decimal(0)):
                problems.append(f"UB {account}: {expected} != {sie.ub.get((0, account))}")
        elif movement != sie.res.get((0, account), Decimal(0)):
            problems.append(f"RES {account}: {movement} != {sie.res.get((0, account))}")
    if sie.unbalanced:
        problems.append(f"{sie.unbalanced} vouchers do not balance")
    if sum(v for (y, _), v in sie.ib.items() if y == 0) != 0:
        problems.append("IB 0 does not sum to zero")
    for (year, account), value in sie.ib.items():
        if year == 0 and (-1, account) in sie.ub and sie.ub[(-1, account)] != value:
            problems.append(f"IB 0 {account} != UB -1")
    return problems
