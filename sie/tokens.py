"""Split one SIE line into fields.

Rules (sie-format.md §3): fields are separated by spaces or tabs; a `"` starts a quoted
field that ends at the next `"` not preceded by a backslash, and `\\"` inside it stands for
`"` (every other backslash is literal); `{` and `}` delimit an object list even when glued
to text. An object list becomes one tuple field, so a quoted `"{"` stays an ordinary text.
A quote left open runs to the end of the line.
"""

from __future__ import annotations

import re
from typing import Final

Field = str | tuple[str, ...]

_BRACES = re.compile(r"([{}])")
_COMPILED: Final = not __file__.endswith(".py")
"""Whether lines with quotes and no braces take `_quoted` (compiled, it is the faster way;
interpreted, its loop is slower than splitting the line at its quotes)."""


def _words(part: str) -> list[str]:
    if part.isascii():
        return part.split()
    return [w for w in part.replace("\t", " ").split(" ") if w]


def _quoted(line: str) -> list[Field]:
    """`tokenize` for a line with quotes but no braces (a `#VER` line): each quote is found
    with `find`, so the line is neither split at every quote nor joined again."""
    out: list[Field] = []
    start = 0
    while True:
        opening = line.find('"', start)
        part = line[start:] if opening < 0 else line[start:opening]
        if part and part != " ":
            out.extend(_words(part))
        if opening < 0:
            return out
        closing = line.find('"', opening + 1)
        while closing > 0 and line[closing - 1] == "\\":  # \" does not end the field
            closing = line.find('"', closing + 1)
        quoted = line[opening + 1 :] if closing < 0 else line[opening + 1 : closing]
        if "\\" in quoted:
            quoted = quoted.replace('\\"', '"')
        out.append(quoted)
        if closing < 0:
            return out
        start = closing + 1


def tokenize(line: str) -> list[Field]:
    """Return the fields of a stripped, non-empty line (the label is the first field)."""
    if "{" not in line and "}" not in line:
        if '"' not in line:
            return list(_words(line))
        if _COMPILED:
            return _quoted(line)
    out: list[Field] = []
    objects: list[str] | None = None
    parts = line.split('"')  # even parts lie outside quotes, odd parts inside
    count = len(parts)
    index = 0
    while index < count:
        part = parts[index]
        if "{" not in part and "}" not in part:
            if part and part != " ":  # a blank between two quoted fields holds no word
                (out if objects is None else objects).extend(_words(part))
        else:
            for piece in _BRACES.split(part):
                if piece == "{":
                    if objects is None:
                        objects = []
                elif piece == "}":
                    if objects is not None:
                        out.append(tuple(objects))
                        objects = None
                elif piece:
                    (out if objects is None else objects).extend(_words(piece))
        index += 1
        if index == count:
            break
        quoted = parts[index]
        while quoted.endswith("\\") and index + 1 < count:  # \" does not end the field
            index += 1
            quoted += '"' + parts[index]
        if "\\" in quoted:
            quoted = quoted.replace('\\"', '"')
        (out if objects is None else objects).append(quoted)
        index += 1
    if objects is not None:
        out.append(tuple(objects))
    return out
