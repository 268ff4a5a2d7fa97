"""Uploads: real files are checked by their content, stored atomically, carried across form
re-renders by signed tokens, and swept when no record ever came to reference them."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import stat
import struct
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from flask import request
from werkzeug.datastructures import FileStorage

from registry import storage, uploads
from registry.db import commit, session
from registry.models import File
from registry.services.records import write
from registry.storage import Refused
from seed.documents import write_docx, write_pdf

from .factories import make_record, make_user, record_data

MB = 1024 * 1024
SECRET = "test-secret-key"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODT = "application/vnd.oasis.opendocument.text"
DAY = dt.timedelta(days=1)


# Real files --------------------------------------------------------------------------------------


def png_bytes() -> bytes:
    """A real 1×1 white PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff"))
        + chunk(b"IEND", b"")
    )


def segment(marker: int, payload: bytes) -> bytes:
    """One JPEG marker segment: the marker, its length (which counts itself) and its payload."""
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def huffman_table(table_class: int) -> bytes:
    """A Huffman table of one code, one bit long, for the symbol 0 (a DC of 0, or the end of a block)."""
    return bytes((table_class << 4,)) + bytes((1,) + (0,) * 15) + b"\x00"


# The start of a JPEG (SOI, then a JFIF APP0 segment).
JPEG_HEAD = b"\xff\xd8" + segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
# A real 1×1 grey baseline JPEG: quantisation table, frame header, Huffman tables, scan, one block
# coded in two bits (padded with ones), end of image.
JPEG = (
    JPEG_HEAD
    + segment(0xDB, b"\x00" + b"\x01" * 64)
    + segment(0xC0, b"\x08\x00\x01\x00\x01\x01\x01\x11\x00")
    + segment(0xC4, huffman_table(0))
    + segment(0xC4, huffman_table(1))
    + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    + b"\x3f\xff\xd9"
)


def upload(data: bytes, filename: str = "plan.pdf") -> FileStorage:
    """What Werkzeug hands a view for one file field of a form."""
    return FileStorage(stream=io.BytesIO(data), filename=filename)


def pdf_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "source.pdf"
    write_pdf(path, "Plan d'action", "Le pangolin saisi est placé au centre de sauvetage.")
    return path.read_bytes()


def write_zip(path: Path, parts: dict[str, bytes | str], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return path


def docx_parts() -> dict[str, bytes | str]:
    """The parts of a minimal Word document."""
    return {"[Content_Types].xml": "<Types/>", "word/document.xml": "<w:document/>"}


def write_zeros_member(archive: zipfile.ZipFile, name: str, megabytes: int) -> None:
    """Stream ``megabytes`` of zeros into ``archive`` (deflated about 1000 to 1) without holding them."""
    zeros = bytes(MB)
    with archive.open(name, "w") as member:
        for _ in range(megabytes):
            member.write(zeros)


def leftovers(files_dir: Path) -> list[str]:
    """Everything in the files folder, temporary files included."""
    return sorted(p.name for p in files_dir.iterdir()) if files_dir.exists() else []


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DOCX holding one member of 300 MB of zeros: about 300 KB on disk."""
    path = tmp_path_factory.mktemp("bomb") / "report.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in docx_parts().items():
            archive.writestr(name, content)
        write_zeros_member(archive, "word/media/image1.png", 300)
    return path


# Accepted ----------------------------------------------------------------------------------------


def test_a_real_pdf_is_accepted_with_its_hash(tmp_path):
    data = pdf_bytes(tmp_path)
    files_dir = tmp_path / "files"
    staged = uploads.accept(upload(data, "Plan d'action.pdf"), files_dir, 50 * MB)
    assert staged.media_type == "application/pdf"
    assert staged.size == len(data)
    assert staged.sha256 == hashlib.sha256(data).hexdigest()
    assert staged.original_name == "Plan d'action.pdf"
    stored = files_dir / staged.stored_name
    assert stored.read_bytes() == data
    assert storage.is_stored_name(staged.stored_name)
    # Confidential contracts live here: readable by the app's own user only.
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert leftovers(files_dir) == [staged.stored_name]


@pytest.mark.parametrize(
    ("data", "filename", "media_type"),
    [
        (png_bytes(), "photo.png", "image/png"),
        (png_bytes(), "looks-like-a.pdf", "image/png"),
        (JPEG, "photo.jpeg", "image/jpeg"),
        (JPEG, "no extension", "image/jpeg"),
    ],
)
def test_images_are_recognised_by_their_content_not_their_name(tmp_path, data, filename, media_type):
    staged = uploads.accept(upload(data, filename), tmp_path, MB)
    assert staged.media_type == media_type
    assert staged.original_name == filename


def test_office_documents_are_recognised(tmp_path):
    write_docx(tmp_path / "plan.docx", "Plan", "Body")
    write_zip(tmp_path / "sheet.xlsx", {"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"})
    write_zip(
        tmp_path / "note.odt",
        {"mimetype": "application/vnd.oasis.opendocument.text", "content.xml": "<office:document-content/>"},
        zipfile.ZIP_STORED,
    )
    found = {name: storage.sniff(tmp_path / name) for name in ("plan.docx", "sheet.xlsx", "note.odt")}
    assert found == {"plan.docx": DOCX, "sheet.xlsx": XLSX, "note.odt": ODT}


def test_a_document_with_an_embedded_workbook_is_accepted(tmp_path):
    # A chart in a Word document keeps its data as a whole XLSX inside the DOCX: a zip in a zip.
    workbook = write_zip(tmp_path / "chart.xlsx", {"xl/workbook.xml": "<workbook/>"}).read_bytes()
    parts = {**docx_parts(), "word/embeddings/Microsoft_Excel_Worksheet.xlsx": workbook}
    assert storage.sniff(write_zip(tmp_path / "with-chart.docx", parts)) == DOCX


# Refused, with the reason ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff" + b"Dear colleagues, this is not a picture." * 10,
        JPEG_HEAD + b"\xff\xd9",  # no frame, no scan: three magic bytes and nothing of an image
        JPEG_HEAD + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x3f\xff\xd9",  # a scan without a frame
        JPEG_HEAD + b"\xff\xdb\x10\x00" + b"\x01" * 64,  # a segment longer than the file
        b"\xff\xd8\xff\xe0\x00\x01JFIF",  # a length too short to count itself
        b"\xff\xd8" + b"\xff" * 1000,  # fill bytes and nothing else
    ],
    ids=["text", "header-only", "scan-without-frame", "overlong-segment", "short-length", "fill"],
)
def test_a_file_that_only_starts_like_a_jpeg_is_refused(tmp_path, data):
    files_dir = tmp_path / "files"
    with pytest.raises(Refused) as refused:
        uploads.accept(upload(data, "photo.jpg"), files_dir, MB)
    assert refused.value.code == "damaged_image"
    assert str(refused.value) == "The image is damaged or incomplete."
    assert leftovers(files_dir) == []


MACROS = {
    "docm": {
        "[Content_Types].xml": '<Types><Override PartName="/word/document.xml" '
        'ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/></Types>',
        "word/document.xml": "<w:document/>",
        "word/vbaProject.bin": b"\xd0\xcf\x11\xe0" + bytes(60),
    },
    "xlsm": {
        "[Content_Types].xml": '<Types><Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.ms-excel.sheet.macroEnabled.main+xml"/></Types>',
        "xl/workbook.xml": "<workbook/>",
        "xl/vbaProject.bin": b"\xd0\xcf\x11\xe0" + bytes(60),
    },
    # Either sign alone is enough: a renamed .docm keeps its content type, a VBA part is a VBA part.
    "content-type-only": {
        "[Content_Types].xml": '<Types><Default Extension="bin" '
        'ContentType="application/vnd.ms-office.vbaProject"/></Types>',
        "word/document.xml": "<w:document/>",
    },
    "vba-part-only": {**docx_parts(), "word/VBAProject.bin": b"\x00" * 64},
    "excel-4-macro-sheet": {
        "[Content_Types].xml": "<Types/>",
        "xl/workbook.xml": "<workbook/>",
        "xl/macrosheets/sheet1.xml": "<xm:macrosheet/>",
    },
    "odt-basic": {
        "mimetype": "application/vnd.oasis.opendocument.text",
        "content.xml": "<office:document-content/>",
        "Basic/Standard/Module1.xml": "<script:module/>",
    },
}


@pytest.mark.parametrize("kind", sorted(MACROS))
def test_documents_with_macros_are_refused_saying_why(tmp_path, kind):
    path = write_zip(tmp_path / f"{kind}.zip", MACROS[kind])
    files_dir = tmp_path / "files"
    with pytest.raises(Refused) as refused:
        uploads.accept(upload(path.read_bytes(), "report.docx"), files_dir, MB)
    assert refused.value.code == "macros"
    assert "macros" in str(refused.value) and ".docm" in str(refused.value)
    assert leftovers(files_dir) == []


def test_a_macro_workbook_embedded_in_a_document_is_refused(tmp_path):
    workbook = write_zip(tmp_path / "book.xlsm", MACROS["xlsm"]).read_bytes()
    parts = {**docx_parts(), "word/embeddings/Microsoft_Excel_Macro-Enabled_Worksheet.xlsm": workbook}
    with pytest.raises(Refused) as refused:
        storage.sniff(write_zip(tmp_path / "with-macros.docx", parts))
    assert refused.value.code == "macros"


def test_a_text_file_named_pdf_is_refused_with_the_reason(tmp_path):
    files_dir = tmp_path / "files"
    with pytest.raises(Refused) as refused:
        uploads.accept(upload(b"Dear colleagues, please find the plan attached.", "plan.pdf"), files_dir, MB)
    assert refused.value.code == "unsupported"
    assert str(refused.value) == "Only PDF, DOCX, ODT, XLSX, JPEG and PNG files are accepted."
    assert leftovers(files_dir) == []


@pytest.mark.parametrize(
    ("data", "code", "says"),
    [
        (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\n", "damaged_pdf", "damaged or incomplete"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 16, "damaged_image", "image is damaged"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "legacy_office", "(.doc, .xls)"),
        (b"PK\x03\x04" + b"\x00" * 100, "damaged_document", "damaged"),
        (b"", "empty", "The file is empty."),
    ],
)
def test_damaged_and_unsupported_files_are_refused_saying_why(tmp_path, data, code, says):
    files_dir = tmp_path / "files"
    with pytest.raises(Refused) as refused:
        uploads.accept(upload(data, "document.pdf"), files_dir, MB)
    assert refused.value.code == code
    assert says in str(refused.value)
    assert leftovers(files_dir) == []


@pytest.mark.parametrize("given", [None, upload(b"", ""), upload(b"%PDF-", "   ")])
def test_a_form_without_a_file_is_refused(tmp_path, given):
    with pytest.raises(Refused) as refused:
        uploads.accept(given, tmp_path, MB)
    assert refused.value.code == "no_file"
    assert str(refused.value) == "No file was included: choose a file to upload."


def test_a_docx_zip_bomb_is_refused_quickly_without_expanding_it(tmp_path, bomb):
    files_dir = tmp_path / "files"
    started = time.monotonic()
    with pytest.raises(Refused) as refused:
        with bomb.open("rb") as source:
            storage.store(files_dir, source, 50 * MB)
    assert time.monotonic() - started < 2
    assert refused.value.code == "zip_bomb"
    assert "zip bomb" in str(refused.value)
    assert leftovers(files_dir) == []


def test_a_bomb_is_judged_from_its_directory_alone(tmp_path, bomb):
    # Garble the compressed zeros: expanding them now fails, so a "zip bomb" verdict (rather than
    # "damaged") shows that nothing was expanded to reach it.
    data = bytearray(bomb.read_bytes())
    data[100_000:200_000] = b"\xff" * 100_000
    garbled = tmp_path / "garbled.docx"
    garbled.write_bytes(bytes(data))
    with pytest.raises(Refused) as refused:
        storage.sniff(garbled)
    assert refused.value.code == "zip_bomb"


def test_one_member_with_a_huge_ratio_is_refused_even_when_the_totals_look_fine(tmp_path):
    # 1 MB of noise stored plus 100 MB of zeros: 101 MB in all (under the 200 MB cap) from about
    # 1.1 MB (a ratio under 100 overall), but one member expands a thousandfold.
    path = tmp_path / "mixed.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in docx_parts().items():
            archive.writestr(name, content)
        archive.writestr("word/media/noise.bin", os.urandom(MB), zipfile.ZIP_STORED)
        write_zeros_member(archive, "word/media/zeros.bin", 100)
    with pytest.raises(Refused) as refused:
        storage.sniff(path)
    assert refused.value.code == "zip_bomb"


def test_too_many_members_are_refused(tmp_path):
    parts: dict[str, bytes | str] = {**docx_parts()}
    parts.update({f"word/media/{n}.xml": "" for n in range(storage.MAX_MEMBERS)})
    with pytest.raises(Refused) as refused:
        storage.sniff(write_zip(tmp_path / "many.docx", parts))
    assert refused.value.code == "too_many_parts"
    assert str(refused.value) == "The document is made of too many parts (more than 10000)."


def test_a_bomb_inside_an_embedded_document_is_refused(tmp_path):
    inner = tmp_path / "inner.xlsx"
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        write_zeros_member(archive, "xl/media/zeros.bin", 50)
    # Stored, so the outer archive's own figures look harmless.
    outer = tmp_path / "outer.docx"
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_STORED) as archive:
        for name, content in docx_parts().items():
            archive.writestr(name, content)
        archive.write(inner, "word/embeddings/Microsoft_Excel_Worksheet.xlsx")
    with pytest.raises(Refused) as refused:
        storage.sniff(outer)
    assert refused.value.code == "zip_bomb"


def test_archives_nested_too_deeply_are_refused(tmp_path):
    content = write_zip(tmp_path / "0.zip", {"a.xml": "<a/>"}).read_bytes()
    for level in range(1, storage.MAX_NESTING + 1):
        content = write_zip(tmp_path / f"{level}.zip", {"nested.zip": content}).read_bytes()
    with pytest.raises(Refused) as refused:
        storage.sniff(write_zip(tmp_path / "deep.docx", {**docx_parts(), "word/embeddings/x.zip": content}))
    assert refused.value.code == "nested_too_deep"


class EndlessZeros:
    """A client that keeps sending: the upload never ends, so it must be cut off while streaming."""

    def __init__(self) -> None:
        self.sent = 0

    def read(self, size: int = -1) -> bytes:
        size = 1 << 16 if size < 0 else size
        self.sent += size
        return b"%PDF-" + bytes(size - 5) if self.sent == size else bytes(size)


def test_an_oversized_upload_is_refused_while_streaming_and_leaves_nothing(tmp_path):
    files_dir = tmp_path / "files"
    source = EndlessZeros()
    with pytest.raises(Refused) as refused:
        uploads.accept(FileStorage(stream=source, filename="huge.pdf"), files_dir, 2 * MB)  # type: ignore[arg-type]
    assert refused.value.code == "too_large"
    assert str(refused.value) == "The file is larger than the limit of 2 MB."
    assert source.sent <= 2 * MB + (1 << 16)
    assert leftovers(files_dir) == []


def test_a_file_of_exactly_the_limit_is_accepted(tmp_path):
    data = pdf_bytes(tmp_path)
    staged = uploads.accept(upload(data), tmp_path / "files", len(data))
    assert staged.size == len(data)
    with pytest.raises(Refused):
        uploads.accept(upload(data), tmp_path / "files", len(data) - 1)
    assert leftovers(tmp_path / "files") == [staged.stored_name]


def test_a_form_post_is_accepted_within_the_configured_file_size(app, tmp_path):
    assert app.config["MAX_FILE_SIZE"] == 50 * MB
    data = pdf_bytes(tmp_path)
    body = {"title": "Plan", "document": (io.BytesIO(data), "Plan national.pdf", "text/plain")}
    with app.test_request_context("/", method="POST", data=body, content_type="multipart/form-data"):
        files_dir = Path(app.config["FILES_DIR"])
        staged = uploads.accept(request.files["document"], files_dir, app.config["MAX_FILE_SIZE"])
    # The browser's claimed type counts for nothing.
    assert (staged.media_type, staged.original_name, staged.size) == (
        "application/pdf",
        "Plan national.pdf",
        len(data),
    )


# Names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("C:\\Users\\agent\\Plan national.pdf", "Plan national.pdf"),
        ("../../etc/pass\x00wd.pdf", "passwd.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("prote\u0301ge\u0301.pdf", "protégé.pdf"),
        ("\x00\x01", "document.pdf"),
        ("..", "document.pdf"),
        ("a" * 300 + ".pdf", "a" * 251 + ".pdf"),
    ],
)
def test_original_names_are_kept_clean(tmp_path, given, kept):
    assert uploads.accept(upload(pdf_bytes(tmp_path), given), tmp_path / "files", MB).original_name == kept


# Carried across re-renders -----------------------------------------------------------------------


def staged_pdf(tmp_path: Path) -> uploads.Staged:
    return uploads.accept(upload(pdf_bytes(tmp_path)), tmp_path / "files", MB)


def test_a_signed_upload_comes_back_intact(tmp_path):
    staged = staged_pdf(tmp_path)
    token = uploads.sign(staged, SECRET)
    assert uploads.unsign(token, SECRET) == staged
    assert uploads.unsign(token, SECRET, files_dir=tmp_path / "files") == staged


def test_a_tampered_or_foreign_token_gives_nothing(tmp_path):
    token = uploads.sign(staged_pdf(tmp_path), SECRET)
    payload, _, signature = token.rpartition(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    for bad in (
        flipped + "." + signature,
        token[:-2],
        token + "x",
        "",
        "not.a.token",
        None,
        12,
    ):
        assert uploads.unsign(bad, SECRET) is None, bad
    assert uploads.unsign(token, "another-secret") is None


def test_an_expired_token_gives_nothing(tmp_path):
    token = uploads.sign(staged_pdf(tmp_path), SECRET)
    time.sleep(1.1)
    assert uploads.unsign(token, SECRET, max_age=0) is None
    assert uploads.unsign(token, SECRET, max_age=60) is not None


def test_a_token_whose_file_is_gone_gives_nothing(tmp_path):
    staged = staged_pdf(tmp_path)
    token = uploads.sign(staged, SECRET)
    storage.remove(tmp_path / "files", staged.stored_name)
    assert uploads.unsign(token, SECRET, files_dir=tmp_path / "files") is None


def test_reading_a_token_back_keeps_its_file_from_the_sweep(tmp_path):
    staged = staged_pdf(tmp_path)
    path = tmp_path / "files" / staged.stored_name
    old = time.time() - 2 * DAY.total_seconds()
    os.utime(path, (old, old))
    uploads.unsign(uploads.sign(staged, SECRET), SECRET, files_dir=tmp_path / "files")
    assert path.stat().st_mtime > time.time() - 60


# Messages ----------------------------------------------------------------------------------------


def test_refusals_read_in_english_anywhere_and_through_the_view_helper(app):
    refused = Refused("too_large", limit="50")
    assert str(refused) == uploads.reason(refused) == "The file is larger than the limit of 50 MB."
    # The CLI: an app context, no request.
    with app.app_context():
        assert uploads.reason(refused) == str(refused)
    with app.test_request_context("/?lang=fr"):
        assert uploads.reason(refused).startswith(("The file", "Le fichier"))
        assert "50" in uploads.reason(refused)


# The sweep ---------------------------------------------------------------------------------------


def age(path: Path, days: float) -> None:
    then = time.time() - days * DAY.total_seconds()
    os.utime(path, (then, then))


def test_sweep_removes_only_old_unreferenced_files(app):
    files_dir = Path(app.config["FILES_DIR"])
    with app.app_context():
        record = make_record(files=[{"path": "plan.pdf", "language": "en", "text": "Plan"}])
        (kept_file,) = record.files
        referenced = kept_file.stored_name
    abandoned = uploads.accept(upload(JPEG, "photo.jpg"), files_dir, MB).stored_name
    young = uploads.accept(upload(JPEG, "photo.jpg"), files_dir, MB).stored_name
    crashed = f".incoming-{'ab' * 16}"
    (files_dir / crashed).write_bytes(b"half a file")
    writing = f".incoming-{'cd' * 16}"
    (files_dir / writing).write_bytes(b"being written")
    # Not a name that storage gives: the sweep never touches it, however old.
    stranger = files_dir / "README"
    stranger.write_text("kept")
    for name in (referenced, abandoned, crashed, "README"):
        age(files_dir / name, 3)

    with app.app_context():
        removed = uploads.sweep(session, files_dir, DAY)
        assert removed == sorted([abandoned, crashed])
        assert session.get(File, kept_file.id).stored_name == referenced
    assert leftovers(files_dir) == sorted([referenced, young, writing, "README"])
    assert (files_dir / referenced).read_bytes().startswith(b"%PDF-")


def test_sweep_of_a_missing_folder_removes_nothing(app, tmp_path):
    with app.app_context():
        assert uploads.sweep(session, tmp_path / "nowhere", DAY) == []


def test_sweep_files_command(app, runner):
    files_dir = Path(app.config["FILES_DIR"])
    staged = uploads.accept(upload(JPEG, "photo.jpg"), files_dir, MB)
    result = runner.invoke(args=["sweep-files"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Removed 0 unreferenced file(s)."
    age(files_dir / staged.stored_name, 2)
    result = runner.invoke(args=["sweep-files", "--older-than-hours", "36"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Removed 1 unreferenced file(s)."
    assert leftovers(files_dir) == []
    # Sooner than a token lives would delete files that forms still carry.
    assert runner.invoke(args=["sweep-files", "--older-than-hours", "1"]).exit_code != 0


# PDFs that are only PDF (issue 10, item 13) --------------------------------------------------------

WEB_PAGE = b"<html><body><script>alert(document.cookie)</script></body></html>\n"


def seed_pdf(tmp_path: Path) -> bytes:
    """A real PDF of two pages from the demo generator: binary comment after the header, an xref table."""
    path = tmp_path / "seed.pdf"
    write_pdf(path, "Plan d'action", "Le pangolin saisi est placé au centre de sauvetage.\n" * 60)
    return path.read_bytes()


def object_stream_pdf() -> bytes:
    """A PDF 1.5 whose catalog and page tree sit in a compressed object stream, indexed by a
    cross-reference stream (no xref table, no trailer), as many recent writers make them."""
    text = b"BT /F1 12 Tf 72 720 Td (Tortues saisies) Tj ET"
    inner = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    offsets, body = [], b""
    for item in inner:
        offsets.append(len(body))
        body += item + b"\n"
    header = b" ".join(b"%d %d" % (number, offset) for number, offset in zip((1, 2, 3), offsets, strict=True))
    packed = zlib.compress(header + b"\n" + body)
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    positions = {}
    objects = {
        4: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> "
        b"/Contents 5 0 R >>",
        5: b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        6: b"<< /Type /ObjStm /N 3 /First %d /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream"
        % (len(header) + 1, len(packed), packed),
    }
    for number, item in objects.items():
        positions[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, item)
    positions[7] = len(out)
    rows = [b"\x00\x00\x00\x00\xff\xff"]
    rows += [b"\x02" + struct.pack(">I", 6) + bytes((index,)) for index in range(3)]
    rows += [b"\x01" + struct.pack(">I", positions[n]) + b"\x00" for n in (4, 5, 6, 7)]
    table = zlib.compress(b"".join(rows))
    out += (
        b"7 0 obj\n<< /Type /XRef /Size 8 /W [1 4 1] /Root 1 0 R /Filter /FlateDecode /Length %d >>\n"
        b"stream\n%s\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % (len(table), table, positions[7])
    )
    return bytes(out)


def pypdf_written(tmp_path: Path, kind: str) -> bytes:
    """A PDF as pypdf writes it: from scratch with metadata, rewritten with compressed content streams,
    or a demo PDF with an incremental update (appended objects and a cross-reference stream)."""
    import pypdf

    source = tmp_path / "seed.pdf"
    source.write_bytes(seed_pdf(tmp_path))
    target = tmp_path / f"{kind}.pdf"
    if kind == "from-scratch":
        writer = pypdf.PdfWriter()
        writer.add_blank_page(595, 842)
        writer.add_metadata({"/Title": "Tortues (saisies) \\ 2024", "/Subject": "endobj stream <html>"})
    elif kind == "compressed":
        writer = pypdf.PdfWriter(clone_from=source)
        for page in writer.pages:
            page.compress_content_streams()
    else:
        writer = pypdf.PdfWriter(source, incremental=True)
        writer.add_metadata({"/Author": "Secrétariat CITES"})
    writer.write(target)
    return target.read_bytes()


def linearized_layout(tmp_path: Path) -> bytes:
    """A demo PDF laid out as a linearized file is: a first object and a first-page cross-reference
    section with its trailer and startxref at the front, the body and the main section after."""
    data = seed_pdf(tmp_path)
    header_end = data.index(b"1 0 obj")
    front = (
        b"99 0 obj\n<< /Linearized 1 /L %d /H [0 0] /O 5 /E 0 /N 2 /T 0 >>\nendobj\n"
        b"xref\n99 1\n0000000015 00000 n \ntrailer\n<< /Size 100 /Prev 0 >>\nstartxref\n0\n%%%%EOF\n"
        % len(data)
    )
    return data[:header_end] + front + data[header_end:]


@pytest.mark.parametrize(
    "kind", ["seed", "from-scratch", "compressed", "incremental", "object-streams", "linearized"]
)
def test_real_pdfs_are_accepted_and_readable(tmp_path, kind):
    """Issue 10, item 13: the layout check refuses no PDF of the kinds real writers make."""
    if kind == "seed":
        data = seed_pdf(tmp_path)
    elif kind == "object-streams":
        data = object_stream_pdf()
    elif kind == "linearized":
        data = linearized_layout(tmp_path)
    else:
        data = pypdf_written(tmp_path, kind)
    staged = uploads.accept(upload(data, f"{kind}.pdf"), tmp_path / "files", MB)
    assert staged.media_type == "application/pdf"
    if kind != "from-scratch":  # a blank page has no text
        # Not only accepted: the parser reads the text of the very same bytes.
        assert staged.extracted is not None and staged.extracted.error is None, staged.extracted
        assert ("Tortues saisies" if kind == "object-streams" else "pangolin") in staged.extracted.text


def _html_in(data: bytes, where: str) -> bytes:
    """``data`` (a demo PDF) with a web page put ``where``."""
    places = {
        "after the header": (b"%\xe2\xe3\xcf\xd3\n", b"%\xe2\xe3\xcf\xd3\n" + WEB_PAGE),
        "between objects": (b"endobj\n2 0 obj", b"endobj\n" + WEB_PAGE + b"2 0 obj"),
        "before the xref table": (b"endobj\nxref", b"endobj\n" + WEB_PAGE + b"xref"),
        "before startxref": (b">>\nstartxref", b">>\n" + WEB_PAGE + b"startxref"),
        "in an object, outside its strings": (b"/Type /Catalog", b"/Type /Catalog " + WEB_PAGE),
        "plain words between objects": (b"endobj\n2 0 obj", b"endobj\nDear colleagues\n2 0 obj"),
    }
    if where == "after %%EOF":
        return data + WEB_PAGE
    old, new = places[where]
    assert old in data
    return data.replace(old, new, 1)


@pytest.mark.parametrize(
    "where",
    [
        "after the header",
        "between objects",
        "before the xref table",
        "before startxref",
        "after %%EOF",
        "in an object, outside its strings",
        "plain words between objects",
    ],
)
def test_a_pdf_with_content_outside_its_objects_is_refused(tmp_path, where):
    """Issue 10, item 13: a file that starts and ends like a PDF with a web page in it is refused."""
    files_dir = tmp_path / "files"
    with pytest.raises(Refused) as refused:
        uploads.accept(upload(_html_in(seed_pdf(tmp_path), where), "report.html"), files_dir, MB)
    assert refused.value.code == "malformed_pdf"
    assert "outside its structure" in str(refused.value)
    assert leftovers(files_dir) == []


def test_markup_inside_a_pdf_string_or_stream_is_the_pdfs_own_content(tmp_path):
    """What sits inside a string or a stream is part of an object: a document may well quote HTML."""
    data = seed_pdf(tmp_path).replace(b"/Type /Catalog", b"/Type /Catalog /Note (<html> endobj \\) xref)", 1)
    assert uploads.accept(upload(data, "quote.pdf"), tmp_path / "files", MB).media_type == "application/pdf"


def test_a_crafted_pdf_is_refused_without_being_read_forever(tmp_path):
    """Strings nested a million deep are no PDF a writer makes: refused after a bounded number of steps."""
    data = b"%PDF-1.4\n1 0 obj\n" + b"(" * MB + b")" * MB + b"\nendobj\ntrailer\n<< >>\n%%EOF\n"
    with pytest.raises(Refused) as refused:
        uploads.accept(upload(data, "deep.pdf"), tmp_path / "files", 4 * MB)
    assert refused.value.code == "malformed_pdf"


@pytest.mark.parametrize(
    ("name", "media_type", "served"),
    [
        ("report.html", "application/pdf", "report.html.pdf"),
        ("Plan national.PDF", "application/pdf", "Plan national.PDF"),
        ("notes", "application/vnd.oasis.opendocument.text", "notes.odt"),
        ("photo.jpeg", "image/jpeg", "photo.jpeg"),
        ("photo.JPG", "image/jpeg", "photo.JPG"),
        ("image.svg", "image/png", "image.svg.png"),
        ("a" * 255, "application/pdf", "a" * 251 + ".pdf"),
        ("page.html", "text/html", "page.html.bin"),
    ],
)
def test_files_are_served_under_the_extension_of_their_type(name, media_type, served):
    assert storage.served_name(name, media_type) == served


def test_a_download_is_named_after_what_the_file_is(app, client):
    """Issue 10, item 13: a PDF uploaded as report.html downloads as report.html.pdf (its page still
    shows the name it was given)."""
    with app.app_context():
        record = make_record(
            files=[
                {"path": "report.html", "language": "en", "text": "Plan"},
                {"path": "minutes.pdf", "language": "en", "text": "Minutes"},
            ]
        )
        files = {f.original_name: f.id for f in record.files}
        record_id = record.id
    with client.get(f"/files/{files['report.html']}") as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.headers["Content-Disposition"] == "attachment; filename=report.html.pdf"
    with client.get(f"/files/{files['minutes.pdf']}") as response:
        assert response.headers["Content-Disposition"] == "attachment; filename=minutes.pdf"
    assert "report.html" in client.get(f"/records/{record_id}").get_data(as_text=True)


# Staged uploads: their text kept beside them (item 9), a quota per user, a sooner sweep (item 15) ----


def staged_names(files_dir: Path, owner: str) -> list[str]:
    """The uploads whose texts wait in ``owner``'s folder."""
    folder = files_dir / uploads.STAGING_FOLDER / owner
    return sorted(name for name in os.listdir(folder) if storage.is_stored_name(name))


def staged_for(app, owner: str, data: bytes = JPEG, **limits: int) -> uploads.Staged:  # type: ignore[no-untyped-def]
    """An upload accepted for ``owner``, counted against its quota as the form does it."""
    with app.app_context():
        files_dir = Path(app.config["FILES_DIR"])
        given = upload(data, "photo.jpg")
        return uploads.accept(given, files_dir, MB, owner=owner, session=session, **limits)


def test_an_uploads_text_travels_with_it_and_is_not_extracted_again(app, tmp_path, monkeypatch):
    """Issue 10, item 9: the text is found once, when the upload is accepted, and comes back with its
    token on every re-render of the form."""
    files_dir = Path(app.config["FILES_DIR"])
    staged = staged_for(app, "7", pdf_bytes(tmp_path))
    assert staged.extracted is not None and "pangolin saisi" in staged.extracted.text
    sidecar = files_dir / uploads.STAGING_FOLDER / "7" / staged.stored_name
    assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600  # the text of a confidential contract, perhaps

    def no_extraction(*_args, **_kwargs):
        raise AssertionError("extracted again")

    monkeypatch.setattr("registry.extract.extract_many", no_extraction)
    token = uploads.sign(staged, app.config["SECRET_KEY"])
    back = uploads.unsign(token, app.config["SECRET_KEY"], files_dir=files_dir, owner="7")
    assert back == staged and back.extracted == staged.extracted
    # Another user's folder has no text for it: the form extracts it again, for that user.
    assert uploads.unsign(token, app.config["SECRET_KEY"], files_dir=files_dir, owner="8").extracted is None


def test_a_user_cannot_stage_more_than_the_quota(app):
    """Issue 10, item 15: what one user has accepted but no record holds yet is capped, counted from
    the files on disk; another user is not affected, and a file a record holds no longer counts."""
    files_dir = Path(app.config["FILES_DIR"])
    quota = int(2.5 * len(JPEG))
    first = staged_for(app, "7", quota=quota)
    staged_for(app, "7", quota=quota)
    before = leftovers(files_dir)
    with pytest.raises(Refused) as refused:
        staged_for(app, "7", quota=quota)
    assert refused.value.code == "staging_full"
    assert str(refused.value).startswith("The files you uploaded to forms that are not saved yet already")
    assert leftovers(files_dir) == before  # the refused file is not kept
    staged_for(app, "8", quota=quota)
    with app.app_context():
        # The form that carried the first upload is saved: a row holds it now.
        party = make_user("party", "ZA")
        entry = write.FileEntry("en", "public", upload=first)
        write.create_record(party, record_data(), [entry], files_dir)
        commit()
    staged_for(app, "7", quota=quota)


def test_a_user_cannot_stage_more_than_so_many_files(app, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_STAGED_FILES", 2)
    staged_for(app, "7")
    staged_for(app, "7")
    with pytest.raises(Refused) as refused:
        staged_for(app, "7")
    assert refused.value.code == "staging_full"
    assert "2 files" in str(refused.value)


def test_a_users_abandoned_uploads_free_the_quota_when_they_upload_again(app):
    """Issue 10, item 15: uploads untouched for longer than a token lives are removed at the user's
    next upload, with their texts, even if the sweep never runs."""
    files_dir = Path(app.config["FILES_DIR"])
    quota = int(1.5 * len(JPEG))
    old = staged_for(app, "7", quota=quota)
    age(files_dir / old.stored_name, (uploads.TOKEN_MAX_AGE + 60) / DAY.total_seconds())
    new = staged_for(app, "7", quota=quota)
    assert not (files_dir / old.stored_name).exists()
    assert staged_names(files_dir, "7") == [new.stored_name]


def test_staged_uploads_are_swept_after_six_hours_with_their_texts(app, runner, tmp_path):
    """Issue 10, item 15: the files of forms left unsaved go after six hours, not a day; a file whose
    token was read back since stays."""
    files_dir = Path(app.config["FILES_DIR"])
    assert uploads.TOKEN_MAX_AGE <= 6 * 3600
    abandoned = staged_for(app, "7", pdf_bytes(tmp_path))
    in_use = staged_for(app, "7")
    for staged in (abandoned, in_use):
        age(files_dir / staged.stored_name, 7 / 24)
    uploads.unsign(uploads.sign(in_use, SECRET), SECRET, files_dir=files_dir, owner="7")
    result = runner.invoke(args=["sweep-files"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Removed 1 unreferenced file(s)."
    assert not (files_dir / abandoned.stored_name).exists()
    assert staged_names(files_dir, "7") == [in_use.stored_name]
