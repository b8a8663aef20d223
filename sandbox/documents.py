"""The bytes of an archived file: a one-page PDF, or a tiny JPEG (a photographed receipt)
whose text rides in comment segments; either padded to a size when a test needs a large file.

Rendering is deterministic, so the same file always has the same bytes (and SHA-256)."""

from __future__ import annotations

import functools

from sandbox.model import StoredFile
from sandbox.pdf import render_pdf

PDF = "application/pdf"
JPEG = "image/jpeg"
#: The most bytes one JPEG comment segment holds (its length field counts itself).
_COMMENT_MAX = 0xFFFF - 2


def _segment(marker: int, body: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(body) + 2).to_bytes(2, "big") + body


def _one_code_table(table_class: int) -> bytes:
    """A Huffman table with one code of length 1 for the symbol 0 (DC: no difference; AC:
    end of block), enough for a uniformly grey 8×8 image."""
    return _segment(0xC4, bytes((table_class << 4,)) + bytes((1,) + (0,) * 15) + b"\x00")


def render_jpeg(text: str, padding: int = 0) -> bytes:
    """A valid baseline JPEG of one grey 8×8 block, carrying ``text`` (and ``padding`` filler
    bytes) in comment segments."""
    comments = [text.encode("utf-8")]
    filler = padding
    while filler > 0:
        take = min(filler, _COMMENT_MAX)
        comments.append(b"." * take)
        filler -= take
    return b"".join((
        b"\xff\xd8",
        _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
        *(_segment(0xFE, c) for c in comments),
        _segment(0xDB, b"\x00" + b"\x01" * 64),
        _segment(0xC0, bytes((8, 0, 8, 0, 8, 1, 1, 0x11, 0))),
        _one_code_table(0), _one_code_table(1),
        _segment(0xDA, bytes((1, 1, 0x00, 0, 63, 0))),
        b"\x3f",  # DC "0" + EOB "0", padded with one-bits
        b"\xff\xd9",
    ))


@functools.lru_cache(maxsize=4)
def _render(content_type: str, title: str, lines: tuple[str, ...], padding: int) -> bytes:
    if content_type == JPEG:
        return render_jpeg("\n".join((title, *lines)), padding)
    return render_pdf(title, lines, padding=padding)


def render_file(f: StoredFile) -> bytes:
    """The file's bytes, as the archive serves them."""
    return _render(f.content_type, f.title, f.lines, f.padding)
