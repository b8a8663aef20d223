"""`python -m sie ...` until the `fortnox-bridge sie` dispatcher is wired."""

from __future__ import annotations

import sys

from sie.cli import main

sys.exit(main())
