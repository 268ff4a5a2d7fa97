"""Small, real PDF and DOCX documents for the demo data, written without third-party libraries."""

from __future__ import annotations

import textwrap
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

_LINES_PER_PAGE = 48


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def write_pdf(path: Path, title: str, body: str) -> None:
    """Write a PDF whose pages show ``title`` and ``body`` in Helvetica (text is extractable)."""
    lines = [title, ""]
    for paragraph in body.split("\n"):
        lines.extend(textwrap.wrap(paragraph, 88) or [""])
    pages = [lines[i : i + _LINES_PER_PAGE] for i in range(0, len(lines), _LINES_PER_PAGE)] or [[title]]
    objects: list[bytes] = []
    # 1: catalog, 2: pages, 3: font, then a content stream and a page object per page.
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for number, page in enumerate(pages):
        ops = [b"BT", b"/F1 11 Tf", b"14 TL", b"56 790 Td"]
        for index, line in enumerate(page):
            if number == 0 and index == 0:
                ops += [b"/F1 15 Tf", _pdf_string(line) + b" Tj", b"/F1 11 Tf", b"T*"]
            else:
                ops.append(_pdf_string(line) + b" '")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {4 + 2 * number} 0 R >>".encode()
        )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body_bytes in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body_bytes + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))


_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
</Types>"""
_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>
</Relationships>"""


def write_docx(path: Path, title: str, body: str) -> None:
    """Write a minimal Word document with ``title`` in bold and ``body`` as paragraphs."""
    paragraphs = [
        f'<w:p><w:r><w:rPr><w:b/><w:sz w:val="32"/></w:rPr><w:t xml:space="preserve">{escape(title)}</w:t></w:r></w:p>'
    ]
    paragraphs += [
        f'<w:p><w:r><w:t xml:space="preserve">{escape(p)}</w:t></w:r></w:p>' for p in body.split("\n")
    ]
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
        + "".join(paragraphs)
        + "</w:body></w:document>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("word/document.xml", document)


def write_document(path: Path, title: str, body: str) -> None:
    """Write a PDF or DOCX at ``path``, chosen by its extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".docx":
        write_docx(path, title, body)
    else:
        write_pdf(path, title, body)
