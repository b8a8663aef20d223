"""The sandbox's large seed: seeding time, SIE export throughput over HTTP, peak memory."""

from __future__ import annotations

import sys

from sandbox.benchmark import main

if __name__ == "__main__":
    sys.exit(main([]))
