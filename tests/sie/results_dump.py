"""Everything the reader and the controls make of a SIE file, as one exact text.

Every event's `repr` (findings with their lines, balances, vouchers with rows, years and
kept sources, Decimals with their exponents), the summary and the controls' result, for
several chunk sizes and with and without voucher sources: two readers that agree on this
text agree on everything a caller can see. The test beside it compares the compiled and the
pure-Python reader on it; run as a script it writes the texts of the fixtures, the corpus
and a generated Fortnox-shaped file to a directory, to compare one commit against another:

    .venv/bin/python -m tests.sie.results_dump OUT_DIR   (then `diff -r` two such dirs)
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sie.controls import YearEndControls
from sie.policy import ReadPolicy
from sie.reader import SieReader
from sie.stream import policy_for_path

#: Chunk sizes each file is fed in: the reader's own, one that cuts lines (and CRLFs) at
#: odd places, and one that cuts nearly every line.
CHUNKS = (1 << 16, 997, 61)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def describe(path: Path) -> str:
    """The exact text of everything read from `path`, under every chunk size and policy."""
    data = path.read_bytes()
    out: list[str] = []
    for keep in (False, True):
        policy = policy_for_path(path, ReadPolicy(keep_voucher_source=keep))
        first: list[str] = []
        for size in CHUNKS:
            reader = SieReader(policy)
            controls = YearEndControls()
            lines: list[str] = []
            for chunk in _chunks(data, size):
                events = reader.feed(chunk)
                controls.feed(events)
                lines.extend(map(repr, events))
            events = reader.close()
            controls.feed(events)
            lines.extend(map(repr, events))
            lines.append(repr(reader.summary()))
            lines.append(repr(controls.finish()))
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


def main(target: Path) -> None:
    """Write `describe` of every fixture, corpus file and a generated file under `target`."""
    from tests.harness.sie_files import CORPUS, FIXTURES, corpus_files, fixture_files

    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = [(FIXTURES, p) for p in fixture_files()] + [(CORPUS, p) for p in corpus_files()]
        files.append((Path(tmp), generated(Path(tmp))))
        for base, path in files:
            name = str(path.relative_to(base)).replace("/", "__") + ".txt"
            (target / name).write_text(describe(path))
    print(f"{len(files)} files described in {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
