import sys

from fortnox_bridge.cli import main

sys.exit(main())
