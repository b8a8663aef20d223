"""Year-end controls benchmark: their cost as a ratio of the plain streaming parse.

Reuses `bench_sie.generate` for a Fortnox-shaped SIE 4E file of at least 50 MB, then
times, alternately in rounds, the reader alone (`SieReader.feed` over 64 KiB chunks) and the
reader with `YearEndControls` observing every event plus `finish()`, in CPU time. Each round
gives a ratio; the target is judged on the median of the rounds' ratios, since on a shared
machine the best of two wall-clock runs moved the overhead from -2 % to +30 % between runs.
Target: the controls add at most 15 %.
Run: `.venv/bin/python -m bench.bench_controls [--mb 50] [--rounds 5]`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.bench_sie import generate
from bench.size import sized
from sie.controls import YearEndControls
from sie.reader import SieReader

TARGET_OVERHEAD = 0.15
CHUNK = 1 << 16


def parse(path: Path, controls: YearEndControls | None) -> float:
    """CPU seconds to stream `path` through the reader (and the controls, if given)."""
    start = time.process_time()
    reader = SieReader()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            events = reader.feed(chunk)
            if controls is not None:
                controls.feed(events)
    events = reader.close()
    if controls is not None:
        controls.feed(events)
        controls.finish()
    return time.process_time() - start


def main() -> None:
    """Generate the file, time both variants, print throughputs and the overhead."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=sized(50, 0.3),
                        help="size of the generated file")
    parser.add_argument("--rounds", type=int, default=sized(5, 1), help="timings per variant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-controls-") as tmp:
        path = Path(tmp) / "fortnox.se"
        vouchers = generate(path, args.mb, quoted=False)
        size_mb = path.stat().st_size / 1e6
        print(f"generated {path.name}: {size_mb:.1f} MB, {vouchers} vouchers")
        plain, checked = [], []
        for _ in range(args.rounds):
            plain.append(parse(path, None))
            controls = YearEndControls()
            checked.append(parse(path, controls))
        ratios = [full / base for base, full in zip(plain, checked, strict=True)]
        base, full = statistics.median(plain), statistics.median(checked)
        overhead = statistics.median(ratios) - 1
        result = controls.finish()
        year = result.year(0)
        rows = len(year.rows) if year is not None else 0
        print(f"plain streaming parse:     {size_mb / base:6.1f} MB/s  ({base:.2f} s CPU, median)")
        print(f"parse + year-end controls: {size_mb / full:6.1f} MB/s  ({full:.2f} s CPU, median)")
        verdict = "met" if overhead <= TARGET_OVERHEAD else "NOT met"
        print(f"rounds' ratios controls/plain: {', '.join(f'{r:.3f}' for r in ratios)}")
        print(
            f"median ratio controls/plain: {overhead + 1:.3f}, overhead {overhead:+.1%} "
            f"(target <= {TARGET_OVERHEAD:.0%}: {verdict})"
        )
        print(f"controls state: {rows} year-0 accounts, {len(result.findings)} finding(s)")


if __name__ == "__main__":
    main()
