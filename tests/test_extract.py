"""Text extraction: real documents give their text, and a bad file fails alone, quickly, saying why."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from registry import extract
from registry.extract import DOCX, ODT, PDF, XLSX, Extracted, extract_many, extract_one
from seed.documents import write_docx, write_pdf

# Tiny limits so that the misbehaving files fail in about a second each.
TINY = {"cpu_seconds": 1, "memory_mb": 256, "wall_seconds": 3}
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def make_pdf(folder: Path, name: str = "notice.pdf", body: str = "Le pangolin est protégé.") -> Path:
    """A real PDF whose text is ``body``."""
    path = folder / name
    write_pdf(path, "Avis", body)
    return path


def make_zip(path: Path, parts: dict[str, str | bytes]) -> Path:
    """A zip file with the given parts, as office documents are."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return path


def make_odt(path: Path) -> Path:
    """An OpenDocument text with a heading, spans, a tab, a line break and a note."""
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.3">'
        "<office:body><office:text>"
        "<text:h text:outline-level='1'>Centre de sauvetage</text:h>"
        "<text:p>Perroquets<text:tab/>gris<text:s text:c='3'/>saisis<text:line-break/>à l'aéroport"
        "<text:note><text:note-body><text:p>Note de bas de page</text:p></text:note-body></text:note>"
        "</text:p>"
        "<text:p><text:span>Capacité :</text:span> 40</text:p>"
        "</office:text></office:body></office:document-content>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", ODT)  # stored first and uncompressed, as ODF requires
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    return path


def make_xlsx(path: Path) -> Path:
    """A workbook with shared strings (one with a phonetic guide), an inline string and numbers."""
    main = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    shared = (
        f'<?xml version="1.0" encoding="UTF-8"?><sst {main} count="3" uniqueCount="3">'
        "<si><t>Espèce</t></si><si><t>Effectif</t></si>"
        "<si><r><t>Python </t></r><r><t>regius</t></r><rPh sb='0' eb='1'><t>ignored</t></rPh></si></sst>"
    )
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet {main}><sheetData>'
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
        '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><v>12</v></c></row>'
        '<row r="3"><c r="A3" t="inlineStr"><is><t>Testudo graeca</t></is></c>'
        '<c r="B3"><f>B2*2</f><v>24.5</v></c><c r="C3" t="b"><v>1</v></c>'
        '<c r="D3" t="e"><v>#DIV/0!</v></c></row>'
        "</sheetData></worksheet>"
    )
    second = f"<worksheet {main}><sheetData><row><c><v>7</v></c></row></sheetData></worksheet>"
    parts = {
        "xl/workbook.xml": f"<workbook {main}/>",
        "xl/sharedStrings.xml": shared,
        "xl/worksheets/sheet1.xml": sheet,
        "xl/worksheets/sheet2.xml": second,
    }
    return make_zip(path, parts)


def make_png(path: Path) -> Path:
    """The PNG signature and a 1×1 header chunk: an image, which has no text."""
    header = b"\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x01" * 2 + b"\x08\x02\x00\x00\x00"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header)
    return path


def word_document(body: str, prolog: str = "") -> str:
    """The XML of a Word document body, after an optional prolog (where a DOCTYPE would go)."""
    return f'<?xml version="1.0"?>{prolog}<w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>'


def test_pdf_text_in_french_and_spanish(tmp_path):
    french = make_pdf(tmp_path, "fr.pdf", "Le pangolin est protégé par la CITES.")
    spanish = make_pdf(tmp_path, "es.pdf", "Las tortugas decomisadas fueron trasladadas al centro.")

    results = extract_many([(french, PDF), (spanish, PDF)])

    assert results[0] == Extracted(text="Avis\nLe pangolin est protégé par la CITES.", error=None)
    assert results[1].error is None
    assert "tortugas decomisadas" in results[1].text


def test_word_document_text_is_tidied(tmp_path):
    path = tmp_path / "report.docx"
    # A decomposed é (e + combining acute) comes out composed; runs of spaces and tabs become one space.
    write_docx(path, "Rapport", "Tortue  prote\u0301ge\u0301e\t  saisie\n\n   \nDeuxième paragraphe")

    expected = "Rapport\nTortue protégée saisie\nDeuxième paragraphe"
    assert extract_one(path, DOCX) == Extracted(text=expected, error=None)


def test_word_headers_tabs_breaks_and_text_boxes(tmp_path):
    body = (
        "<w:p><w:r><w:t>Nom</w:t><w:tab/><w:t>Valeur</w:t><w:br/><w:t>suite</w:t></w:r></w:p>"
        "<w:p><w:r><w:delText>supprimé</w:delText><w:instrText>PAGE</w:instrText></w:r></w:p>"
        '<w:p><mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">'
        "<mc:Choice><w:t>Encadré</w:t></mc:Choice><mc:Fallback><w:t>Encadré</w:t></mc:Fallback>"
        "</mc:AlternateContent></w:p>"
    )
    header = f'<w:hdr xmlns:w="{W}"><w:p><w:r><w:t>En-tête officiel</w:t></w:r></w:p></w:hdr>'
    parts = {"word/document.xml": word_document(body), "word/header1.xml": header}
    path = make_zip(tmp_path / "x.docx", parts)

    assert extract_one(path, DOCX).text == "Nom Valeur\nsuite\nEncadré\nEn-tête officiel"


def test_odt_and_xlsx_text(tmp_path):
    odt = make_odt(tmp_path / "fiche.odt")
    xlsx = make_xlsx(tmp_path / "effectifs.xlsx")

    text_odt, text_xlsx = (result.text for result in extract_many([(odt, ODT), (xlsx, XLSX)]))

    assert text_odt == (
        "Centre de sauvetage\nPerroquets gris saisis\nà l'aéroport\nNote de bas de page\nCapacité : 40"
    )
    assert text_xlsx == "Espèce Effectif\nPython regius 12\nTestudo graeca 24.5 TRUE\n7"


def test_images_have_no_text_and_other_types_are_not_extracted(tmp_path):
    png = make_png(tmp_path / "photo.png")

    results = extract_many([(png, "image/png"), (png, "image/jpeg"), (png, "text/html")])

    assert results == [
        Extracted(text="", error=None),
        Extracted(text="", error=None),
        Extracted(text=None, error="no text extraction for this type"),
    ]


def test_broken_files_fail_alone_in_their_batch(tmp_path):
    good = make_pdf(tmp_path)
    corrupt = tmp_path / "corrupt.pdf"
    corrupt.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R")
    not_a_zip = tmp_path / "fake.docx"
    not_a_zip.write_bytes(b"PK\x03\x04 this is not a zip")
    no_body = make_zip(tmp_path / "empty.docx", {"word/styles.xml": "<styles/>"})

    results = extract_many([(corrupt, PDF), (good, PDF), (not_a_zip, DOCX), (no_body, DOCX), (good, PDF)])

    assert results[0].text is None and results[0].error.startswith("not a valid PDF: ")
    assert results[2].text is None and results[2].error.startswith("not a valid Word document: ")
    assert results[3].error == "not a valid Word document: there is no word/document.xml"
    assert results[1] == results[4] == Extracted(text="Avis\nLe pangolin est protégé.", error=None)


def test_missing_file_does_not_reveal_the_storage_path(tmp_path):
    result = extract_one(tmp_path / "secret-folder" / "gone.pdf", PDF)

    assert result == Extracted(text=None, error="not a valid PDF: the file could not be read")


BOMB = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'


@pytest.mark.parametrize(
    "document",
    [
        word_document("<w:p><w:r><w:t>&lol2;</w:t></w:r></w:p>", BOMB).encode(),
        word_document("<w:p/>", BOMB.replace("DOCTYPE", "doctype")).encode(),
        # In UTF-16 the bytes are not b"<!DOCTYPE"; the parser itself must refuse it.
        word_document("<w:p/>", BOMB).replace('"1.0"?>', '"1.0" encoding="UTF-16"?>').encode("utf-16"),
    ],
    ids=["entity-bomb", "lowercase", "utf-16"],
)
def test_a_document_with_a_dtd_is_refused(tmp_path, document):
    bomb = make_zip(tmp_path / "bomb.docx", {"word/document.xml": document})
    good = make_pdf(tmp_path)

    results = extract_many([(bomb, DOCX), (good, PDF)])

    assert results[0] == Extracted(text=None, error="the document contains a DTD, which is refused")
    assert results[1].error is None


def test_a_zip_part_that_expands_too_far_is_refused(tmp_path):
    huge = b" " * (extract.MAX_PART_BYTES + 1)
    path = tmp_path / "expands.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("word/document.xml", huge)

    assert extract_one(path, DOCX).error == "a part of the document expands to more than 100 MB"


@pytest.fixture
def hooks(monkeypatch):
    """Let files named *.loop.pdf, *.hog.pdf and *.sleep.pdf misbehave in the worker."""
    monkeypatch.setenv("REGISTRY_EXTRACT_TEST_HOOKS", "1")


@pytest.mark.parametrize(
    ("name", "limits", "reason"),
    [
        ("evil.loop.pdf", TINY, "took more than 1 s of CPU time"),
        ("evil.hog.pdf", TINY, "used more than 256 MB of memory"),
        ("evil.sleep.pdf", {**TINY, "wall_seconds": 1}, "took longer than 1 s"),
    ],
    ids=["cpu", "memory", "wall-clock"],
)
def test_a_misbehaving_file_fails_alone_with_its_reason(tmp_path, hooks, name, limits, reason):
    before, after = make_pdf(tmp_path, "before.pdf"), make_pdf(tmp_path, "after.pdf", "Tortugas decomisadas")
    evil = make_pdf(tmp_path, name)

    started = time.monotonic()
    results = extract_many([(before, PDF), (evil, PDF), (after, PDF)], **limits)

    assert results[1] == Extracted(text=None, error=reason)
    assert results[0].text == "Avis\nLe pangolin est protégé."
    assert results[2].text == "Avis\nTortugas decomisadas"
    # The batch gets three times the limits, but the bad file only its own share, twice at most.
    assert time.monotonic() - started < 2 * limits["wall_seconds"] + 2


def test_hooks_are_off_unless_asked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("REGISTRY_EXTRACT_TEST_HOOKS", raising=False)
    path = make_pdf(tmp_path, "innocent.loop.pdf")

    assert extract_one(path, PDF, **TINY).text == "Avis\nLe pangolin est protégé."


def test_the_worker_imports_neither_flask_nor_pypdf_for_office_files(tmp_path):
    path = make_odt(tmp_path / "fiche.odt")

    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-P", extract.__file__],
        input=json.dumps([{"path": str(path), "media_type": ODT}]).encode(),
        capture_output=True,
        check=True,
    )

    assert json.loads(done.stdout)["text"].startswith("Centre de sauvetage")
    imported = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines()}
    assert not {"flask", "pypdf", "subprocess", "registry"} & imported


def test_limits_must_be_positive(tmp_path):
    with pytest.raises(ValueError):
        extract_many([(tmp_path / "a.pdf", PDF)], cpu_seconds=0)


def shared_stream_pdf(path: Path, pages: int = 60, repeats: int = 20_000) -> Path:
    """A real PDF of about 10 KB whose ``pages`` pages all show one compressed content stream.

    The stream inflates to ``repeats`` drawing operators (and one line of text, so that it is parsed for
    text), which the PDF parser reads again for every page: about a second of CPU per page here.
    """
    operators = b"BT /F1 12 Tf 72 720 Td (Seized parrots) Tj ET\n" + b"0 0 m 10 10 l S\n" * repeats
    content = zlib.compress(operators, 9)
    kids = " ".join(f"{5 + page} 0 R" for page in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    objects += [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> "
        b"/Contents 4 0 R >>"
    ] * pages
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def test_a_small_pdf_whose_pages_share_one_huge_stream_hits_the_cpu_limit(tmp_path):
    """Issue 10, item 9: ten kilobytes that cost a minute of CPU; the per-file limit stops them."""
    slow = shared_stream_pdf(tmp_path / "slow.pdf")
    assert slow.stat().st_size < 12_000

    assert extract_one(slow, PDF, **TINY) == Extracted(text=None, error="took more than 1 s of CPU time")


def test_files_sent_together_share_one_deadline(tmp_path):
    """Issue 10, item 9: past the deadline of the call, the file being read and those after it get no
    text, and say why; the files before it keep theirs."""
    first, last = make_pdf(tmp_path, "first.pdf"), make_pdf(tmp_path, "last.pdf", "Tortugas decomisadas")
    slow = shared_stream_pdf(tmp_path / "slow.pdf")

    results = extract_many([(first, PDF), (slow, PDF), (last, PDF)], deadline=time.monotonic() + 3)

    assert results[0] == Extracted(text="Avis\nLe pangolin est protégé.", error=None)
    assert results[1] == results[2] == Extracted(text=None, error=extract.OUT_OF_TIME)


def test_a_deadline_already_passed_starts_no_worker(tmp_path, monkeypatch):
    def no_worker(*_args, **_kwargs):
        raise AssertionError("a worker was started after the deadline")

    monkeypatch.setattr(extract, "_run_worker", no_worker)
    png = make_png(tmp_path / "photo.png")

    results = extract_many([(make_pdf(tmp_path), PDF), (png, "image/png")], deadline=time.monotonic() - 1)

    assert results == [Extracted(text=None, error=extract.OUT_OF_TIME), Extracted(text="", error=None)]
