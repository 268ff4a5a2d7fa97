"""The Secretariat's desk: hidden from everyone else; queue, review decisions, tiers, trail, outbox, calls."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import select

from registry import mail
from registry.db import commit, session
from registry.errors import Forbidden
from registry.models import AuditEvent, Call, Record, RecordVersion, User
from registry.services import calls, workflow

from .conftest import csrf_token, login, without_csrf
from .factories import PASSWORD, make_record, make_user, record_data

ROLES = ("secretariat", "reader", "enforcement", "party")
HIDDEN_FROM = ("anonymous", "reader", "enforcement", "party")
MISSING = "/records/rzzzzzzzzzzzz"


@pytest.fixture
def people(app) -> dict[str, str]:
    """One user per role (the Party user of ZA), plus a focal point of FR and of MX: their e-mails."""
    with app.app_context():
        emails = {role: make_user(role, "ZA" if role == "party" else None).email for role in ROLES}
        emails["party_fr"] = make_user("party", "FR").email
        emails["party_mx"] = make_user("party", "MX").email
    return emails


def _user(email: str) -> User:
    return session.scalar(select(User).where(User.email == email))


def _files_dir() -> Path:
    return Path(current_app.config["FILES_DIR"])


def submission(party_email: str, **overrides) -> str:
    """A new record that the Party of ``party_email`` submitted (inside an app context); its id."""
    user = _user(party_email)
    data = record_data(party=user.party_iso, **overrides)
    record = workflow.create_record(user, data, [], _files_dir())
    workflow.submit(user, record)
    commit()
    return record.id


def revision(party_email: str, record_id: str, **changes) -> None:
    """The Party's submitted revision of its published record ``record_id`` with ``changes``."""
    user = _user(party_email)
    record = session.get(Record, record_id)
    data = {**workflow.record_shape(record), **changes}
    data.pop("files")
    workflow.save_record(user, record, data, [], _files_dir())
    workflow.submit(user, record)
    commit()


def _signed_in(app, email: str | None):
    client = app.test_client()
    if email is not None:
        assert login(client, email, PASSWORD).status_code == 302
    return client


@pytest.fixture
def secretariat(app, people):
    """A client signed in as the Secretariat."""
    return _signed_in(app, people["secretariat"])


def _post(client, url: str, data: dict[str, str] | None = None, token_from: str = "/"):
    return client.post(url, data={**(data or {}), "csrf_token": csrf_token(client, token_from)})


def _status(client, url: str) -> int:
    """The status of GET ``url``, the response closed (a download holds its file open)."""
    with client.get(url) as response:
        return response.status_code


def _text(response) -> str:
    return response.get_data(as_text=True)


def _events(action: str) -> list[AuditEvent]:
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
    )


def _outbox_to(subject_start: str) -> list[str]:
    return sorted(m.to for m in mail.outbox() if m.subject.startswith(subject_start))


# Nobody but the Secretariat ----------------------------------------------------------------------


@pytest.mark.parametrize("role", HIDDEN_FROM)
def test_the_desk_is_a_missing_page_to_everyone_else(app, people, role):
    with app.app_context():
        record_id = submission(people["party"])
        call = calls.create_call(
            _user(people["secretariat"]),
            {
                "notification": "2021/008",
                "title_en": "Call",
                "title_fr": "Appel",
                "title_es": "Solicitud",
                "opens_on": "2021-01-01",
                "deadline": "2021-06-30",
            },
        )
        commit()
        call_id = call.id
    client = _signed_in(app, None if role == "anonymous" else people[role])
    token_page = "/login" if role == "anonymous" else "/"
    missing = without_csrf(_text(client.get(MISSING)))
    pages = [
        "/admin/",
        "/admin/?party=ZA",
        f"/admin/records/{record_id}",
        "/admin/audit",
        "/admin/outbox",
        "/admin/disclosures",
        "/admin/calls",
        f"/admin/calls/{call_id}",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 404, url
        assert without_csrf(_text(response)) == missing, url
    actions = [
        (f"/admin/records/{record_id}/publish", {}),
        (f"/admin/records/{record_id}/return", {"comment": "Fix it"}),
        (f"/admin/records/{record_id}/withdraw", {"reason": "Gone"}),
        (f"/admin/records/{record_id}/tier", {"target": "record", "tier": "confidential", "reason": "x"}),
        ("/admin/calls", {"notification": "2022/001", "title_en": "a", "title_fr": "b", "title_es": "c"}),
        (f"/admin/calls/{call_id}/remind", {}),
    ]
    for url, data in actions:
        assert _post(client, url, data, token_page).status_code == 404, url
    assert 'href="/admin/"' not in _text(client.get("/"))
    with app.app_context():
        record = session.get(Record, record_id)
        assert (record.status, record.tier) == ("submitted", "public")
        assert session.scalar(select(Call.id).where(Call.notification == "2022/001")) is None
        assert not _events("publish") and not _events("return") and not _events("reminder_sent")


def test_the_secretariat_finds_the_desk_in_the_menu(app, secretariat):
    page = _text(secretariat.get("/"))
    assert 'href="/admin/"' in page
    for url in ("/admin/", "/admin/audit", "/admin/outbox", "/admin/disclosures", "/admin/calls"):
        assert secretariat.get(url).status_code == 200, url


# The queue ---------------------------------------------------------------------------------------


def test_the_queue_lists_submissions_oldest_first_and_filters(app, people, secretariat):
    with app.app_context():
        recent = submission(people["party"], title="Recent parrot protocol")
        old = submission(people["party_fr"], type="sop", title="Ancienne procédure", language="fr")
        session.get(Record, old).submitted_at -= dt.timedelta(days=40)
        draft = workflow.create_record(
            _user(people["party"]), record_data(title="Unsent draft"), [], _files_dir()
        )
        commit()
        assert draft.status == "draft"
    page = _text(secretariat.get("/admin/"))
    assert "Recent parrot protocol" in page and "Ancienne procédure" in page
    assert page.index("Ancienne procédure") < page.index("Recent parrot protocol")
    assert "Unsent draft" not in page
    assert re.search(r"Drafts <span class=\"n\">1</span>", page)
    assert f'href="/admin/records/{recent}"' in page
    for query, shown, hidden in (
        ("party=FR", "Ancienne", "Recent parrot"),
        ("type=protocol", "Recent parrot", "Ancienne"),
        ("language=fr", "Ancienne", "Recent parrot"),
        ("older_than=30", "Ancienne", "Recent parrot"),
        ("older_than=7&party=ZA&lang=en&unknown=1", "No submission matches", "Ancienne"),
    ):
        response = secretariat.get(f"/admin/?{query}")
        assert response.status_code == 200, query
        assert shown in _text(response) and hidden not in _text(response), query
    for bad in (
        "older_than=5",
        "older_than=%00",
        "party=zz",
        "type=<script>",
        "language=de",
        "older_than=9" * 50,
    ):
        response = secretariat.get(f"/admin/?{bad}")
        assert response.status_code == 400, bad
        body = _text(response)
        assert (
            "Some filters were not understood" in body and "Recent parrot" in body and "<script>" not in body
        )


# Deciding --------------------------------------------------------------------------------------


def test_publish_keeps_a_version_and_writes_the_trail(app, people, secretariat):
    with app.app_context():
        record_id = submission(people["party"], title="Quarantine of seized tortoises")
    assert secretariat.get(f"/records/{record_id}").status_code == 200
    assert app.test_client().get(f"/records/{record_id}").status_code == 404
    review = _text(secretariat.get(f"/admin/records/{record_id}"))
    assert "New record" in review and "Last published" not in review
    new_rows = re.findall(r'<th scope="row">(.*?)</th>\s*<td class="after">(.*?)</td>', review, re.S)
    assert ("Title", '<span class="text">Quarantine of seized tortoises</span>\n') in new_rows
    assert {"Summary", "Original language", "Taxa covered", "Confidentiality level"} <= dict(new_rows).keys()
    response = _post(
        secretariat, f"/admin/records/{record_id}/publish", token_from=f"/admin/records/{record_id}"
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
    assert "Published: Quarantine of seized tortoises" in _text(secretariat.get("/admin/"))
    assert app.test_client().get(f"/records/{record_id}").status_code == 200
    with app.app_context():
        record = session.get(Record, record_id)
        assert record.status == "published" and record.published_at is not None
        assert session.scalar(select(RecordVersion.number).where(RecordVersion.record_id == record_id)) == 1
        (event,) = _events("publish")
        assert event.record_id == record_id and event.actor == people["secretariat"]
    again = _post(secretariat, f"/admin/records/{record_id}/publish")
    assert again.status_code == 422 and "Only a submitted record can be published." in _text(again)


@pytest.mark.parametrize("comment", ["", "   \n  "])
def test_return_without_a_comment_changes_nothing(app, people, secretariat, comment):
    with app.app_context():
        record_id = submission(people["party"])
    response = _post(secretariat, f"/admin/records/{record_id}/return", {"comment": comment})
    page = _text(response)
    assert response.status_code == 422
    assert 'id="return-comment-error"' in page and "Must not be empty." in page
    assert 'aria-invalid="true"' in page
    with app.app_context():
        assert session.get(Record, record_id).status == "submitted"
        assert not _events("return")


def test_return_with_a_comment_goes_back_to_the_party(app, people, secretariat):
    with app.app_context():
        record_id = submission(people["party"])
    comment = "Please attach the French version.\nAnd name the quarantine station."
    response = _post(secretariat, f"/admin/records/{record_id}/return", {"comment": comment})
    assert response.status_code == 302
    with app.app_context():
        record = session.get(Record, record_id)
        assert record.status == "returned" and record.review_comment == comment
        (event,) = _events("return")
        assert event.detail["comment"] == comment and event.record_id == record_id
        assert _outbox_to("Returned with a comment") == [people["party"]]
    review = _text(secretariat.get(f"/admin/records/{record_id}"))
    assert "Please attach the French version." in review
    assert "This record is not waiting for a decision." in review


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        ("x" * 5001, "Must be at most 5000 characters long."),
        ("Fix\x00this", "Contains control characters"),
        ("Fix\x1b[31mthis", "Contains control characters"),
    ],
)
def test_hostile_comments_get_a_clear_answer(app, people, secretariat, comment, message):
    with app.app_context():
        record_id = submission(people["party"])
    response = _post(secretariat, f"/admin/records/{record_id}/return", {"comment": comment})
    assert response.status_code == 422 and message in _text(response)
    with app.app_context():
        assert session.get(Record, record_id).status == "submitted"


def test_markup_in_a_comment_is_saved_as_text_and_escaped(app, people, secretariat):
    with app.app_context():
        record_id = submission(people["party"])
    comment = '<script>alert("x")</script> & <b>bold</b> — ½ “quoted” 🐢'
    response = _post(secretariat, f"/admin/records/{record_id}/return", {"comment": comment})
    assert response.status_code == 302
    with app.app_context():
        assert session.get(Record, record_id).review_comment == comment
    review = _text(secretariat.get(f"/admin/records/{record_id}"))
    assert "<script>alert" not in review and "<b>bold</b>" not in review
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in review
    assert "🐢" in review
    trail = _text(secretariat.get(f"/admin/audit?record={record_id}"))
    assert "<script>alert" not in trail and "&lt;script&gt;" in trail


def test_withdraw_needs_a_reason_and_takes_the_record_off_the_public_site(app, people, secretariat):
    with app.app_context():
        record_id = make_record(title="Published then withdrawn").id
    assert app.test_client().get(f"/records/{record_id}").status_code == 200
    refused = _post(secretariat, f"/admin/records/{record_id}/withdraw", {"reason": " "})
    assert refused.status_code == 422 and 'id="withdraw-reason-error"' in _text(refused)
    assert app.test_client().get(f"/records/{record_id}").status_code == 200
    response = _post(
        secretariat, f"/admin/records/{record_id}/withdraw", {"reason": "Duplicate of another record"}
    )
    assert response.status_code == 302
    assert app.test_client().get(f"/records/{record_id}").status_code == 404
    with app.app_context():
        assert session.get(Record, record_id).status == "withdrawn"
        (event,) = _events("withdraw")
        assert event.detail["reason"] == "Duplicate of another record"
    page = _text(secretariat.get(f"/admin/records/{record_id}"))
    assert "Withdraw the record" not in page


def _diff_rows(review: str) -> dict[str, tuple[str, str]]:
    """The diff table of a review page: field label -> (before, after) cell contents."""
    table = review[review.index('<table class="data diff">') :]
    table = table[: table.index("</table>")]
    rows = re.findall(
        r'<th scope="row">(.*?)</th>\s*<td class="before">(.*?)</td>\s*<td class="after">(.*?)</td>',
        table,
        re.S,
    )
    return {name.strip(): (before, after) for name, before, after in rows}


@pytest.mark.parametrize("published_by", ["desk", "import"])
def test_a_revision_shows_its_changed_title_beside_the_published_one(app, people, secretariat, published_by):
    with app.app_context():
        if published_by == "desk":
            record_id = submission(people["party"], title="Holding seized parrots")
        else:
            record_id = make_record(title="Holding seized parrots").id
    if published_by == "desk":
        _post(secretariat, f"/admin/records/{record_id}/publish")
    with app.app_context():
        revision(people["party"], record_id, title="Holding and feeding seized parrots")
    page = _text(secretariat.get("/admin/"))
    assert "Revision" in page and f"/admin/records/{record_id}" in page
    review = _text(secretariat.get(f"/admin/records/{record_id}"))
    assert "Changes since the last published version" in review
    rows = _diff_rows(review)
    assert list(rows) == ["Title"]
    before, after = rows["Title"]
    assert "Holding seized parrots" in before and "Holding and feeding seized parrots" in after
    assert _post(secretariat, f"/admin/records/{record_id}/publish").status_code == 302
    assert "Holding and feeding seized parrots" in _text(app.test_client().get(f"/records/{record_id}"))
    with app.app_context():
        record = session.get(Record, record_id)
        numbers = [v.number for v in workflow.versions(_user(people["secretariat"]), record)]
    assert numbers == ([2, 1] if published_by == "desk" else [1])


# Marking confidential --------------------------------------------------------------------------


def test_a_raised_file_is_gone_for_the_public_at_once(app, people, secretariat):
    with app.app_context():
        record = make_record(
            files=[{"path": "files/a.pdf", "language": "en", "tier": "public", "text": "Quarantine steps"}]
        )
        record_id, file_id = record.id, record.files[0].id
    anonymous = app.test_client()
    assert _status(anonymous, f"/files/{file_id}") == 200
    review = _text(secretariat.get(f"/admin/records/{record_id}"))
    assert f'value="file:{file_id}"' in review
    refused = _post(
        secretariat,
        f"/admin/records/{record_id}/tier",
        {"target": f"file:{file_id}", "tier": "public", "reason": "x"},
    )
    assert refused.status_code == 422 and "A tier can only be raised here." in _text(refused)
    missing_reason = _post(
        secretariat, f"/admin/records/{record_id}/tier", {"target": f"file:{file_id}", "tier": "registered"}
    )
    assert missing_reason.status_code == 422 and "Required." in _text(missing_reason)
    assert _status(anonymous, f"/files/{file_id}") == 200
    response = _post(
        secretariat,
        f"/admin/records/{record_id}/tier",
        {"target": f"file:{file_id}", "tier": "confidential", "reason": "Names the holding facility"},
    )
    assert response.status_code == 302
    assert _status(anonymous, f"/files/{file_id}") == 404
    assert _status(secretariat, f"/files/{file_id}") == 200
    with app.app_context():
        (event,) = _events("tier_change")
        assert (event.file_id, event.detail["old"], event.detail["new"]) == (
            file_id,
            "public",
            "confidential",
        )
        assert event.detail["reason"] == "Names the holding facility"


def test_a_raised_field_disappears_from_the_public_page(app, people, secretariat):
    with app.app_context():
        record_id = make_record(
            type="rescue_centre",
            title="Coastal rescue centre",
            confidentiality={"level": "public", "fields": {"address": "public"}},
            details={
                "facility_type": "rescue_centre",
                "operator": "Operator",
                "city": "Town",
                "address": "12 Heron Lane, Marker Bay",
            },
        ).id
    anonymous = app.test_client()
    assert "12 Heron Lane" in _text(anonymous.get(f"/records/{record_id}"))
    review = _text(secretariat.get(f"/admin/records/{record_id}"))
    assert 'value="field:address"' in review and 'value="field:capacity"' not in review
    for bad in (
        {"target": "field:nonsense", "tier": "registered", "reason": "x"},
        {"target": "../x", "tier": "x"},
    ):
        assert _post(secretariat, f"/admin/records/{record_id}/tier", bad).status_code == 422
    response = _post(
        secretariat,
        f"/admin/records/{record_id}/tier",
        {"target": "field:address", "tier": "registered", "reason": "Private home of the keeper"},
    )
    assert response.status_code == 302
    page = _text(anonymous.get(f"/records/{record_id}"))
    assert "Coastal rescue centre" in page and "12 Heron Lane" not in page
    review = _text(secretariat.get(f"/admin/records/{record_id}"))
    # Only stricter tiers are offered now.
    form = review[
        review.index('value="field:address"') : review.index("</form>", review.index('value="field:address"'))
    ]
    assert (
        'value="confidential"' in form and 'value="registered"' not in form and 'value="public"' not in form
    )


# Trail, outbox and disclosures -----------------------------------------------------------------


def test_the_audit_trail_lists_events_filters_and_cannot_be_changed(app, people, secretariat):
    with app.app_context():
        za = submission(people["party"], title="ZA protocol")
        fr = submission(people["party_fr"], title="FR protocol")
    _post(secretariat, f"/admin/records/{za}/publish")
    page = _text(secretariat.get("/admin/audit"))
    assert page.count("<tr>") >= 5 and "Published" in page and "Submitted" in page
    assert people["secretariat"] in page and people["party_fr"] in page
    only_publish = _text(secretariat.get("/admin/audit?action=publish"))
    assert za in only_publish and fr not in only_publish
    only_fr = _text(secretariat.get("/admin/audit?party=FR"))
    assert fr in only_fr and za not in only_fr
    only_record = _text(secretariat.get(f"/admin/audit?record={fr}"))
    assert fr in only_record and za not in only_record
    for bad in ("action=drop", "record=1%20OR%201=1", "page=0", "page=abc", "party=%00"):
        response = secretariat.get(f"/admin/audit?{bad}")
        assert response.status_code == 400 and "Some filters were not understood" in _text(response), bad
    assert "No entry matches" in _text(secretariat.get("/admin/audit?page=999"))
    for method in ("post", "put", "patch", "delete"):
        assert getattr(secretariat, method)("/admin/audit").status_code in (400, 405), method
    writable = [
        rule
        for rule in app.url_map.iter_rules()
        if "audit" in rule.rule or "audit" in rule.endpoint
        if rule.methods - {"GET", "HEAD", "OPTIONS"}
    ]
    assert writable == []
    assert '<form method="post"' not in page.split("<main", 1)[1]


def test_the_outbox_shows_mail_newest_first_and_marks_failures(app, people, secretariat):
    with app.app_context():
        mail.send("first@test.example", "First message", "Body one <b>not bold</b>")
        commit()
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=9, MAIL_TIMEOUT=2)
        try:
            mail.send("second@test.example", "Second message", "Body two")
            commit()
        finally:
            app.config.update(MAIL_SERVER=None, MAIL_PORT=25)
    page = _text(secretariat.get("/admin/outbox"))
    assert page.index("Second message") < page.index("First message")
    assert "first@test.example" in page and "&lt;b&gt;not bold&lt;/b&gt;" in page
    second = page[page.index("Second message") : page.index("First message")]
    assert "Not sent" in second and "Not sent" not in page[page.index("First message") :]


def test_disclosures_due_lists_restricted_records_past_their_date(app, secretariat):
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    with app.app_context():
        due = make_record(
            title="Due for disclosure", confidentiality={"level": "registered", "disclosure_date": yesterday}
        ).id
        make_record(title="Not yet due", confidentiality={"level": "registered", "disclosure_date": tomorrow})
        make_record(title="Already public", confidentiality={"level": "public", "disclosure_date": yesterday})
    page = _text(secretariat.get("/admin/disclosures"))
    assert "Due for disclosure" in page and f"/admin/records/{due}" in page
    assert "Not yet due" not in page and "Already public" not in page


# Calls for information -------------------------------------------------------------------------

CALL = {
    "notification": "2021/008",
    "title_en": "Networks and resources for seized live animals",
    "title_fr": "Réseaux et ressources pour les animaux vivants saisis",
    "title_es": "Redes y recursos para los animales vivos decomisados",
    "opens_on": "2021-02-01",
    "deadline": "2021-06-30",
}


def test_a_call_with_a_deadline_before_its_opening_is_refused_with_the_input_kept(app, secretariat):
    response = _post(
        secretariat, "/admin/calls", {**CALL, "deadline": "2021-01-15"}, token_from="/admin/calls"
    )
    page = _text(response)
    assert response.status_code == 422
    assert 'id="c-deadline-error"' in page and "The deadline cannot be before the opening date." in page
    assert (
        'value="2021-01-15"' in page
        and 'value="Réseaux et ressources pour les animaux vivants saisis"' in page
    )
    with app.app_context():
        assert calls.list_calls(_user_secretariat()) == []


def _user_secretariat() -> User:
    return session.scalar(select(User).where(User.role == "secretariat"))


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"title_en": "x" * 501}, "title_en", "Must be at most 500 characters long."),
        ({"title_fr": "Appel\x00"}, "title_fr", "Contains control characters"),
        ({"title_es": "Línea\x07"}, "title_es", "Contains control characters"),
        ({"title_en": "two\nlines"}, "title_en", "Must be a single line."),
        ({"title_en": "   "}, "title_en", "Must not be empty."),
        ({"notification": "2021/8"}, "notification", "Use the form 2021/008."),
        ({"notification": "<script>"}, "notification", "Use the form 2021/008."),
        ({"opens_on": "2021-02-30"}, "opens_on", "Enter a date as YYYY-MM-DD."),
        ({"opens_on": "1900-01-01"}, "opens_on", "Enter a date between 1975 and 2100."),
        ({"deadline": ""}, "deadline", "Enter a date as YYYY-MM-DD."),
    ],
)
def test_hostile_call_forms_get_a_clear_answer(app, secretariat, changes, field, message):
    response = _post(secretariat, "/admin/calls", {**CALL, **changes}, token_from="/admin/calls")
    page = _text(response)
    assert response.status_code == 422, page
    errors = re.search(rf'<ul class="errors" id="c-{field}-error">(.*?)</ul>', page, re.S)
    assert errors and message in unescape(errors.group(1))
    assert "<script>" not in page.split("<main", 1)[1]


def test_a_call_with_markup_is_saved_as_text_and_shown_escaped(app, secretariat):
    title = '<img src=x onerror="alert(1)"> & co'
    response = _post(secretariat, "/admin/calls", {**CALL, "title_en": title}, token_from="/admin/calls")
    assert response.status_code == 302
    page = _text(secretariat.get(response.headers["Location"]))
    assert "Call 2021/008 is open." in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; co" in page
    listing = _text(secretariat.get("/admin/calls"))
    assert "&lt;img src=x" in listing and "<img src=x" not in listing
    duplicate = _post(secretariat, "/admin/calls", CALL, token_from="/admin/calls")
    assert duplicate.status_code == 422 and "There is already a call for this Notification." in _text(
        duplicate
    )
    unknown = _post(secretariat, "/admin/calls", {**CALL, "notification": "2022/001", "admin": "1"})
    assert unknown.status_code == 422 and "Unexpected fields: admin" in _text(unknown)
    with app.app_context():
        (created,) = _events("call_created")
        assert created.detail["notification"] == "2021/008"


@pytest.mark.parametrize(
    "url",
    [
        "/admin/records/" + "r" * 500,
        "/admin/records/%00",
        "/admin/records/rzzzzzzzzzzzz",
        "/admin/records/RZZZZZZZZZZZZ",
        "/admin/records/..%2F..%2Fetc%2Fpasswd",
        "/admin/records/<script>",
    ],
)
def test_a_record_id_that_is_not_one_is_missing(secretariat, url):
    assert secretariat.get(url).status_code == 404
    assert _post(secretariat, url + "/publish").status_code == 404
    assert _post(secretariat, url + "/return", {"comment": "x"}).status_code == 404


def test_a_call_unknown_or_out_of_range_is_missing(secretariat):
    for call_id in ("1", "0", "99999999999999999999999"):
        assert secretariat.get(f"/admin/calls/{call_id}").status_code == 404, call_id
    assert _post(secretariat, "/admin/calls/1/remind").status_code == 404


@pytest.fixture
def open_call(app, people):
    """A call that opened today: ZA has submitted, FR has a draft, MX and KE have nothing new."""
    with app.app_context():
        secretariat = _user(people["secretariat"])
        call = calls.create_call(
            secretariat, {**CALL, "opens_on": dt.date.today().isoformat(), "deadline": "2100-01-01"}
        )
        submission(people["party"], title="ZA answers")
        workflow.create_record(_user(people["party_fr"]), record_data(party="FR"), [], _files_dir())
        old = make_record(party="KE", title="Published long ago")
        old.published_at = dt.datetime(2019, 1, 1)
        stale = workflow.create_record(_user(people["party_mx"]), record_data(party="MX"), [], _files_dir())
        commit()
        session.execute(
            Record.__table__.update()
            .where(Record.id == stale.id)
            .values(created_at=dt.datetime(2019, 1, 1), updated_at=dt.datetime(2019, 1, 1))
        )
        commit()
        return call.id


def test_party_statuses_are_derived_from_their_records(app, people, open_call, secretariat):
    with app.app_context():
        statuses = dict(
            (party.iso, status)
            for party, status in calls.party_statuses(
                _user(people["secretariat"]), session.get(Call, open_call)
            )
        )
    assert statuses["ZA"] == "submitted"
    assert statuses["FR"] == "in_progress"
    assert statuses["MX"] == statuses["KE"] == statuses["BR"] == "not_started"
    page = _text(secretariat.get(f"/admin/calls/{open_call}"))
    africa = re.search(r'<a href="#region-africa">Africa</a></th>\s*(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r'<td class="num">(\d+)</td>', africa)[:2] == ["1", "0"]
    europe = re.search(r'<a href="#region-europe">Europe</a></th>\s*(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r'<td class="num">(\d+)</td>', europe)[:2] == ["0", "1"]
    with app.app_context():
        with pytest.raises(Forbidden):
            calls.party_statuses(_user(people["reader"]), session.get(Call, open_call))


def test_reminders_go_only_to_parties_that_have_not_answered(app, people, open_call, secretariat):
    response = _post(secretariat, f"/admin/calls/{open_call}/remind", token_from=f"/admin/calls/{open_call}")
    assert response.status_code == 302
    assert "2 reminders sent." in _text(secretariat.get(response.headers["Location"]))
    with app.app_context():
        assert _outbox_to("Reminder:") == sorted([people["party_fr"], people["party_mx"]])
        (event,) = _events("reminder_sent")
        assert sorted(event.detail["parties"]) == ["FR", "MX"]
        assert event.detail["call"] == open_call and event.detail["emails"] == 2
    outbox = _text(secretariat.get("/admin/outbox"))
    assert "Reminder: call for information 2021/008" in outbox


def test_a_tier_raised_while_a_revision_waits_survives_its_publication(app, people, secretariat):
    with app.app_context():
        record = make_record(
            type="rescue_centre",
            title="Inland rescue centre",
            confidentiality={"level": "public", "fields": {"address": "public"}},
            details={
                "facility_type": "rescue_centre",
                "operator": "Op",
                "city": "Town",
                "address": "1 Kite Road",
            },
            files=[{"path": "files/a.pdf", "language": "en", "tier": "public", "text": "Intake form"}],
        )
        record_id, file_id = record.id, record.files[0].id
        user = _user(people["party"])
        data = {**workflow.record_shape(record), "title": "Inland rescue centre (2024)"}
        files = [workflow.FileEntry(language="en", tier="public", file_id=file_id)]
        data.pop("files")
        workflow.save_record(user, record, data, files, _files_dir())
        workflow.submit(user, record)
        commit()
    for target in (f"file:{file_id}", "field:address", "record"):
        response = _post(
            secretariat,
            f"/admin/records/{record_id}/tier",
            {"target": target, "tier": "registered", "reason": "Sensitive location"},
        )
        assert response.status_code == 302, target
    review = _text(secretariat.get(f"/admin/records/{record_id}"))
    assert list(_diff_rows(review)) == ["Title"]
    assert _post(secretariat, f"/admin/records/{record_id}/publish").status_code == 302
    with app.app_context():
        record = session.get(Record, record_id)
        assert record.title == "Inland rescue centre (2024)"
        assert (record.tier, record.field_tiers["address"], record.files[0].tier) == ("registered",) * 3
    anonymous = app.test_client()
    assert _status(anonymous, f"/records/{record_id}") == 404
    assert _status(anonymous, f"/files/{file_id}") == 404
