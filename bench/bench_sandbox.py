"""The sandbox's large seed: seeding time, SIE export throughput over HTTP, peak memory."""

from __future__ import annotations

import sys

from bench.size import sized
from sandbox.benchmark import main

if __name__ == "__main__":
    sys.exit(main(sized([], ["2000"])))
