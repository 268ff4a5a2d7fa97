"""A Party's forms and the workflow behind them, through the pages, on both backends."""

from __future__ import annotations

import io
import re
import unicodedata
from pathlib import Path

import pytest
from sqlalchemy import select

from registry import mail
from registry.db import commit, session
from registry.models import AuditEvent, File, Record, RecordVersion, User
from registry.services import workflow
from seed.documents import write_pdf

from .conftest import csrf_token, login, logout
from .factories import PASSWORD, make_record, make_user

PDF_TEXT = "Quarantaine des perroquets saisis"


def pdf_bytes(tmp_path: Path, text: str = PDF_TEXT) -> bytes:
    """A real PDF holding ``text``."""
    path = tmp_path / f"doc-{abs(hash(text))}.pdf"
    write_pdf(path, "Protocole", text)
    return path.read_bytes()


def protocol_form(token: str, **overrides: str) -> dict[str, object]:
    """A complete, valid protocol form in French."""
    form: dict[str, object] = {
        "csrf_token": token,
        "title": "Protocole de quarantaine des perroquets saisis",
        "language": "fr",
        "summary": "Comment garder les perroquets saisis.",
        "issuing_bodies": "Direction de la faune",
        "year": "2024",
        "taxa": "Psittacus erithacus",
        "details.responsible_agency": "Douanes",
        "details.stages": ["seizure", "quarantine"],
        "details.procedures": "Isoler, examiner, nourrir.",
        "confidentiality.level": "public",
        "action": "save",
    }
    form.update(overrides)
    return form


@pytest.fixture
def party(app):
    """A signed-in focal point of South Africa, and its client."""
    with app.app_context():
        make_user("party", "ZA")
        make_user("secretariat")
    client = app.test_client()
    login(client, "party-za@test.example", PASSWORD)
    return client


def _record_by_title(title: str) -> Record:
    return session.scalar(select(Record).where(Record.title == title))


def test_only_party_users_have_a_start_page(app, client):
    with app.app_context():
        make_user("reader")
        make_user("party", "ZA")
    assert client.get("/submit/").status_code == 302  # anonymous: asked to sign in
    login(client, "reader-x@test.example", PASSWORD)
    assert client.get("/submit/").status_code == 404
    assert client.get("/submit/new/protocol").status_code == 404
    logout(client)
    login(client, "party-za@test.example", PASSWORD)
    page = client.get("/submit/")
    assert page.status_code == 200
    assert "South Africa" in page.get_data(as_text=True)
    for record_type in ("protocol", "action_plan", "rescue_centre", "agreement", "network"):
        assert client.get(f"/submit/new/{record_type}").status_code == 200
    assert client.get("/submit/new/nonsense").status_code == 404


def test_errors_are_shown_by_the_field_in_the_viewers_language_and_nothing_is_lost(app, party, tmp_path):
    token = csrf_token(party, "/submit/new/protocol")
    form = protocol_form(token, title="", **{"details.responsible_agency": ""})
    form["upload.0"] = (io.BytesIO(pdf_bytes(tmp_path)), "protocole.pdf")
    form["upload.0.tier"] = "public"
    form["upload.0.language"] = "fr"
    form["upload.1"] = (io.BytesIO(b"just some text"), "contract.pdf")
    response = party.post("/submit/new/protocol?lang=fr", data=form, content_type="multipart/form-data")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Ne doit pas être vide." in page, re.findall(r"class=\"errors\">(.*?)</ul>", page)
    assert "contract.pdf" in page  # the refused upload is named, with the reason
    assert "Comment garder les perroquets saisis." in page  # typed text kept
    refs = re.findall(r'name="file\.ref" value="([^"]+)"', page)
    assert len(refs) == 1  # the accepted PDF travels with the form
    with app.app_context():
        assert session.scalar(select(Record)) is None
    fixed = protocol_form(csrf_token(party, "/submit/new/protocol"))
    fixed.update(
        {"file.ref": refs[0], "file.0.title": "Protocole", "file.0.language": "fr", "file.0.tier": "public"}
    )
    response = party.post("/submit/new/protocol", data=fixed)
    assert response.status_code == 302
    with app.app_context():
        record = _record_by_title(fixed["title"])
        assert record.status == "draft"
        assert [f.original_name for f in record.files] == ["protocole.pdf"]
        assert PDF_TEXT in session.scalar(select(File.text))


def test_the_whole_workflow_with_a_revision_and_history(app, party, tmp_path):
    token = csrf_token(party, "/submit/new/protocol")
    form = protocol_form(token, action="submit")
    form["upload.0"] = (io.BytesIO(pdf_bytes(tmp_path)), "protocole.pdf")
    form["upload.0.language"] = "fr"
    form["upload.0.tier"] = "public"
    form["upload.1"] = (io.BytesIO(pdf_bytes(tmp_path, "Contrat avec le refuge")), "contrat.pdf")
    form["upload.1.language"] = "fr"
    form["upload.1.tier"] = "confidential"
    assert (
        party.post("/submit/new/protocol", data=form, content_type="multipart/form-data").status_code == 302
    )
    with app.app_context():
        record = _record_by_title(form["title"])
        record_id = record.id
        assert record.status == "submitted"
        secretariat = session.scalar(select(User).where(User.role == "secretariat"))
        commit()
        messages = mail.outbox()
        assert [m.to for m in messages] == ["secretariat-x@test.example"]
        assert "Protocole de quarantaine" in messages[0].subject
        # While under review the Party cannot change it.
        workflow.return_to_party(secretariat, record, "Ajoutez la date d'adoption.")
        commit()
    page = party.get(f"/submit/{record_id}").get_data(as_text=True)
    assert "Ajoutez la date d&#39;adoption." in page
    fixed = protocol_form(csrf_token(party, f"/submit/{record_id}"), date="2024-03-01", action="submit")
    with app.app_context():
        files = session.get(Record, record_id).files
        fixed["file.ref"] = [f.id for f in files]
        for index, f in enumerate(files):
            fixed.update(
                {
                    f"file.{index}.language": f.language,
                    f"file.{index}.tier": f.tier,
                    f"file.{index}.title": "",
                }
            )
    assert party.post(f"/submit/{record_id}", data=fixed).status_code == 302
    with app.app_context():
        record = session.get(Record, record_id)
        assert record.status == "submitted" and str(record.date) == "2024-03-01"
        secretariat = session.scalar(select(User).where(User.role == "secretariat"))
        workflow.publish(secretariat, record, Path(app.config["FILES_DIR"]))
        commit()
        public_file = next(f for f in record.files if f.tier == "public")
        contract = next(f for f in record.files if f.tier == "confidential")
    anonymous = app.test_client()
    page = anonymous.get(f"/records/{record_id}").get_data(as_text=True)
    assert "Protocole de quarantaine" in page and "protocole.pdf" in page and "contrat.pdf" not in page
    with anonymous.get(f"/files/{public_file.id}") as response:
        assert response.status_code == 200
    assert anonymous.get(f"/files/{contract.id}").status_code == 404

    # A new version: the published one stays online until the Secretariat publishes the revision.
    revised = protocol_form(
        csrf_token(party, f"/submit/{record_id}"), title="Protocole révisé", action="submit"
    )
    revised["file.ref"] = [public_file.id, contract.id]
    revised.update(
        {
            "file.0.language": "fr",
            "file.0.tier": "public",
            "file.1.language": "fr",
            "file.1.tier": "confidential",
        }
    )
    assert party.post(f"/submit/{record_id}", data=revised).status_code == 302
    assert "Protocole de quarantaine" in anonymous.get(f"/records/{record_id}").get_data(as_text=True)
    with app.app_context():
        record = session.get(Record, record_id)
        assert record.status == "published" and record.revision_status == "submitted"
        assert (
            "title",
            "Protocole de quarantaine des perroquets saisis",
            "Protocole révisé",
        ) in workflow.changes(workflow.last_published(record), workflow.working_shape(record))
        secretariat = session.scalar(select(User).where(User.role == "secretariat"))
        workflow.publish(secretariat, record, Path(app.config["FILES_DIR"]))
        commit()
        assert session.scalar(select(RecordVersion.number).order_by(RecordVersion.number.desc())) == 2
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert actions.count("submit") == 3 and actions.count("publish") == 2 and "return" in actions
    assert "Protocole révisé" in anonymous.get(f"/records/{record_id}").get_data(as_text=True)
    history = party.get(f"/submit/{record_id}/history").get_data(as_text=True)
    assert "Protocole de quarantaine des perroquets saisis" in history and "Protocole révisé" in history
    assert anonymous.get(f"/submit/{record_id}/history").status_code in (302, 404)


def test_another_partys_records_are_not_found(app, party):
    with app.app_context():
        other = make_record(party="FR", status="draft", title="Brouillon français")
        published = make_record(party="FR", status="published", title="Publié français")
        ids = other.id, published.id
    for record_id in ids:
        assert party.get(f"/submit/{record_id}").status_code == 404
        assert party.get(f"/submit/{record_id}/history").status_code == 404
        token = csrf_token(party, "/submit/")
        assert party.post(f"/submit/{record_id}/submit", data={"csrf_token": token}).status_code == 404
        assert party.post(f"/submit/{record_id}", data=protocol_form(token)).status_code == 404


def test_the_taxon_picker_finds_common_names_in_three_languages_without_javascript(app, party):
    for query, expected in (
        ("grey parrot", "Psittacus erithacus"),
        ("perroquet gris", "Psittacus erithacus"),
        ("loro gris", "Psittacus erithacus"),
    ):
        form = protocol_form(csrf_token(party, "/submit/new/protocol"), action="find_taxa", taxon_query=query)
        response = party.post("/submit/new/protocol", data=form)
        assert response.status_code == 200
        assert expected in response.get_data(as_text=True)
        found = party.get("/submit/taxa.json", query_string={"q": query}).get_json()
        assert expected in [t["name"] for t in found]
    with app.app_context():
        assert session.scalar(select(Record)) is None  # searching saved nothing


HOSTILE = {
    "long": "x" * 200_000,
    "nul": "Protocole\x00nul",
    "control": "Protocole\x07bell",
    "nfd": "Prote\u0301ge\u0301",
    "markup": "<script>alert(1)</script><b>gras</b>",
    "bidi": "\u202eevil",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_in_every_field_is_refused_or_saved_safely(app, party, name):
    value = HOSTILE[name]
    widgets = [
        "title",
        "summary",
        "issuing_bodies",
        "year",
        "date",
        "taxa",
        "details.responsible_agency",
        "details.procedures",
        "confidentiality.rule",
        "confidentiality.justification",
        "confidentiality.disclosure_date",
        "translations.en.title",
        "details.stages",
        "language",
        "confidentiality.level",
    ]
    for field in widgets:
        form = protocol_form(csrf_token(party, "/submit/new/protocol"), **{field: value})
        response = party.post("/submit/new/protocol", data=form)
        assert response.status_code in (302, 422), (field, response.status_code)
        if response.status_code == 422:
            page = response.get_data(as_text=True)
            assert "<script>alert(1)</script>" not in page
            assert 'class="errors"' in page, field
    with app.app_context():
        saved = list(session.scalars(select(Record)))
        for record in saved:
            for text in (record.title, record.summary, record.confidentiality_rule):
                assert "\x00" not in text and "\x07" not in text
                assert unicodedata.is_normalized("NFC", text)
            page = app.test_client().get(f"/records/{record.id}")
            assert "<script>alert(1)</script>" not in page.get_data(as_text=True)
