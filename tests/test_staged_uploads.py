"""A Party's uploads, through the form: a slow file never holds the database, the uploads of one form
share one extraction budget, and what one user may leave staged is capped (issue 10, items 9 and 15)."""

from __future__ import annotations

import io
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from registry import extract, uploads
from registry.db import commit, session
from registry.models import File, Record, User
from registry.services.records import shape, write

from .conftest import csrf_token, login
from .factories import PASSWORD, make_record, make_user
from .test_extract import shared_stream_pdf
from .test_submit import pdf_bytes, protocol_form

# Short enough for the tests, long enough for a normal PDF before the slow one.
BUDGET = 3


@pytest.fixture
def party(app):
    """A signed-in focal point of South Africa (and a Secretariat account), with a short budget."""
    app.config["UPLOAD_EXTRACT_SECONDS"] = BUDGET
    with app.app_context():
        make_user("party", "ZA")
        make_user("secretariat")
    client = app.test_client()
    login(client, "party-za@test.example", PASSWORD)
    return client


def _draft_with_a_file(app, party, tmp_path: Path) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A draft saved through the form with one PDF; its id and the file's."""
    form = protocol_form(csrf_token(party, "/submit/new/protocol"))
    form.update({"upload.0": (io.BytesIO(pdf_bytes(tmp_path)), "protocole.pdf"), "upload.0.language": "fr"})
    assert _post(party, "/submit/new/protocol", form) == 302
    with app.app_context():
        record = session.scalar(select(Record))
        return record.id, record.files[0].id


def _texts_by_name(app, record_id: str) -> dict[str, tuple[str | None, str | None]]:  # type: ignore[no-untyped-def]
    """The text and extraction error of each file of the record, by name."""
    with app.app_context():
        return {f.original_name: (f.text, f.text_error) for f in session.get(Record, record_id).files}


def _post(client, path: str, form) -> int:  # type: ignore[no-untyped-def]
    return client.post(path, data=form, content_type="multipart/form-data").status_code


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_slow_pdf_in_a_form_never_blocks_other_writers(app, party, tmp_path, monkeypatch):
    """Issue 10, item 9: while the form of an edit that drops a file and adds a PDF costing a minute of
    CPU is being handled, another connection writes at once (on SQLite, where a write transaction held
    across the extraction made every other writer, logins included, fail with "database is locked")."""
    record_id, old_file = _draft_with_a_file(app, party, tmp_path)
    extracting, written = threading.Event(), threading.Event()
    run_worker = extract._run_worker

    def watched(*args, **kwargs):  # type: ignore[no-untyped-def]
        extracting.set()
        return run_worker(*args, **kwargs)

    monkeypatch.setattr(extract, "_run_worker", watched)
    # An edit as people make them: a new title, a file dropped, another added.
    form = protocol_form(csrf_token(party, f"/submit/{record_id}"), title="Protocole de quarantaine révisé")
    form.update(
        {
            "file.ref": old_file,
            "file.0.title": "Protocole",
            "file.0.language": "fr",
            "file.0.tier": "public",
            "file.0.remove": "1",
            "upload.0": (io.BytesIO(shared_stream_pdf(tmp_path / "slow.pdf").read_bytes()), "annexe.pdf"),
            "upload.0.language": "fr",
        }
    )
    answers = []
    edit = threading.Thread(target=lambda: answers.append(_post(party, f"/submit/{record_id}", form)))
    edit.start()
    try:
        assert extracting.wait(30), "the edit never started extracting"
        other = sqlite3.connect(app.config["DATABASE_URL"].removeprefix("sqlite:///"), timeout=1)
        try:
            # Another writer, with a one-second patience: it must not have to wait for the extraction.
            other.execute("BEGIN IMMEDIATE")
            other.execute("UPDATE users SET phone = '+27 12 000 0000' WHERE role = 'secretariat'")
            other.commit()
            written.set()
        finally:
            other.close()
    finally:
        edit.join(60)
    assert written.is_set()
    assert answers == [302]
    with app.app_context():
        assert session.scalar(select(User.phone).where(User.role == "secretariat")) == "+27 12 000 0000"
    assert _texts_by_name(app, record_id) == {"annexe.pdf": (None, extract.OUT_OF_TIME)}


def test_the_uploads_of_one_form_share_one_extraction_budget(app, party, tmp_path):
    """Issue 10, item 9: a normal PDF before the slow one keeps its text; the slow one, and the PDF after
    it, are saved without text once the request's budget is spent, and the Secretariat sees why."""
    form = protocol_form(csrf_token(party, "/submit/new/protocol"))
    uploads_sent = [
        (pdf_bytes(tmp_path, "Quarantaine des perroquets saisis"), "avant.pdf"),
        (shared_stream_pdf(tmp_path / "slow.pdf").read_bytes(), "lent.pdf"),
        (pdf_bytes(tmp_path, "Tortues saisies à la frontière"), "apres.pdf"),
    ]
    for slot, (data, name) in enumerate(uploads_sent):
        form.update({f"upload.{slot}": (io.BytesIO(data), name), f"upload.{slot}.language": "fr"})
    assert _post(party, "/submit/new/protocol", form) == 302
    with app.app_context():
        record_id = session.scalar(select(Record.id))
    texts = _texts_by_name(app, record_id)
    assert "Quarantaine des perroquets saisis" in texts["avant.pdf"][0]
    assert texts["lent.pdf"] == texts["apres.pdf"] == (None, extract.OUT_OF_TIME)
    desk = party.application.test_client()
    login(desk, "secretariat-x@test.example", PASSWORD)
    page = desk.get(f"/records/{record_id}").get_data(as_text=True)
    assert "Text could not be extracted for search: " + extract.OUT_OF_TIME in page


def test_saving_a_record_never_extracts_text(app, tmp_path, monkeypatch):
    """Issue 10, item 9, the class: the workflow takes the text found when each upload was accepted, for
    a new record, an edit and the revision of a published record alike; it never runs the parsers
    inside its transaction."""
    files_dir = Path(app.config["FILES_DIR"])
    with app.app_context():
        party = make_user("party", "ZA")
        published = make_record(party="ZA")

        def staged(text: str) -> uploads.Staged:
            upload = FileStorage(io.BytesIO(pdf_bytes(tmp_path, text)), "annexe.pdf")
            return uploads.accept(upload, files_dir, 1 << 20)

        for_new, for_edit, for_revision = staged("Nouveau"), staged("Modifié"), staged("Révision")

        def no_extraction(*_args, **_kwargs):
            raise AssertionError("text extracted inside the transaction")

        monkeypatch.setattr(extract, "extract_many", no_extraction)
        shaped = shape.working_shape(published)
        raw = {key: value for key, value in shaped.items() if key != "files"}
        new = [write.FileEntry("fr", "public", upload=for_new)]
        draft = write.create_record(party, raw, new, files_dir)
        kept = [write.FileEntry("fr", "public", file_id=f.id) for f in draft.files]
        write.save_record(
            party, draft, raw, [*kept, write.FileEntry("fr", "public", upload=for_edit)], files_dir
        )
        write.save_record(
            party, published, raw, [write.FileEntry("fr", "public", upload=for_revision)], files_dir
        )
        commit()
        texts = {f.stored_name: f.text for f in session.scalars(select(File))}
    assert "Nouveau" in texts[for_new.stored_name]
    assert "Modifié" in texts[for_edit.stored_name]
    assert "Révision" in texts[for_revision.stored_name]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_import_extracts_before_it_writes(app, tmp_path, monkeypatch):
    """Issue 10, item 9, the class: the import stores and reads every file before its first row, so no
    write transaction is open while the parsers run."""
    extract_many = extract.extract_many
    free = []

    def probed(*args, **kwargs):  # type: ignore[no-untyped-def]
        other = sqlite3.connect(app.config["DATABASE_URL"].removeprefix("sqlite:///"), timeout=0.5)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.rollback()
            free.append(True)
        except sqlite3.OperationalError:
            free.append(False)
        finally:
            other.close()
        return extract_many(*args, **kwargs)

    monkeypatch.setattr(extract, "extract_many", probed)
    with app.app_context():
        record = make_record(files=[{"path": "plan.pdf", "language": "en", "text": "Plan de saisie"}])
        assert "Plan de saisie" in record.files[0].text
    assert free == [True]


def test_a_form_refuses_uploads_past_the_users_quota_and_says_why(app, party, tmp_path):
    """Issue 10, item 15: forms that fail keep their uploads for the next try, but only up to the
    user's quota; past it the upload is refused with the reason, and saving the form frees it."""
    data = pdf_bytes(tmp_path)
    app.config["MAX_STAGED_BYTES"] = int(2.5 * len(data))

    def failed_post(name: str) -> str:
        # No title: the form comes back with its uploads kept.
        form = protocol_form(csrf_token(party, "/submit/new/protocol"), title="")
        form.update({"upload.0": (io.BytesIO(data), name), "upload.0.language": "fr"})
        response = party.post("/submit/new/protocol", data=form, content_type="multipart/form-data")
        assert response.status_code == 422
        return response.get_data(as_text=True)

    first = failed_post("un.pdf")
    failed_post("deux.pdf")
    refused = failed_post("trois.pdf")
    assert "trois.pdf: The files you uploaded to forms that are not saved yet already reach the limit" in (
        refused.replace("&#39;", "'")
    )
    with app.app_context():
        assert session.scalar(select(File)) is None
    ref = first.split('name="file.ref" value="', 1)[1].split('"', 1)[0]
    fixed = protocol_form(csrf_token(party, "/submit/new/protocol"))
    fixed.update({"file.ref": ref, "file.0.title": "Un", "file.0.language": "fr", "file.0.tier": "public"})
    assert party.post("/submit/new/protocol", data=fixed).status_code == 302
    again = failed_post("trois.pdf")
    assert "reach the limit" not in again
    assert again.count('name="file.ref"') == 1
