"""Character sets: sniff and decode lines when reading, map to CP437 when writing.

Reading never trusts `#FORMAT`. The first line with a non-ASCII byte decides the file's
encoding: UTF-8 if that line is valid UTF-8 and decodes to plausible characters (Latin
letters, general punctuation, currency signs), else CP437. Later lines that do not fit the
decided encoding fall back to CP437 (reported once as ENCODING_MIXED). In CP437 text a
Latin-1 letter byte (ä å ö Ä Å Ö é ü) glued to an ASCII letter is decoded as Latin-1
(the official SIE sample writes `F\\xf6retag`); that repair is reported once as
ENCODING_REPAIRED. Byte 0xFF stays NO-BREAK SPACE: Fortnox uses it in names.

Writing maps every character CP437 cannot hold by this rule, in order: a fixed table of
typographic look-alikes (quotes, dashes, euro sign, ellipsis, ...); then Unicode NFKD with
combining marks dropped (ł stays unmapped, é is in CP437 anyway, ő becomes o); control
characters become a space; anything left becomes `?`. Every replacement is reported.
"""

from __future__ import annotations

import re
import unicodedata

ASCII = "ascii"
CP437 = "cp437"
UTF8 = "utf-8"

_LATIN1_LETTERS = rb"\xc4\xc5\xd6\xdc\xe4\xe5\xe9\xf6\xfc"
_LATIN1_BYTES = tuple(bytes([b]) for b in b"\xc4\xc5\xd6\xdc\xe4\xe5\xe9\xf6\xfc")
_REPAIRABLE = re.compile(
    rb"(?<=[A-Za-z])[" + _LATIN1_LETTERS + rb"]|[" + _LATIN1_LETTERS + rb"](?=[A-Za-z])"
)


_PLAUSIBLE_UTF8 = re.compile("[\x00-\x7f\u00a0-\u024f\u2000-\u20cf]*")
"""Characters a UTF-8 SIE file plausibly starts with (Latin letters, punctuation, €).
CP437 text that happens to be valid UTF-8 decodes to other characters (box drawing
followed by letters gives Arabic or Hangul), so such a line does not decide UTF-8."""


def needs_repair(raw: bytes) -> bool:
    """Tell whether CP437 bytes hold a Latin-1 letter glued to an ASCII letter."""
    if not any(byte in raw for byte in _LATIN1_BYTES):  # fast scans; the regex is slow
        return False
    return _REPAIRABLE.search(raw) is not None


def _repair_latin1(raw: bytes) -> tuple[str, bool]:
    """Decode CP437, but Latin-1 letters glued to ASCII letters as Latin-1."""
    if not needs_repair(raw):
        return raw.decode(CP437), False
    parts: list[str] = []
    pos = 0
    for match in _REPAIRABLE.finditer(raw):
        parts.append(raw[pos : match.start()].decode(CP437))
        parts.append(match.group().decode("latin-1"))
        pos = match.end()
    parts.append(raw[pos:].decode(CP437))
    return "".join(parts), True


class LineDecoder:
    """Decode non-ASCII lines of one file, deciding its encoding on first sight."""

    __slots__ = ("encoding", "mixed_line", "repaired_line")

    def __init__(self) -> None:
        self.encoding = ASCII
        self.mixed_line: int | None = None
        self.repaired_line: int | None = None

    def decode(self, raw: bytes, line: int) -> str:
        """Decode one line that contains at least one non-ASCII byte."""
        if self.encoding != CP437:
            try:
                text = raw.decode(UTF8)
            except UnicodeDecodeError:
                if self.encoding == UTF8 and self.mixed_line is None:
                    self.mixed_line = line
                elif self.encoding == ASCII:
                    self.encoding = CP437
            else:
                if self.encoding == UTF8 or _PLAUSIBLE_UTF8.fullmatch(text):
                    self.encoding = UTF8
                    return text
                self.encoding = CP437
        text, repaired = _repair_latin1(raw)
        if repaired and self.repaired_line is None:
            self.repaired_line = line
        return text


_LOOKALIKES = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
    "\u20ac": "EUR", "\u2026": "...", "\u2022": "*", "\u00a8": '"', "\u2122": "TM",
    "\u00a9": "(c)", "\u00ae": "(R)", "\u2009": " ", "\u202f": " ", "\u200b": "",
}  # fmt: skip


def _fits(char: str) -> bool:
    try:
        char.encode(CP437)
    except UnicodeEncodeError:
        return False
    return True


def _replace_char(char: str) -> str:
    if ord(char) < 32 or ord(char) == 127:
        return " "
    if char in _LOOKALIKES:
        return _LOOKALIKES[char]
    stripped = "".join(
        c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
    )
    if stripped and all(_fits(c) and ord(c) >= 32 for c in stripped):
        return stripped
    return "?"


def to_cp437_text(text: str) -> tuple[str, list[str]]:
    """Return `text` with every character CP437 cannot hold (or a control) replaced.

    Returns:
        The writable text and a list of `"X -> Y"` descriptions of the replacements.
    """
    if text.isascii() and text.isprintable():
        return text, []
    out: list[str] = []
    notes: list[str] = []
    for char in text:
        if ord(char) >= 32 and ord(char) != 127 and _fits(char):
            out.append(char)
            continue
        substitute = _replace_char(char)
        out.append(substitute)
        notes.append(f"U+{ord(char):04X} -> {substitute!r}")
    return "".join(out), notes
