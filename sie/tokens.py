"""Split one SIE line into fields.

Rules (sie-format.md §3): fields are separated by spaces or tabs; a `"` starts a quoted
field that ends at the next `"` not preceded by a backslash, and `\\"` inside it stands for
`"` (every other backslash is literal); `{` and `}` delimit an object list even when glued
to text. An object list becomes one tuple field, so a quoted `"{"` stays an ordinary text.
A quote left open runs to the end of the line.
"""

from __future__ import annotations

import re

Field = str | tuple[str, ...]

_SLOW = re.compile(r'"((?:[^"\\]|\\"|\\)*)(?:"|$)|([{}])|([^ \t{}"]+)')
_BRACES = re.compile(r"([{}])")


def _words(part: str) -> list[str]:
    if part.isascii():
        return part.split()
    return [w for w in part.replace("\t", " ").split(" ") if w]


def tokenize(line: str) -> list[Field]:
    """Return the fields of a stripped, non-empty line (the label is the first field)."""
    if '"' not in line and "{" not in line and "}" not in line:
        return list(_words(line))
    if '\\"' in line:
        return _tokenize_escaped(line)
    out: list[Field] = []
    objects: list[str] | None = None
    for index, part in enumerate(line.split('"')):
        if index & 1:
            (out if objects is None else objects).append(part)
        elif "{" not in part and "}" not in part:
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
    if objects is not None:
        out.append(tuple(objects))
    return out


def _tokenize_escaped(line: str) -> list[Field]:
    out: list[Field] = []
    objects: list[str] | None = None
    for quoted, brace, bare in _SLOW.findall(line):
        if brace == "{":
            if objects is None:
                objects = []
        elif brace == "}":
            if objects is not None:
                out.append(tuple(objects))
                objects = None
        else:
            value = bare or quoted.replace('\\"', '"')
            (out if objects is None else objects).append(value)
    if objects is not None:
        out.append(tuple(objects))
    return out
