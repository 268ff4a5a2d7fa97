"""Hostile uploads (issue 11, Show): arbitrary bytes and a corpus of crafted files, through the upload path
and the submission form. Each is refused with a reason the uploader can act on, or stored under a random
name and served back only as an attachment named for what it is, under a sandbox CSP; its text is read in
a child process under limits, so that no file can hang or kill the web worker.

What ``test_uploads`` and ``test_extract`` already pin down file by file (each refusal code, the bomb's
directory, the CPU and memory limits of the child) is not repeated here: this file throws everything at
the same doors at once and checks the one promise they share.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfWriter
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from registry import storage, uploads
from registry.db import session
from registry.models import File
from registry.security import DOWNLOAD_CSP
from registry.vocab import MEDIA_TYPES

from .conftest import csrf_token, login
from .factories import PASSWORD, make_user
from .test_extract import shared_stream_pdf
from .test_submit import pdf_bytes, protocol_form
from .test_uploads import docx_parts, write_zeros_member

# Fuzzing needs no second backend: nothing here reaches SQL that differs between them.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

# The beginnings of every format the sniffer knows, so that random tails reach its deeper checks.
MAGIC = [
    b"",
    b"%PDF-1.7\n",
    b"\x89PNG\r\n\x1a\n",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
    b"\xff\xd8\xff\xe0",
    b"PK\x03\x04",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
]
# The extraction budget of one form in these tests, in seconds.
BUDGET = 3


def _pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF of ``objects`` (numbered from 1) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def _encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.encrypt("secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _zip(parts: dict[str, bytes | str], zeros_mb: int = 0) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
        if zeros_mb:
            write_zeros_member(archive, "word/media/image1.png", zeros_mb)
    return buffer.getvalue()


HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"
PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>"


def hostile_corpus(tmp_path: Path) -> dict[str, tuple[str, bytes, str]]:
    """Crafted files by label: (the name it is uploaded under, its bytes, what must happen to it).

    What must happen is ``stored`` or ``refused:<code>`` (a key of ``storage.MESSAGES``).
    """
    real = pdf_bytes(tmp_path, "Protocole de quarantaine")
    stream = b"<< /Length %d >>\nstream\n" % len(HTML) + HTML + b"\nendstream"
    return {
        # A web page before the PDF's header: not a PDF at all.
        "html then pdf": ("report.pdf", HTML + real, "refused:unsupported"),
        # A web page between the PDF's objects, where a browser sniffing HTML would find it.
        "html inside the layout": (
            "report.pdf",
            real.replace(b"xref", HTML + b"\nxref", 1),
            "refused:malformed_pdf",
        ),
        # A web page inside a stream is the PDF's own content: kept, and never served as a page.
        "html in a stream": (
            "polyglot.html",
            _pdf(
                [
                    b"<< /Type /Catalog /Pages 2 0 R >>",
                    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                    PAGE,
                    stream,
                ]
            ),
            "stored",
        ),
        "truncated pdf": ("cut.pdf", real[: len(real) // 2], "refused:damaged_pdf"),
        "encrypted pdf": ("locked.pdf", _encrypted_pdf(), "stored"),
        # A page tree that is its own child, and two objects naming each other.
        "circular references": (
            "loop.pdf",
            _pdf(
                [
                    b"<< /Type /Catalog /Pages 2 0 R /Outlines 3 0 R >>",
                    b"<< /Type /Pages /Kids [2 0 R 5 0 R] /Count 2 /Parent 2 0 R >>",
                    b"<< /First 4 0 R /Last 4 0 R >>",
                    b"<< /Parent 3 0 R /Next 4 0 R /Prev 4 0 R /First 3 0 R >>",
                    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R >>",
                ]
            ),
            "stored",
        ),
        "zip bomb docx": ("report.docx", _zip(docx_parts(), zeros_mb=8), "refused:zip_bomb"),
        "path traversal": ("../../../../etc/cron.d/registry.pdf", real, "stored"),
        "windows path traversal": ("..\\..\\Windows\\System32\\evil.pdf", real, "stored"),
        # U+202E makes "invoice\u202efdp.exe" read "invoiceexe.pdf".
        "right-to-left override": ("invoice\u202efdp.exe", real, "stored"),
        "exe named pdf": (
            "setup.pdf",
            b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(500),
            "refused:unsupported",
        ),
        "svg with script": (
            "logo.png",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "refused:unsupported",
        ),
        "html named docx": ("minutes.docx", HTML, "refused:unsupported"),
        "docx of html": (
            "page.docx",
            _zip({**docx_parts(), "word/document.xml": HTML}),
            "stored",
        ),
    }


def _check_stored(staged: uploads.Staged, files_dir: Path) -> None:
    """An accepted upload is a file of an accepted type, under a random name inside the files folder."""
    assert staged.media_type in MEDIA_TYPES
    assert storage.is_stored_name(staged.stored_name)
    path = storage.path_of(files_dir, staged.stored_name)
    assert path.resolve().is_relative_to(files_dir.resolve()) and path.stat().st_size == staged.size
    assert "/" not in staged.original_name and "\\" not in staged.original_name
    assert "\u202e" not in staged.original_name
    assert storage.served_name(staged.original_name, staged.media_type).endswith(
        MEDIA_TYPES[staged.media_type]
    )


@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(magic=st.sampled_from(MAGIC), tail=st.binary(max_size=4096), name=st.text(max_size=80))
def test_any_bytes_under_any_name_are_refused_with_a_reason_or_stored_safely(
    tmp_path, backend, magic, tail, name
):
    """Whatever the bytes and the name, ``accept`` refuses with one of the known reasons, or keeps a file
    of an accepted type; it never raises anything else and never writes outside the files folder."""
    files_dir = tmp_path / "files"
    try:
        staged = uploads.accept(FileStorage(io.BytesIO(magic + tail), name or "x"), files_dir, 1 << 20)
    except storage.Refused as refused:
        assert refused.code in storage.MESSAGES and str(refused)
        return
    _check_stored(staged, files_dir)
    assert staged.text_result.text is not None or staged.text_result.error


@pytest.fixture
def party(app):
    """A signed-in focal point of South Africa, with a short extraction budget."""
    app.config["UPLOAD_EXTRACT_SECONDS"] = BUDGET
    with app.app_context():
        make_user("party", "ZA")
    client = app.test_client()
    login(client, "party-za@test.example", PASSWORD)
    return client


def _upload(client, files: list[tuple[str, bytes]]):  # type: ignore[no-untyped-def]
    """Post a complete protocol form carrying ``files``; the response."""
    form = protocol_form(csrf_token(client, "/submit/new/protocol"))
    for slot, (name, data) in enumerate(files):
        form.update({f"upload.{slot}": (io.BytesIO(data), name), f"upload.{slot}.language": "en"})
    return client.post("/submit/new/protocol", data=form, content_type="multipart/form-data")


def test_each_hostile_file_is_refused_with_its_reason_or_served_only_as_a_sandboxed_attachment(
    app, party, tmp_path
):
    """Through the form: a refused file comes back named, with the sentence saying why; a kept one
    downloads as an attachment named with its real type's extension, under the sandbox CSP, and
    nothing is written outside the files folder."""
    files_dir = Path(app.config["FILES_DIR"])
    seen: set[str] = set()
    for label, (name, data, expected) in hostile_corpus(tmp_path).items():
        response = _upload(party, [(name, data)])
        page = response.get_data(as_text=True)
        if expected.startswith("refused:"):
            assert response.status_code == 422, label
            reason = storage.MESSAGES[expected.removeprefix("refused:")]
            assert reason.replace("'", "&#39;") in page, label
            continue
        assert response.status_code == 302, (label, re.findall(r'class="error[^"]*"[^>]*>([^<]*)', page))
        with app.app_context():
            [file] = session.scalars(select(File).where(File.id.not_in(seen))).all()
            file_id, media_type, kept = file.id, file.media_type, file.original_name
        seen.add(file_id)
        # Kept under its name made clean (no path, no format characters), served with its type's extension.
        assert kept == uploads.clean_name(kept) and not set(kept) & {"/", "\\", "\u202e"}, (label, kept)
        with party.get(f"/files/{file_id}") as download:
            assert download.status_code == 200, label
            disposition = download.headers["Content-Disposition"]
            assert disposition.startswith("attachment;"), label
            assert "/" not in disposition and "\\" not in disposition and "\u202e" not in disposition, label
            assert re.search(rf"{re.escape(MEDIA_TYPES[media_type])}\"?$", disposition), (label, disposition)
            assert download.headers["Content-Security-Policy"] == DOWNLOAD_CSP, label
            assert download.headers["X-Content-Type-Options"] == "nosniff", label
            assert download.headers["Cache-Control"] == "private, no-store", label
    # The names were never paths: nothing was written under them, anywhere.
    assert not [p for p in tmp_path.rglob("*") if p.name in ("registry.pdf", "evil.pdf", "cron.d")]
    assert all(
        storage.is_stored_name(p.name)
        for p in files_dir.iterdir()
        if p.is_file() and not p.name.startswith(".")
    )


def test_files_that_keep_the_parser_busy_cannot_hold_the_worker(app, party, tmp_path):
    """A form carrying a PDF that costs a minute of CPU to read, and one whose references go round in
    circles, answers within the request's extraction budget (plus the time to start the child and save),
    the files kept without text and saying why; the worker then serves the next request as usual."""
    corpus = hostile_corpus(tmp_path)
    slow = shared_stream_pdf(tmp_path / "slow.pdf").read_bytes()
    started = time.monotonic()
    response = _upload(party, [("slow.pdf", slow), corpus["circular references"][:2], ("after.pdf", slow)])
    elapsed = time.monotonic() - started
    assert response.status_code == 302
    assert elapsed < BUDGET + 10, elapsed
    with app.app_context():
        texts = {f.original_name: (f.text, f.text_error) for f in session.scalars(select(File))}
    assert texts["slow.pdf"][0] is None and texts["slow.pdf"][1]
    assert texts["after.pdf"][0] is None and texts["after.pdf"][1]
    assert party.get("/submit/").status_code == 200
