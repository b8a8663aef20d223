"""Small, valid one-page PDF documents (invoice previews, attachments, receipts)."""

from __future__ import annotations


def _escape(text: str) -> str:
    latin = text.encode("latin-1", errors="replace").decode("latin-1")
    return latin.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def render_pdf(title: str, lines: tuple[str, ...] | list[str], *, padding: int = 0) -> bytes:
    """A PDF 1.4 file with ``title`` and ``lines`` in Helvetica, with a correct xref table;
    ``padding`` adds about that many bytes of comment lines to the page's content stream."""
    text = [f"BT /F1 16 Tf 50 780 Td ({_escape(title)}) Tj ET"]
    text += [f"BT /F1 11 Tf 50 {750 - 16 * i} Td ({_escape(line)}) Tj ET"
             for i, line in enumerate(lines)]
    stream = "\n".join(text).encode("latin-1")
    if padding > 0:
        line = b"\n%" + b"." * 78
        stream += line * (padding // len(line)) + b"\n%" + b"." * (padding % len(line))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)
