"""The ``fortnox-bridge`` console script: one command, three tools."""
