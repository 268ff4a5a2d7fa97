"""A Party's forms and the workflow behind them, through the pages, on both backends."""

from __future__ import annotations

import html
import io
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

from registry import mail, policy, uploads
from registry.db import commit, session
from registry.models import AuditEvent, File, Record, RecordVersion, User
from registry.services.records import history, review, shape, write
from registry.views.forms import detail_widgets
from schemas.common import FILE_LANGUAGES
from seed.documents import write_pdf

from .conftest import csrf_token, login, logout, on_backend
from .factories import PASSWORD, make_record, make_user
from .test_uploads import png_bytes

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
        review.return_to_party(secretariat, record, "Ajoutez la date d'adoption.")
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
        review.publish(secretariat, record, Path(app.config["FILES_DIR"]))
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
        ) in history.changes(history.last_published(record), shape.working_shape(record))
        secretariat = session.scalar(select(User).where(User.role == "secretariat"))
        review.publish(secretariat, record, Path(app.config["FILES_DIR"]))
        commit()
        assert session.scalar(select(RecordVersion.number).order_by(RecordVersion.number.desc())) == 2
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert actions.count("submit") == 3 and actions.count("publish") == 2 and "return" in actions
    assert "Protocole révisé" in anonymous.get(f"/records/{record_id}").get_data(as_text=True)
    page = party.get(f"/submit/{record_id}/history").get_data(as_text=True)
    assert "Protocole de quarantaine des perroquets saisis" in page and "Protocole révisé" in page
    assert anonymous.get(f"/submit/{record_id}/history").status_code in (302, 404)


def test_the_secretariat_states_the_scope_and_region_of_material_without_a_party(app, party):
    """Regional material stays regional through an edit (the form used to make it global)."""
    desk = app.test_client()
    login(desk, "secretariat-x@test.example", PASSWORD)
    path = "/submit/new/general_guidance"
    form = record_form(csrf_token(desk, path), "general_guidance", scope="regional", action="save")
    missing = desk.post(path, data=form)
    assert missing.status_code == 422 and errors_beside(missing.get_data(as_text=True), "region")
    assert 'value="regional" selected' in missing.get_data(as_text=True)
    response = desk.post(path, data={**form, "region": "africa"})
    assert response.status_code == 302
    with app.app_context():
        record = _record_by_title("Ressource de démonstration")
        assert (record.party_iso, record.scope, record.region) == (None, "regional", "africa")
        record_id = record.id
    page = desk.get(f"/submit/{record_id}").get_data(as_text=True)
    assert 'value="africa" selected' in page
    token = csrf_token(desk, f"/submit/{record_id}")
    edit = {**form, "csrf_token": token, "region": "africa", "title": "Renamed"}
    assert desk.post(f"/submit/{record_id}", data=edit).status_code == 302
    with app.app_context():
        record = session.get(Record, record_id)
        assert (record.title, record.scope, record.region) == ("Renamed", "regional", "africa")
    # A Party's own form has no such fields: its material is national, in its region.
    assert 'name="scope"' not in party.get(path).get_data(as_text=True)


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


# Hostile input in every field of every form -----------------------------------------------------

HOSTILE = {
    "long": "x" * 200_000,
    "huge": "99999999999999999999",
    "nul": "Protocole\x00nul",
    "control": "Protocole\x07bell",
    "c1": "Protocole\x9bcsi",
    "u2028": "Protocole\u2028ligne",
    "u2029": "Protocole\u2029paragraphe",
    "u0085": "Protocole\x85nel",
    "cr": "Protocole\rretour",
    "nfd": "Prote\u0301ge\u0301",
    "markup": "<script>alert(1)</script><b>gras</b>",
    "bidi": "\u202eevil",
}
MARKUP = "<script>alert(1)</script>"
# What no saved text may hold: control characters (tab and newline only in multi-line text) and
# every other line or paragraph separator.
FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# A valid form of each type: the common core in French, and the details each type requires.
REQUIRED_DETAILS = {
    "action_plan": {"details.lead_agency": "Direction de la faune"},
    "protocol": {"details.responsible_agency": "Douanes"},
    "regulatory_measure": {"details.instrument_type": "law", "details.reference": "Loi 2024-1"},
    "sop": {"details.agency": "Police"},
    "species_guidance": {"details.author": "Service vétérinaire"},
    "general_guidance": {"details.kind": "guidelines", "details.publisher": "UICN"},
    "network": {"details.coordinator": "Bureau du réseau"},
    "rescue_centre": {
        "details.facility_type": "rescue_centre",
        "details.operator": "Refuge national",
        "details.city": "Pretoria",
    },
    "agreement": {"details.agreement_type": "placement", "details.ownership": "state"},
}
COMMON_FIELDS = (
    "title",
    "summary",
    "language",
    "issuing_bodies",
    "year",
    "date",
    "taxa",
    "taxon_query",
    "translations.en.title",
    "translations.en.summary",
    "translations.es.title",
    "translations.es.summary",
    "confidentiality.level",
    "confidentiality.rule",
    "confidentiality.justification",
    "confidentiality.disclosure_date",
)
FILE_FIELDS = (
    "upload.0.title",
    "upload.0.language",
    "upload.0.tier",
    "file.0.title",
    "file.0.language",
    "file.0.tier",
)
# Controls whose value can only be one of those offered: what was typed cannot be shown again.
CHOSEN = re.compile(
    r"language$|tier$|^confidentiality\.(level|justification|fields\.)|stages|"
    r"disposal_options|instrument_type|kind$|audience|facility_type|services|"
    r"coverage_regions|members|agreement_type|ownership$|guidance_areas"
)


def record_form(token: str, record_type: str, **overrides: Any) -> dict[str, Any]:
    """A complete, valid form of ``record_type`` that submits the record."""
    form: dict[str, Any] = {
        "csrf_token": token,
        "title": "Ressource de démonstration",
        "language": "fr",
        "summary": "Résumé.",
        "issuing_bodies": "Direction de la faune",
        "year": "2024",
        "taxa": "Psittacus erithacus",
        "confidentiality.level": "public",
        **REQUIRED_DETAILS[record_type],
        "action": "submit",
    }
    form.update(overrides)
    return form


def fields_of(record_type: str) -> list[str]:
    """Every control of the form of ``record_type``, files included."""
    groups = [f"confidentiality.fields.{g}" for g in policy.SENSITIVE_FIELDS.get(record_type, {})]
    return [*COMMON_FIELDS, *groups, *(w.name for w in detail_widgets(record_type)), *FILE_FIELDS]


def staged_token(app) -> str:  # type: ignore[no-untyped-def]
    """A signed token of a fresh upload (a PNG: no text to extract), as a re-rendered form holds one."""
    with app.app_context():
        files_dir = Path(app.config["FILES_DIR"])
        staged = uploads.accept(FileStorage(io.BytesIO(png_bytes()), "photo.png"), files_dir, 1 << 20)
        return uploads.sign(staged, app.config["SECRET_KEY"])


def hostile_form(app, token: str, record_type: str, field: str, value: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The valid form of ``record_type`` with ``value`` in ``field`` (and what the field needs to count)."""
    form = record_form(token, record_type, **{field: value})
    if field.startswith("translations.") and field.endswith(".summary"):
        # A translation counts only with its title.
        form[field.replace(".summary", ".title")] = "Titre traduit"
    if field.startswith("upload.0."):
        form["upload.0"] = (io.BytesIO(png_bytes()), "photo.png")
        form.setdefault("upload.0.language", "fr")
        form.setdefault("upload.0.tier", "public")
    if field.startswith("file.0."):
        form.update({"file.ref": staged_token(app), "file.0.language": "fr", "file.0.tier": "public"})
        form[field] = value
    return form


def errors_beside(page: str, field: str) -> bool:
    """Whether the page shows an error message in the same box as the control named ``field``."""
    if field.startswith("confidentiality.fields."):
        # The tiers of the sensitive fields share one message, right below them.
        start = page.index('name="confidentiality.fields.')
        return 'class="errors"' in page[start : page.index('id="confidentiality-justification"')]
    at = page.find(f'name="{field}"')
    assert at >= 0, f"no control {field}"
    start = max(
        page.rfind(marker, 0, at) for marker in ('<div class="field', "<td", '<fieldset class="choices"')
    )
    return 'class="errors"' in page[start:at]


def assert_clean(text: str, where: str) -> None:
    """Saved text is NFC-normalised and holds no control character or stray line separator."""
    assert unicodedata.is_normalized("NFC", text), where
    assert not FORBIDDEN.search(text), (where, text[:80])


def walk_strings(value: Any, where: str = ""):  # type: ignore[no-untyped-def]
    """Every string inside a JSON shape, with where it is."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from walk_strings(inner, f"{where}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from walk_strings(inner, f"{where}[{index}]")


# What the database itself may take differently (a NUL, a length, a number, a normal form) runs on
# both backends; the rest is refused or cleaned by the app before any query, so SQLite proves it.
REACHES_THE_DATABASE = {"long", "huge", "nul", "nfd"}
HOSTILE_CASES = [
    on_backend(backend, name)
    for name in sorted(HOSTILE)
    for backend in (("sqlite", "postgres") if name in REACHES_THE_DATABASE else ("sqlite",))
]


@pytest.mark.parametrize(("backend", "name"), HOSTILE_CASES)
def test_hostile_input_in_every_field_is_refused_or_saved_safely(app, party, name):
    value = HOSTILE[name]
    submitted = 0
    # The fields every type shares are the same code on every form: each value tries them on one
    # type, a different one for each value, and every type's own fields on that type.
    types = list(REQUIRED_DETAILS)
    shared_by = types[sorted(HOSTILE).index(name) % len(types)]
    for record_type in types:
        path = f"/submit/new/{record_type}"
        token = csrf_token(party, path)
        # The taxon picker without JavaScript: a clear message by the field, or a list of matches.
        form = record_form(token, record_type, taxon_query=value, action="find_taxa")
        response = party.post(path, data=form)
        assert response.status_code in (200, 422), (record_type, "find_taxa", response.status_code)
        if response.status_code == 422:
            assert errors_beside(response.get_data(as_text=True), "taxon_query"), name
        for field in fields_of(record_type):
            if record_type != shared_by and field in (*COMMON_FIELDS, *FILE_FIELDS):
                continue
            form = hostile_form(app, token, record_type, field, value)
            response = party.post(path, data=form, content_type="multipart/form-data")
            assert response.status_code in (302, 422), (record_type, field, response.status_code)
            page = response.get_data(as_text=True)
            assert MARKUP not in page and "Traceback" not in page, (record_type, field)
            if response.status_code == 302:
                submitted += 1
                continue
            # An upload that was accepted is listed with the files, its title and language with it.
            shown = field.replace("upload.0.", "file.0.")
            messages = re.findall(r'class="errors">(.*?)</ul>', page)
            assert errors_beside(page, shown), (record_type, field, messages)
            if not CHOSEN.search(field):
                # Nothing typed is lost: the form comes back with the value as it was typed.
                assert html.escape(value) in page, (record_type, field)
    with app.app_context():
        saved = list(session.scalars(select(Record).order_by(Record.created_at)))
        assert len(saved) == submitted and all(r.status == "submitted" for r in saved)
        for record in saved:
            for where, text in walk_strings(shape.record_shape(record)):
                assert_clean(text, f"{record.type}{where}")
            for file in record.files:
                assert_clean(file.title, f"{record.type}.files.title")
                assert file.language in FILE_LANGUAGES
        # The journey went on to the e-mail: one message to the Secretariat per submitted record.
        subjects = [m.subject for m in mail.outbox(limit=10_000)]
        assert len(subjects) == submitted
        for record in saved:
            assert any(record.title[:120] in subject for subject in subjects), record.title[:80]
        ids = [r.id for r in saved]
        marked = {
            r.id
            for r in saved
            if any(MARKUP in text for _, text in walk_strings(shape.record_shape(r)))
            or any(MARKUP in f.title for f in r.files)
        }
    secretariat = app.test_client()
    login(secretariat, "secretariat-x@test.example", PASSWORD)
    for record_id in ids:
        for client, url in ((secretariat, f"/admin/records/{record_id}"), (party, f"/submit/{record_id}")):
            response = client.get(url)
            assert response.status_code == 200, url
            assert MARKUP not in response.get_data(as_text=True), url
        if record_id in marked:
            # Shown, as text: the Secretariat reviews every field the Party gave.
            page = secretariat.get(f"/admin/records/{record_id}").get_data(as_text=True)
            assert html.escape(MARKUP) in page, record_id
    # The Party withdraws one of them, giving the hostile reason.
    target = ids[0]
    response = party.post(
        f"/submit/{target}/withdraw", data={"csrf_token": csrf_token(party, "/submit/"), "reason": value}
    )
    assert response.status_code in (302, 422), response.status_code
    page = response.get_data(as_text=True)
    assert MARKUP not in page
    with app.app_context():
        record = session.get(Record, target)
        if response.status_code == 422:
            assert 'class="errors"' in page and html.escape(value) in page
            assert record.status == "submitted"
        else:
            assert record.status == "withdrawn"
            entry = session.scalar(select(AuditEvent).where(AuditEvent.action == "withdraw"))
            assert_clean(entry.detail["reason"], "withdraw reason")


@pytest.mark.parametrize("name", ["nul", "u2028", "long", "nfd"])
def test_the_title_of_an_attached_file_is_checked_like_any_field(app, party, name):
    form = hostile_form(app, csrf_token(party, "/submit/new/protocol"), "protocol", "upload.0.title", "Plan")
    form["action"] = "save"
    response = party.post("/submit/new/protocol", data=form, content_type="multipart/form-data")
    assert response.status_code == 302
    record_id = response.headers["Location"].rsplit("/", 1)[-1]
    with app.app_context():
        file_id = session.get(Record, record_id).files[0].id
    edit = record_form(csrf_token(party, f"/submit/{record_id}"), "protocol", action="save")
    edit.update({"file.ref": file_id, "file.0.title": HOSTILE[name], "file.0.language": "fr"})
    response = party.post(f"/submit/{record_id}", data=edit)
    page = response.get_data(as_text=True)
    with app.app_context():
        title = session.get(Record, record_id).files[0].title
    if name == "nfd":
        assert response.status_code == 302 and title == "Protégé"
    else:
        assert response.status_code == 422 and errors_beside(page, "file.0.title")
        assert html.escape(HOSTILE[name]) in page and title == "Plan"


def test_line_and_paragraph_separators_become_new_lines_in_multi_line_text(app, party):
    form = record_form(
        csrf_token(party, "/submit/new/protocol"),
        "protocol",
        summary="Une\u2028deux\x85trois\rquatre\x0bcinq\x0csix\r\nsept\u2029Paragraphe",
    )
    assert party.post("/submit/new/protocol", data=form).status_code == 302
    with app.app_context():
        summary = session.scalar(select(Record.summary))
    assert summary == "Une\ndeux\ntrois\nquatre\ncinq\nsix\nsept\n\nParagraphe"


def test_a_title_with_an_invisible_line_separator_is_refused_before_it_reaches_the_mail(app, party):
    form = record_form(csrf_token(party, "/submit/new/protocol"), "protocol", title="Protocole\u2028Bcc: x")
    response = party.post("/submit/new/protocol?lang=fr", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert errors_beside(page, "title") and "Protocole\u2028Bcc: x" in page
    with app.app_context():
        assert session.scalar(select(Record)) is None and mail.outbox() == []


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("details.capacity", "99999999999999999999", "Enter a number from 0 to 1000000."),
        ("details.capacity", "-1", "Enter a number from 0 to 1000000."),
        ("year", "2147483648", "Enter a number from 1950 to 2100."),
        ("details.latitude", "1e400", "Special numeric values"),
    ],
)
def test_numbers_out_of_bounds_are_refused_before_the_database_sees_them(party, field, value, says):
    form = record_form(csrf_token(party, "/submit/new/rescue_centre"), "rescue_centre", **{field: value})
    response = party.post("/submit/new/rescue_centre", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert errors_beside(page, field) and says in page and f'value="{value}"' in page


# Files in another language ---------------------------------------------------------------------


def test_a_file_in_another_language_is_offered_saved_and_shown(app, party):
    page = party.get("/submit/new/protocol").get_data(as_text=True)
    offered = re.findall(r'<select name="upload\.0\.language".*?</select>', page, re.S)[0]
    assert re.findall(r'value="([^"]+)"', offered) == list(FILE_LANGUAGES)
    form = record_form(csrf_token(party, "/submit/new/protocol"), "protocol", action="save")
    form.update({"upload.0": (io.BytesIO(png_bytes()), "mapa.png"), "upload.0.language": "other"})
    response = party.post("/submit/new/protocol", data=form, content_type="multipart/form-data")
    assert response.status_code == 302
    record_id = response.headers["Location"].rsplit("/", 1)[-1]
    with app.app_context():
        assert [f.language for f in session.get(Record, record_id).files] == ["other"]
    page = party.get(f"/submit/{record_id}").get_data(as_text=True)
    assert re.search(r'<option value="other" selected>Other language</option>', page)
    # Import accepts what the form accepts, and the public page names the language.
    with app.app_context():
        imported = make_record(files=[{"path": "files/p.pdf", "language": "other", "text": "Texto"}])
        assert [f.language for f in imported.files] == ["other"]
        imported_id = imported.id
    public = app.test_client().get(f"/records/{imported_id}").get_data(as_text=True)
    assert "Other language" in public


# Signed upload tokens used twice ---------------------------------------------------------------


def _upload_form(party, path: str, **overrides: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    form = record_form(csrf_token(party, path), "protocol", action="save", **overrides)
    return form


def _token_of_a_refused_form(party) -> str:  # type: ignore[no-untyped-def]
    """Post a form whose title is missing with a PNG: the page comes back carrying the upload's token."""
    form = _upload_form(party, "/submit/new/protocol", title="")
    form.update({"upload.0": (io.BytesIO(png_bytes()), "carte.png"), "upload.0.language": "fr"})
    page = party.post("/submit/new/protocol", data=form, content_type="multipart/form-data")
    assert page.status_code == 422
    (token,) = re.findall(r'name="file\.ref" value="([^"]+)"', page.get_data(as_text=True))
    return token


def _with_token(form: dict[str, Any], *tokens: str) -> dict[str, Any]:
    form["file.ref"] = list(tokens)
    for index in range(len(tokens)):
        form.update({f"file.{index}.language": "fr", f"file.{index}.tier": "public"})
    return form


def _rows_per_stored_file(app) -> list[int]:  # type: ignore[no-untyped-def]
    with app.app_context():
        names = list(session.scalars(select(File.stored_name)))
    return [names.count(name) for name in set(names)]


def test_a_form_sent_twice_never_lets_two_records_share_one_stored_file(app, party):
    token = _token_of_a_refused_form(party)
    form = _with_token(_upload_form(party, "/submit/new/protocol"), token)
    first = party.post("/submit/new/protocol", data=form)
    assert first.status_code == 302
    # Back, and the same form sent again: refused with the reason, everything else kept.
    again = party.post("/submit/new/protocol?lang=fr", data=form)
    assert again.status_code == 422
    page = again.get_data(as_text=True)
    assert "Ressource de démonstration" in page
    assert 'class="errors"' in page.split('id="upload-0"')[0].split("<legend>")[-1]
    with app.app_context():
        assert session.scalar(select(func.count()).select_from(Record)) == 1
    assert _rows_per_stored_file(app) == [1]


def test_the_same_upload_sent_again_to_its_own_record_is_that_file(app, party):
    token = _token_of_a_refused_form(party)
    response = party.post(
        "/submit/new/protocol", data=_with_token(_upload_form(party, "/submit/new/protocol"), token)
    )
    record_id = response.headers["Location"].rsplit("/", 1)[-1]
    # Back and resubmit on the record's own page, and the token listed twice in one form.
    path = f"/submit/{record_id}"
    for tokens in ((token,), (token, token)):
        form = _with_token(_upload_form(party, path, title="Titre corrigé"), *tokens)
        assert party.post(path, data=form).status_code == 302
    with app.app_context():
        record = session.get(Record, record_id)
        assert record.title == "Titre corrigé" and [f.original_name for f in record.files] == ["carte.png"]
    assert _rows_per_stored_file(app) == [1]


def test_an_upload_saved_with_one_record_is_refused_on_another(app, party):
    token = _token_of_a_refused_form(party)
    party.post("/submit/new/protocol", data=_with_token(_upload_form(party, "/submit/new/protocol"), token))
    other = party.post(
        "/submit/new/protocol", data=_upload_form(party, "/submit/new/protocol", title="Autre")
    )
    other_id = other.headers["Location"].rsplit("/", 1)[-1]
    path = f"/submit/{other_id}"
    response = party.post(path, data=_with_token(_upload_form(party, path, title="B"), token))
    assert response.status_code == 422
    assert "This upload was already saved with a record" in response.get_data(as_text=True)
    with app.app_context():
        assert session.get(Record, other_id).files == []
    assert _rows_per_stored_file(app) == [1]


def test_two_submissions_of_one_upload_at_once_get_the_reason_not_a_500(app, party, monkeypatch):
    token = _token_of_a_refused_form(party)
    form = _with_token(_upload_form(party, "/submit/new/protocol"), token)
    assert party.post("/submit/new/protocol", data=form).status_code == 302
    # The other request committed between this one's check and its insert: the check saw nothing.
    check = write.check_files
    calls: list[int] = []

    def late_check(record, entries):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) > 1:
            check(record, entries)

    monkeypatch.setattr(write, "check_files", late_check)
    response = party.post("/submit/new/protocol", data=form)
    assert response.status_code == 422 and len(calls) == 2
    assert "This upload was already saved with a record" in response.get_data(as_text=True)
    assert _rows_per_stored_file(app) == [1]


def test_an_expired_upload_is_asked_for_again(party):
    form = _with_token(_upload_form(party, "/submit/new/protocol"), "not-a-token")
    response = party.post("/submit/new/protocol", data=form)
    assert response.status_code == 422
    assert "could not be kept: upload it again" in response.get_data(as_text=True)


# The taxon picker --------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["pa\x00rrot", "pa\x07rrot", "par\u2028rot", "x" * 101])
def test_the_taxon_picker_refuses_junk_clearly(party, query):
    response = party.get("/submit/taxa.json", query_string={"q": query})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] and body["errors"]["q"]
    form = record_form(csrf_token(party, "/submit/new/protocol"), "protocol", action="find_taxa")
    response = party.post("/submit/new/protocol", data={**form, "taxon_query": query})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert errors_beside(page, "taxon_query") and html.escape(query) in page


@pytest.mark.parametrize("query", ["%%", "__", "%_", "\\%", "Psitt%us", "Psittacu_"])
def test_the_taxon_picker_takes_wildcards_literally(party, query):
    assert party.get("/submit/taxa.json", query_string={"q": query}).get_json() == []
    form = record_form(csrf_token(party, "/submit/new/protocol"), "protocol", action="find_taxa")
    page = party.post("/submit/new/protocol", data={**form, "taxon_query": query}).get_data(as_text=True)
    assert "No taxon matches." in page


# Withdrawing -------------------------------------------------------------------------------------


def test_the_withdraw_reason_is_checked_and_kept(app, party):
    form = record_form(csrf_token(party, "/submit/new/protocol"), "protocol")
    assert party.post("/submit/new/protocol", data=form).status_code == 302
    with app.app_context():
        record_id = session.scalar(select(Record.id))
    path = f"/submit/{record_id}/withdraw"
    for reason, says in (
        ("Doublon\x00", "Contains control characters"),
        ("x" * 5001, "Must be at most 5000 characters long."),
    ):
        response = party.post(path, data={"csrf_token": csrf_token(party, "/submit/"), "reason": reason})
        assert response.status_code == 422
        page = response.get_data(as_text=True)
        assert says in page and html.escape(reason) in page
    with app.app_context():
        assert session.get(Record, record_id).status == "submitted"
    reason = "Doublon d\u2019une fiche publie\u0301e"
    response = party.post(path, data={"csrf_token": csrf_token(party, "/submit/"), "reason": reason})
    assert response.status_code == 302
    with app.app_context():
        entry = session.scalar(select(AuditEvent).where(AuditEvent.action == "withdraw"))
        assert entry.detail["reason"] == unicodedata.normalize("NFC", reason)


# Who downloaded: counts for the Party, people for the Secretariat --------------------------------


def test_a_partys_history_counts_downloads_by_role_and_party_without_naming_anyone(app, party):
    """Issue 10, item 5: the history page of a Party's record says how often its non-public files
    were downloaded, by role and by Party for Parties' users, and names none of the downloaders (no
    e-mail, name or address); the Secretariat's trail, on its audit page and on the same history
    page, still says who they were."""
    files = [
        {"path": "files/annex.pdf", "language": "en", "tier": "confidential", "text": "Pens."},
        {"path": "files/guide.pdf", "language": "en", "tier": "registered", "text": "Guide."},
    ]
    people = {  # role: (Party, e-mail, given name, family name)
        "enforcement": (None, "officer-x7q@test.example", "Odile", "Quarrel"),
        "reader": (None, "reader-k3v@test.example", "Rufus", "Kettleby"),
        "party": ("FR", "focal-f9z@test.example", "Fanny", "Zébulon"),
    }
    with app.app_context():
        record = make_record(party="ZA", files=files)
        record_id = record.id
        annex = next(f.id for f in record.files if f.tier == "confidential")
        guide = next(f.id for f in record.files if f.tier == "registered")
        for role, (iso, email, given, family) in people.items():
            make_user(role, iso, email=email, given_name=given, family_name=family)
    emails = {role: person[1] for role, person in people.items()}
    names = [name for person in people.values() for name in person[2:]]
    downloads = {"enforcement": [annex, annex, guide], "reader": [guide, guide], "party": [guide]}
    addresses = {"enforcement": "203.0.113.71", "reader": "203.0.113.72", "party": "203.0.113.73"}
    for role, file_ids in downloads.items():
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = addresses[role]
        login(client, emails[role], PASSWORD)
        for file_id in file_ids:
            with client.get(f"/files/{file_id}") as response:
                assert response.status_code == 200
    # The Party's own focal point downloads its annex once too.
    with party.get(f"/files/{annex}") as response:
        assert response.status_code == 200

    page = party.get(f"/submit/{record_id}/history")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td></tr>", text)
    assert rows == [
        ("Reader", "2"),
        ("Enforcement officer", "3"),
        ("Users of France", "1"),
        ("Users of South Africa", "1"),
    ]
    for needle in (
        *emails.values(),
        *addresses.values(),
        *names,
        "Downloaded a non-public file",
    ):
        assert needle not in text, needle

    secretariat = app.test_client()
    login(secretariat, "secretariat-x@test.example", PASSWORD)
    audit_page = secretariat.get(f"/admin/audit?action=download&record={record_id}").get_data(as_text=True)
    for role in downloads:
        assert emails[role] in audit_page and addresses[role] in audit_page
    assert "party-za@test.example" in audit_page
    desk_history = secretariat.get(f"/submit/{record_id}/history").get_data(as_text=True)
    assert all(email in desk_history for email in emails.values())
    assert re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td></tr>", desk_history) == rows
