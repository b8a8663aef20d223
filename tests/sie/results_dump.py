"""Everything the reader and the controls make of a SIE file, as one exact text.

Every event's `repr` (findings with their lines, balances, vouchers with rows, years and
kept sources, Decimals with their exponents), the summary, the controls' result and the
vouchers' fingerprints, for several chunk sizes and with and without voucher sources: two
readers that agree on this text agree on everything a caller can see. The test beside it
compares the compiled and the pure-Python reader on it; run as a script it writes the texts
of the fixtures, the corpus and a generated Fortnox-shaped file to a directory, to compare
one commit against another:

    .venv/bin/python -m tests.sie.results_dump OUT_DIR   (then `diff -r` two such dirs)

With `--exact` every amount is written as its exact value (a voucher row's in öre, every
`Decimal` without its exponent), so that two commits that hold amounts differently (rows'
`Decimal`s became integer öre) are compared on what the amounts are.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

from sie.controls import YearEndControls
from sie.fingerprints import Fingerprints
from sie.policy import ReadPolicy
from sie.reader import SieReader
from sie.records import TransRow, Voucher
from sie.stream import policy_for_path

#: Chunk sizes each file is fed in: the reader's own, one that cuts lines (and CRLFs) at
#: odd places, and one that cuts nearly every line.
CHUNKS = (1 << 16, 997, 61)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


_DECIMAL = re.compile(r"Decimal\('([^']*)'\)")


def _value(match: re.Match[str]) -> str:
    value = Decimal(match[1])
    return "D(0)" if value == 0 else f"D({value.normalize():f})"


def _ore(amount: Decimal) -> int:
    ore = amount.scaleb(2)
    assert ore == ore.to_integral_value(), f"{amount} is not a whole number of öre"
    return int(ore)


def _exact_row(row: TransRow) -> str:
    return (
        f"  {row.kind!s} {row.account!r} ore={_ore(row.amount)} {row.objects!r} {row.date!r}"
        f" {row.text!r} quantity={row.quantity!r} {row.sign!r} line={row.line}"
    )


def exact_repr(event: object) -> str:
    """`repr` with each amount as its exact value: rows' in öre, `Decimal`s unscaled."""
    if isinstance(event, Voucher):
        rows = "".join("\n" + _exact_row(row) for row in event.rows)
        text = f"{event._replace(rows=())!r} imbalance={_ore(event.imbalance())}{rows}"
    else:
        text = repr(event)
    return _DECIMAL.sub(_value, text)


def describe(path: Path, exact: bool = False) -> str:
    """The exact text of everything read from `path`, under every chunk size and policy
    (amounts as `exact_repr` writes them if `exact`)."""
    show: Callable[[object], str] = exact_repr if exact else repr
    data = path.read_bytes()
    out: list[str] = []
    for keep in (False, True):
        policy = policy_for_path(path, ReadPolicy(keep_voucher_source=keep))
        first: list[str] = []
        for size in CHUNKS:
            reader = SieReader(policy)
            controls = YearEndControls()
            prints = Fingerprints()
            lines: list[str] = []
            for chunk in _chunks(data, size):
                events = reader.feed(chunk)
                controls.feed(events)
                prints.add(events)
                lines.extend(map(show, events))
            events = reader.close()
            controls.feed(events)
            prints.add(events)
            lines.extend(map(show, events))
            lines.append(show(reader.summary()))
            lines.append(show(controls.finish()))
            if keep:
                lines.extend(f"{k} {d.hex()}" for k, d in zip(*prints.take(), strict=True))
            out.append(f"== keep_voucher_source={keep} chunk={size}")
            if not first:
                first = lines
                out.extend(lines)
            elif lines == first:  # the usual case, written once
                out.append(f"(the same as chunk={CHUNKS[0]})")
            else:
                out.extend(lines)
    return "\n".join(out) + "\n"


def generated(directory: Path, megabytes: float = 0.5) -> Path:
    """A Fortnox-shaped file the size of `megabytes`, as bench_sie generates it."""
    from bench.bench_sie import generate

    path = directory / "generated-fortnox.se"
    generate(path, megabytes, quoted=False)
    return path


def main(target: Path, exact: bool = False) -> None:
    """Write `describe` of every fixture, corpus file and a generated file under `target`."""
    from tests.harness.sie_files import CORPUS, FIXTURES, corpus_files, fixture_files

    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = [(FIXTURES, p) for p in fixture_files()] + [(CORPUS, p) for p in corpus_files()]
        files.append((Path(tmp), generated(Path(tmp))))
        for base, path in files:
            name = str(path.relative_to(base)).replace("/", "__") + ".txt"
            (target / name).write_text(describe(path, exact))
    print(f"{len(files)} files described in {target}")


if __name__ == "__main__":
    main(Path(sys.argv[-1]), exact="--exact" in sys.argv[1:-1])
