"""Regular expressions for the common shapes of voucher lines (the reader's fast paths).

A line (or a whole voucher block) that matches is parsed from the match groups with the
same meaning the general tokenizer (`sie.tokens`) would give it; anything unusual (more
optional fields, quoted dates, invalid amounts, stray braces) does not match and goes
through the general path, so the fast paths never change a result, only its cost.
Field groups come in pairs: (quoted content with `\\"` still escaped, bare token).
Possessive quantifiers keep the regex engine from backtracking, which is both the
speed-up and the guarantee that a backslash before a quote always escapes it.
"""

from __future__ import annotations

import re


def _field(newline_free: bool) -> str:
    stop = "\\n" if newline_free else ""
    quoted = rf'"([^"\\{stop}]*+(?:\\"?+[^"\\{stop}]*+)*+)"'
    bare = rf'([^ \t"{{}}\\{stop}]++)'
    return rf"(?:{quoted}|{bare})"


def _row(newline_free: bool) -> str:
    any_ = _field(newline_free)
    stop = "\\n" if newline_free else ""
    return (
        rf'#(TRANS|RTRANS|BTRANS)[ \t]+([^ \t"{{}}\\{stop}]+)[ \t]*\{{([^{{}}{stop}]*)\}}[ \t]*'
        r"(-?(?:\d{1,15}(?:\.\d{1,2})?|\.\d{1,2}))"
        rf"(?:[ \t]+{any_}(?:[ \t]+{any_}(?:[ \t]+{any_}(?:[ \t]+{any_})?)?)?)?"
    )


def _head(newline_free: bool) -> str:
    any_ = _field(newline_free)
    return (
        rf"#VER[ \t]+{any_}[ \t]+{any_}[ \t]+(\d{{8}})"
        rf"(?:[ \t]+{any_}(?:[ \t]+{any_}(?:[ \t]+{any_})?)?)?"
    )


ROW = re.compile(_row(False))
"""One stripped row line: label, account, object-list text, amount, then 4 field pairs
(date, text, quantity, sign)."""

HEAD = re.compile(_head(False))
"""One stripped `#VER` line: 2 field pairs (series, number), date, 3 field pairs
(text, registration date, sign)."""

VOUCHER = re.compile(
    _head(True)
    + r"[ \t]*\n[ \t]*\{[ \t]*\n((?:[ \t]*#[RB]?TRANS[ \t][^\n]*\n)*)[ \t]*\}[ \t]*(?:\n|\Z)"
)
"""A whole voucher block starting at a line start: the `HEAD` groups, then the text of
the row lines (each ending in a newline)."""

ROWS = re.compile(r"^[ \t]*" + _row(True) + r"[ \t]*$", re.MULTILINE)
"""Every row line of a block's row text; a line that does not match is simply missing
from `findall`, which the reader detects by counting."""
