"""The Secretariat's desk: hidden from everyone else; queue, review decisions, tiers, trail, outbox, calls."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from registry import mail
from registry.db import commit, session
from registry.errors import Forbidden
from registry.models import AuditEvent, Call, File, Record, RecordVersion, User
from registry.services import calls
from registry.services.records import history, review, shape, write

from .conftest import csrf_token, login, without_csrf
from .factories import PASSWORD, make_record, record_data

HIDDEN_FROM = ("anonymous", "reader", "enforcement", "party")
MISSING = "/records/rzzzzzzzzzzzz"


def _user(email: str) -> User:
    return session.scalar(select(User).where(User.email == email))


def _files_dir() -> Path:
    return Path(current_app.config["FILES_DIR"])


def submission(party_email: str, **overrides) -> str:
    """A new record that the Party of ``party_email`` submitted (inside an app context); its id."""
    user = _user(party_email)
    data = record_data(party=user.party_iso, **overrides)
    record = write.create_record(user, data, [], _files_dir())
    review.submit(user, record)
    commit()
    return record.id


def revision(party_email: str, record_id: str, **changes) -> None:
    """The Party's submitted revision of its published record ``record_id`` with ``changes``."""
    user = _user(party_email)
    record = session.get(Record, record_id)
    data = {**shape.record_shape(record), **changes}
    data.pop("files")
    write.save_record(user, record, data, [], _files_dir())
    review.submit(user, record)
    commit()


def _signed_in(app, email: str | None):
    client = app.test_client()
    if email is not None:
        assert login(client, email, PASSWORD).status_code == 302
    return client


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
        draft = write.create_record(
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
        numbers = [v.number for v in history.versions(_user(people["secretariat"]), record)]
    # An imported record was published as one published on the desk is: with its kept version.
    assert numbers == [2, 1]


# Marking confidential --------------------------------------------------------------------------


def test_a_raised_file_is_gone_for_the_public_at_once(app, people, secretariat):
    with app.app_context():
        record = make_record(
            files=[{"path": "files/a.pdf", "language": "en", "tier": "public", "text": "Quarantine steps"}]
        )
        record_id, file_id = record.id, record.files[0].id
    anonymous = app.test_client()
    with anonymous.get(f"/files/{file_id}") as first:
        assert first.status_code == 200
        # A browser's copy is revalidated on every use, so that it too learns of a raise at once.
        assert first.headers["Cache-Control"] == "private, no-cache" and first.headers["ETag"]
    review = _text(secretariat.get(f"/admin/records/{record_id}"))
    assert f'value="file:{file_id}"' in review
    refused = _post(
        secretariat,
        f"/admin/records/{record_id}/tier",
        {"target": f"file:{file_id}", "tier": "public", "reason": "x"},
    )
    assert refused.status_code == 422 and "This is its tier already." in _text(refused)
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
    assert 'value="field:address"' in review
    # The capacity is at the strictest tier already: it may only become more open.
    capacity = review[review.index('value="field:capacity"') :]
    capacity = capacity[: capacity.index("</form>")]
    assert '<optgroup label="Stricter">' not in capacity and '<optgroup label="More open">' in capacity
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
    # Stricter tiers are offered apart from more open ones; the current one is not offered.
    form = review[
        review.index('value="field:address"') : review.index("</form>", review.index('value="field:address"'))
    ]
    stricter, more_open = form.split('<optgroup label="More open">')
    assert 'value="confidential"' in stricter and 'value="public"' in more_open
    assert 'value="registered"' not in form and 'value="public"' not in stricter


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
    # The queue says how often it tried, when it tries next, and what went wrong.
    assert "Tried 1 time." in second and "Next try:" in second and "Connection" in second


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
        write.create_record(_user(people["party_fr"]), record_data(party="FR"), [], _files_dir())
        old = make_record(party="KE", title="Published long ago")
        old.published_at = dt.datetime(2019, 1, 1)
        stale = write.create_record(_user(people["party_mx"]), record_data(party="MX"), [], _files_dir())
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
        data = {**shape.record_shape(record), "title": "Inland rescue centre (2024)"}
        files = [write.FileEntry(language="en", tier="public", file_id=file_id)]
        data.pop("files")
        write.save_record(user, record, data, files, _files_dir())
        review.submit(user, record)
        commit()
    for target in (f"file:{file_id}", "field:address", "record"):
        response = _post(
            secretariat,
            f"/admin/records/{record_id}/tier",
            {"target": target, "tier": "registered", "reason": "Sensitive location"},
        )
        assert response.status_code == 302, target
    review_page = _text(secretariat.get(f"/admin/records/{record_id}"))
    assert list(_diff_rows(review_page)) == ["Title"]
    assert _post(secretariat, f"/admin/records/{record_id}/publish").status_code == 302
    with app.app_context():
        record = session.get(Record, record_id)
        assert record.title == "Inland rescue centre (2024)"
        assert (record.tier, record.field_tiers["address"], record.files[0].tier) == ("registered",) * 3
    anonymous = app.test_client()
    assert _status(anonymous, f"/records/{record_id}") == 404
    assert _status(anonymous, f"/files/{file_id}") == 404


# A revision made through the form -----------------------------------------------------------------


class _FormFields(HTMLParser):
    """What a browser sends for a page's record form when the user chooses no file."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self._in_form = False
        self._textarea: str | None = None
        self._text = ""
        self._select: dict | None = None

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        a = dict(attrs)
        if tag == "form" and "record-form" in (a.get("class") or ""):
            self._in_form = True
        if not self._in_form:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("file", "submit"):
            if a.get("type") != "checkbox" or "checked" in a:
                self.fields.append((name, a.get("value") or ""))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""
        elif tag == "select" and name:
            self._select = {"name": name, "multiple": "multiple" in a, "first": None, "chosen": []}
        elif tag == "option" and self._select is not None:
            if self._select["first"] is None:
                self._select["first"] = a.get("value") or ""
            if "selected" in a:
                self._select["chosen"].append(a.get("value") or "")

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag == "form":
            self._in_form = False
        elif tag == "textarea" and self._textarea is not None:
            # Browsers drop the line break that follows <textarea>.
            self.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            chosen = self._select["chosen"]
            if not chosen and not self._select["multiple"] and self._select["first"] is not None:
                chosen = [self._select["first"]]
            self.fields.extend((self._select["name"], value) for value in chosen)
            self._select = None


def _form_fields(page: str) -> list[tuple[str, str]]:
    parser = _FormFields()
    parser.feed(page)
    return parser.fields


CENTRE_DETAILS = {
    "facility_type": "rescue_centre",
    "operator": "Coastal Trust",
    "city": "Port Town",
    "subnational_region": "Western Cape",
    "address": "3 Heron Lane",
    "latitude": -33.9258,
    "longitude": 18.4232,
    "capacity": 120,
    "contacts": [{"name": "Dr Naidoo", "function": "Vet", "email": "vet@centre.example", "phone": "+27 21"}],
    "accreditations": ["PAAZA"],
    "services": ["quarantine", "rehabilitation"],
}


@pytest.mark.parametrize("record_type", ["protocol", "rescue_centre"])
def test_a_revision_made_through_the_form_shows_only_what_changed(app, people, secretariat, record_type):
    with app.app_context():
        record = make_record(
            type=record_type,
            title="Holding seized parrots",
            issuing_bodies=["Wildlife Authority"],
            date="2022-03-01",
            translations=[{"language": "fr", "title": "Garde des perroquets saisis", "summary": "Comment."}],
            confidentiality={"level": "public", "rule": "Section 4", "justification": "personal_data"}
            if record_type == "protocol"
            else {"level": "public", "fields": {"address": "registered", "capacity": "public"}},
            details=CENTRE_DETAILS
            if record_type == "rescue_centre"
            else {"responsible_agency": "Customs", "stages": ["seizure"], "procedures": "Isolate.\nFeed."},
            files=[{"path": "files/a.pdf", "language": "en", "tier": "public", "text": "Steps"}],
        )
        record_id = record.id
    party = _signed_in(app, people["party"])
    fields = _form_fields(_text(party.get(f"/submit/{record_id}")))
    assert ("title", "Holding seized parrots") in fields
    sent = [(name, "Holding and feeding seized parrots" if name == "title" else v) for name, v in fields]
    response = party.post(f"/submit/{record_id}", data=MultiDict([*sent, ("action", "submit")]))
    assert response.status_code == 302, _text(response)
    rows = _diff_rows(_text(secretariat.get(f"/admin/records/{record_id}")))
    assert list(rows) == ["Title"]


# Tier changes in the trail -------------------------------------------------------------------------


def _tier_events() -> list[tuple[str | None, str | None, str, str, str]]:
    """The tier changes of the trail as (file id, field, old, new, reason), oldest first."""
    return [
        (e.file_id, e.detail.get("field"), e.detail["old"], e.detail["new"], e.detail["reason"])
        for e in _events("tier_change")
    ]


def _edit(viewer: User, record: Record, tiers: dict[str, str], **changes) -> None:
    """Save ``record`` as ``viewer`` with its files' tiers (by id) and ``changes`` to its shape."""
    shaped = shape.working_shape(record)
    files = [
        write.FileEntry(f["language"], tiers.get(f["id"], f["tier"]), f["title"], file_id=f["id"])
        for f in shaped["files"]
    ]
    data = {key: value for key, value in shaped.items() if key != "files"}
    write.save_record(viewer, record, {**data, **changes}, files, _files_dir())


TWO_FILES = [
    {"path": "files/steps.pdf", "language": "en", "tier": "public", "text": "Quarantine steps"},
    {"path": "files/annex.pdf", "language": "en", "tier": "public", "text": "Annex of holding pens"},
]


def test_a_file_tier_changed_by_an_edit_or_a_revision_is_in_the_trail(app, people):
    with app.app_context():
        record = make_record(title="Quarantine of seized parrots", files=TWO_FILES)
        steps, annex = (f.id for f in record.files)
        # The Secretariat's edit may raise tiers without more ado.
        _edit(
            _user(people["secretariat"]),
            record,
            {steps: "registered"},
            confidentiality={"level": "registered"},
        )
        commit()
        assert _tier_events() == [
            (None, None, "public", "registered", ""),
            (steps, None, "public", "registered", ""),
        ]
        party = _user(people["party"])
        _edit(party, record, {annex: "confidential"}, title="Quarantine of seized parrots (2024)")
        review.submit(party, record)
        commit()
        # The revision changes nothing until it is published.
        assert len(_tier_events()) == 2 and session.get(File, annex).tier == "public"
        review.publish(_user(people["secretariat"]), record, _files_dir())
        commit()
        assert _tier_events()[2:] == [(annex, None, "public", "confidential", "published revision")]
        # A Party lowers the tiers of its own draft freely: that is its statement, and in the trail.
        draft = write.create_record(
            party,
            record_data(party="ZA", confidentiality={"level": "confidential"}),
            [write.FileEntry("en", "confidential", upload=_stage("draft"))],
            _files_dir(),
        )
        commit()
        (attached,) = draft.files
        _edit(party, draft, {attached.id: "public"}, confidentiality={"level": "public"})
        commit()
        assert (draft.tier, attached.tier) == ("public", "public")
        assert _tier_events()[3:] == [
            (None, None, "confidential", "public", ""),
            (attached.id, None, "confidential", "public", ""),
        ]


# Lowering a tier ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "field", "message"),
    [
        (
            "record",
            "confidentiality-level",
            "This record would become more open (Confidential → Registered users)",
        ),
        ("field", "confidentiality-fields-address", "Address would become more open (Confidential → Public)"),
        ("file", "file-0-tier", "annex.pdf would become more open (Confidential → Public)"),
    ],
)
def test_the_secretariat_cannot_lower_a_tier_in_its_edit(app, people, secretariat, part, field, message):
    with app.app_context():
        record = make_record(
            type="rescue_centre",
            title="Inland rescue centre",
            confidentiality={"level": "confidential", "fields": {"address": "confidential"}},
            details=CENTRE_DETAILS,
            files=[{"path": "files/annex.pdf", "language": "en", "tier": "confidential", "text": "Pens"}],
        )
        record_id = record.id
    page = _text(secretariat.get(f"/submit/{record_id}"))
    fields = _form_fields(page)
    lowered = {
        "record": ("confidentiality.level", "registered"),
        "field": ("confidentiality.fields.address", "public"),
        "file": ("file.0.tier", "public"),
    }[part]
    sent = [
        (n, lowered[1] if n == lowered[0] else "Renamed centre" if n == "title" else v) for n, v in fields
    ]
    response = secretariat.post(f"/submit/{record_id}", data=MultiDict([*sent, ("action", "save")]))
    body = unescape(_text(response))
    assert response.status_code == 422
    assert message in body and "The Secretariat does that on the review page, with a reason." in body
    # The message stands in the part of the form that holds the field; what was typed is still there.
    control = body.index(f'id="{field}"')
    assert message in body[body.rindex("<fieldset", 0, control) : body.index("</fieldset>", control)]
    assert 'value="Renamed centre"' in body
    with app.app_context():
        record = session.get(Record, record_id)
        assert (record.title, record.tier, record.field_tiers["address"], record.files[0].tier) == (
            "Inland rescue centre",
            "confidential",
            "confidential",
            "confidential",
        )
        assert not _events("tier_change") and not _events("edit")


def test_the_desk_lowers_a_tier_only_with_a_reason_and_within_its_record(app, people, secretariat):
    with app.app_context():
        record = make_record(
            type="rescue_centre",
            title="Inland rescue centre",
            confidentiality={"level": "registered", "fields": {"address": "confidential"}},
            details=CENTRE_DETAILS,
            files=[{"path": "files/annex.pdf", "language": "en", "tier": "confidential", "text": "Pens"}],
        )
        record_id, file_id = record.id, record.files[0].id
    review = _text(secretariat.get(f"/admin/records/{record_id}"))
    record_form = review[
        review.index('value="record"') : review.index("</form>", review.index('value="record"'))
    ]
    assert '<optgroup label="More open">' in record_form and 'value="public"' in record_form
    # A file is never offered a tier more open than its record's.
    file_form = review[
        review.index(f'value="file:{file_id}"') : review.index(
            "</form>", review.index(f'value="file:{file_id}"')
        )
    ]
    assert 'value="registered"' in file_form and 'value="public"' not in file_form
    url = f"/admin/records/{record_id}/tier"
    without = _post(secretariat, url, {"target": f"file:{file_id}", "tier": "registered", "reason": " "})
    assert without.status_code == 422 and "Must not be empty." in _text(without)
    below = _post(secretariat, url, {"target": f"file:{file_id}", "tier": "public", "reason": "Agreed"})
    assert below.status_code == 422 and "A part is never more open than its record" in unescape(_text(below))
    with app.app_context():
        assert session.get(File, file_id).tier == "confidential" and not _events("tier_change")
    reader = _signed_in(app, people["reader"])
    assert _status(reader, f"/files/{file_id}") == 404
    done = _post(
        secretariat, url, {"target": f"file:{file_id}", "tier": "registered", "reason": "The Party agreed"}
    )
    assert done.status_code == 302
    assert "The tier is lowered." in _text(secretariat.get(done.headers["Location"]))
    assert _status(reader, f"/files/{file_id}") == 200
    field = _post(secretariat, url, {"target": "field:address", "tier": "registered", "reason": "Now listed"})
    assert field.status_code == 302
    assert "3 Heron Lane" in _text(reader.get(f"/records/{record_id}"))
    whole = _post(secretariat, url, {"target": "record", "tier": "public", "reason": "Adopted in 2024"})
    assert whole.status_code == 302
    assert app.test_client().get(f"/records/{record_id}").status_code == 200
    with app.app_context():
        assert _tier_events() == [
            (file_id, None, "confidential", "registered", "The Party agreed"),
            (None, "address", "confidential", "registered", "Now listed"),
            (None, None, "registered", "public", "Adopted in 2024"),
        ]
        record = session.get(Record, record_id)
        # The strictest tier it ever had stays with its old versions and translations.
        assert (record.tier, record.peak_tier) == ("public", "registered")


def test_a_revision_that_lowers_a_tier_is_published_only_with_a_reason(app, people, secretariat):
    with app.app_context():
        record = make_record(
            title="Placement agreement",
            confidentiality={"level": "confidential"},
            files=[{"path": "files/annex.pdf", "language": "en", "tier": "confidential", "text": "Terms"}],
        )
        record_id, file_id = record.id, record.files[0].id
        party = _user(people["party"])
        _edit(party, record, {file_id: "registered"}, confidentiality={"level": "registered"})
        review.submit(party, record)
        commit()
    review_page = _text(secretariat.get(f"/admin/records/{record_id}"))
    start = review_page.index('id="lowers"')
    warning = review_page[start : review_page.index("</div>", start)]
    assert "Publishing makes these parts more open" in warning and "(as published now)" in warning
    assert "The whole record" in warning and "Document: annex.pdf" in warning
    assert 'name="reason"' in review_page[review_page.index('id="lowers"') : review_page.index("/return")]
    refused = _post(secretariat, f"/admin/records/{record_id}/publish", {"reason": ""})
    assert refused.status_code == 422
    assert 'id="publish-reason-error"' in _text(refused) and "give the reason" in _text(refused)
    hostile = _post(secretariat, f"/admin/records/{record_id}/publish", {"reason": "Fine\x00"})
    assert hostile.status_code == 422 and "Contains control characters" in _text(hostile)
    with app.app_context():
        record = session.get(Record, record_id)
        assert (record.tier, record.revision_status) == ("confidential", "submitted")
    published = _post(
        secretariat, f"/admin/records/{record_id}/publish", {"reason": "The Party lifted the embargo"}
    )
    assert published.status_code == 302
    with app.app_context():
        record = session.get(Record, record_id)
        assert (record.tier, record.files[0].tier, record.peak_tier) == (
            "registered",
            "registered",
            "confidential",
        )
        assert _tier_events() == [
            (None, None, "confidential", "registered", "The Party lifted the embargo"),
            (file_id, None, "confidential", "registered", "The Party lifted the embargo"),
        ]


# Old versions keep their files -------------------------------------------------------------------


def test_a_file_dropped_by_a_revision_stays_with_the_old_version_for_its_keepers(app, people, secretariat):
    with app.app_context():
        record_id = submission(people["party"], title="Holding seized parrots")
    assert _post(secretariat, f"/admin/records/{record_id}/publish").status_code == 302
    with app.app_context():
        party, desk = _user(people["party"]), _user(people["secretariat"])
        record = session.get(Record, record_id)
        staged = [_stage(name) for name in ("steps", "annex")]
        _edit_files(party, record, [write.FileEntry("en", "public", upload=s) for s in staged])
        review.submit(party, record)
        review.publish(desk, record, _files_dir())
        commit()
        ids = {f.original_name: f.id for f in record.files}
        steps, annex = ids["steps.pdf"], ids["annex.pdf"]
        kept = session.get(File, annex).stored_name
        # The next revision drops the annex, and an upload of its own that no version ever listed.
        kept_steps = write.FileEntry("en", "public", file_id=steps)
        _edit_files(party, record, [kept_steps, write.FileEntry("en", "public", upload=_stage("draft"))])
        commit()
        (draft,) = [f for f in record.files if f.pending]
        draft_id, dropped = draft.id, draft.stored_name
        _edit_files(party, record, [kept_steps])
        review.submit(party, record)
        review.publish(desk, record, _files_dir())
        commit()
        assert [f.id for f in record.files] == [steps]
        assert session.get(File, annex).retired and (_files_dir() / kept).is_file()
        assert session.get(File, draft_id) is None and not (_files_dir() / dropped).exists()
        listed = {v.number: [f["id"] for f in v.payload["files"]] for v in record_versions(record_id)}
        assert {n: sorted(files) for n, files in listed.items()} == {
            1: [],
            2: sorted([steps, annex]),
            3: [steps],
        }
    # The public page and its downloads forget it; the record's keepers read it in the history.
    assert annex not in _text(app.test_client().get(f"/records/{record_id}"))
    for email in (None, people["reader"], people["enforcement"], people["party_fr"]):
        assert _status(_signed_in(app, email), f"/files/{annex}") == 404, email
    own = _signed_in(app, people["party"])
    history = _text(own.get(f"/submit/{record_id}/history"))
    assert f'href="/files/{annex}"' in history
    for client in (own, secretariat):
        assert _status(client, f"/files/{annex}") == 200
    assert f"/submit/{record_id}/history" in _text(secretariat.get(f"/admin/records/{record_id}"))


def test_a_partys_own_pending_file_is_sent_no_store_and_its_download_audited(app, people, secretariat):
    """A public file added in a revision of a published record waits for publication: its Party may
    download it, but it is not open to all, so it is sent no-store and audited like any non-public file
    (issue 12, item 5: the view once re-derived "open to all" and forgot the pending revision)."""
    with app.app_context():
        record_id = submission(people["party"], title="Holding seized tortoises")
    assert _post(secretariat, f"/admin/records/{record_id}/publish").status_code == 302
    with app.app_context():
        party = _user(people["party"])
        record = session.get(Record, record_id)
        _edit_files(party, record, [write.FileEntry("en", "public", upload=_stage("waiting"))])
        commit()
        (pending,) = [f.id for f in record.files if f.pending]
        before = len(_events("download"))
    assert _status(app.test_client(), f"/files/{pending}") == 404
    with _signed_in(app, people["party"]).get(f"/files/{pending}") as answer:
        assert answer.status_code == 200
        assert answer.headers["Cache-Control"] == "private, no-store"
    with app.app_context():
        events = _events("download")
        assert len(events) == before + 1 and events[-1].file_id == pending


def _stage(word: str):
    """A real PDF stored as an accepted upload."""
    from registry import storage, uploads
    from seed.documents import write_pdf

    path = _files_dir().parent / f"{word}.pdf"
    write_pdf(path, "Annex", f"Annex {word}")
    with path.open("rb") as handle:
        stored = storage.store(_files_dir(), handle, current_app.config["MAX_FILE_SIZE"])
    # Its text extracted as an accepted upload's is, before the workflow writes anything.
    staged = uploads.Staged(
        stored_name=stored.stored_name,
        original_name=f"{word}.pdf",
        size=stored.size,
        sha256=stored.sha256,
        media_type=stored.media_type,
    )
    return uploads.with_text(staged, _files_dir())


def _edit_files(viewer: User, record: Record, files: list[write.FileEntry]) -> None:
    shaped = shape.working_shape(record)
    write.save_record(
        viewer, record, {k: v for k, v in shaped.items() if k != "files"}, files, _files_dir()
    )


def record_versions(record_id: str) -> list[RecordVersion]:
    return list(
        session.scalars(
            select(RecordVersion).where(RecordVersion.record_id == record_id).order_by(RecordVersion.number)
        )
    )


# A Party withdraws from its own pages ------------------------------------------------------------


def test_a_party_withdraws_a_draft_returned_or_submitted_record_from_its_start_page(app, people, secretariat):
    with app.app_context():
        party = _user(people["party"])
        draft = write.create_record(party, record_data(party="ZA", title="Unsent draft"), [], _files_dir())
        commit()
        draft_id = draft.id
        returned = submission(people["party"], title="Returned protocol")
        review.return_to_party(_user(people["secretariat"]), session.get(Record, returned), "Add the date.")
        commit()
        waiting = submission(people["party"], title="Waiting protocol")
        published = make_record(title="Published protocol").id
    own = _signed_in(app, people["party"])
    home = _text(own.get("/submit/"))
    for record_id in (draft_id, returned, waiting):
        assert f'action="/submit/{record_id}/withdraw"' in home, record_id
    assert f'action="/submit/{published}/withdraw"' not in home
    for record_id in (draft_id, returned, waiting):
        response = _post(
            own, f"/submit/{record_id}/withdraw", {"reason": "Superseded"}, token_from="/submit/"
        )
        assert response.status_code == 302 and response.headers["Location"].endswith("/submit/")
    home = _text(own.get("/submit/"))
    assert "/withdraw" not in home and home.count("Withdrawn") >= 3
    with app.app_context():
        assert {session.get(Record, i).status for i in (draft_id, returned, waiting)} == {"withdrawn"}
        assert session.get(Record, published).status == "published"
        assert [e.detail["reason"] for e in _events("withdraw")] == ["Superseded"] * 3
    assert waiting not in _text(secretariat.get("/admin/"))


# Disclosures of restricted parts -----------------------------------------------------------------


def test_disclosures_due_list_public_records_with_restricted_files_or_fields(app, secretariat):
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    with app.app_context():
        with_file = make_record(
            title="Public protocol with a confidential annex",
            confidentiality={"level": "public", "disclosure_date": yesterday},
            files=[
                {"path": "files/open.pdf", "language": "en", "tier": "public", "text": "Open"},
                {"path": "files/annex.pdf", "language": "en", "tier": "confidential", "text": "Pens"},
            ],
        ).id
        centre = make_record(
            type="rescue_centre",
            title="Public centre with a registered address",
            confidentiality={
                "level": "public",
                "disclosure_date": yesterday,
                "fields": {
                    "address": "registered",
                    "coordinates": "public",
                    "capacity": "public",
                    "contacts": "public",
                },
            },
            details=CENTRE_DETAILS,
        ).id
        make_record(
            title="Public with nothing restricted",
            confidentiality={"level": "public", "disclosure_date": yesterday},
            files=[{"path": "files/open.pdf", "language": "en", "tier": "public", "text": "Open"}],
        )
    page = _text(secretariat.get("/admin/disclosures"))
    assert f"/admin/records/{with_file}" in page and f"/admin/records/{centre}" in page
    assert "Public with nothing restricted" not in page
    row = page[
        page.index(f"/admin/records/{with_file}") : page.index(
            "</tr>", page.index(f"/admin/records/{with_file}")
        )
    ]
    assert "Document: annex.pdf" in row and "open.pdf" not in row and "The whole record" not in row
    row = page[
        page.index(f"/admin/records/{centre}") : page.index("</tr>", page.index(f"/admin/records/{centre}"))
    ]
    assert "Field: Address" in row and "Coordinates" not in row


# Calls: a returned submission is work in progress ------------------------------------------------


def test_a_party_whose_submission_was_returned_is_in_progress_and_reminded(app, people, secretariat):
    with app.app_context():
        desk = _user(people["secretariat"])
        call = calls.create_call(
            desk, {**CALL, "opens_on": dt.date.today().isoformat(), "deadline": "2100-01-01"}
        )
        returned = submission(people["party_fr"], title="Protocole renvoyé")
        review.return_to_party(desk, session.get(Record, returned), "Ajoutez la date.")
        withdrawn = submission(people["party_mx"], title="Protocolo retirado")
        review.publish(desk, session.get(Record, withdrawn), _files_dir())
        review.withdraw(desk, session.get(Record, withdrawn), "Duplicate")
        submission(people["party"], title="ZA answers")
        commit()
        statuses = {p.iso: s for p, s in calls.party_statuses(desk, call)}
        assert (statuses["FR"], statuses["ZA"]) == ("in_progress", "submitted")
        assert statuses["MX"] != "submitted"
        call_id = call.id
    response = _post(secretariat, f"/admin/calls/{call_id}/remind", token_from=f"/admin/calls/{call_id}")
    assert response.status_code == 302
    with app.app_context():
        assert people["party_fr"] in _outbox_to("Reminder:") and people["party"] not in _outbox_to(
            "Reminder:"
        )
        review.submit(_user(people["party_fr"]), session.get(Record, returned))
        commit()
        statuses = {
            p.iso: s
            for p, s in calls.party_statuses(_user(people["secretariat"]), session.get(Call, call_id))
        }
        assert statuses["FR"] == "submitted"
