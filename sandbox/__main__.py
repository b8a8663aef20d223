"""``python -m sandbox``: run the sandbox server from the command line."""

from __future__ import annotations

import sys

from sandbox.cli import main

sys.exit(main())
