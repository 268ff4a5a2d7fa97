"""Access requests: the public form, the e-mail confirmation, the Secretariat's decision, retention.

Most tests run on SQLite only (the module's ``backend``); those whose queries do more than read and
write one row (the desk's lists, the acceptance, the retention) run on both backends.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from registry import clock, mail
from registry.db import session
from registry.models import AccessRequest, AuditEvent, User

from .conftest import BACKENDS, csrf_token, login
from .factories import PASSWORD, make_user

VALID = {
    "country": "KE",
    "family_name": "Wanjiru",
    "given_name": "Achieng",
    "organisation": "Kenya Wildlife Service",
    "organisation_type": "other_enforcement",
    "function": "Senior investigator",
    "phone": "+254 20 237 9407",
    "email": "a.wanjiru@kws.example",
    "role": "enforcement",
    "justification": "I investigate live-parrot smuggling through Jomo Kenyatta airport.",
    "consent": "yes",
}
VERIFY_LINK = re.compile(r"https?://\S+/access-request/verify/\S+")
SET_PASSWORD_LINK = re.compile(r"https?://\S+/password/\S+")


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite, unless a test asks for both backends by parametrizing ``backend`` itself."""
    return request.param


@pytest.fixture(autouse=True)
def _outbox(app):  # type: ignore[no-untyped-def]
    # Messages land in the outbox folder, whatever the environment says.
    app.config.update(MAIL_SERVER=None)


@pytest.fixture
def people(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Only the accounts these tests use (each costs a password hash): a Secretariat user and a reader."""
    with app.app_context():
        return {role: make_user(role).email for role in ("secretariat", "reader")}


def sign_in_staff(app, email: str):  # type: ignore[no-untyped-def]
    """A client signed in as the Secretariat user ``email`` (password and second factor)."""
    client = app.test_client()
    assert login(client, email, PASSWORD).status_code == 302
    return client


@pytest.fixture
def secretariat(app, people):  # type: ignore[no-untyped-def]
    """A client signed in as the Secretariat."""
    return sign_in_staff(app, people["secretariat"])


class MovedClock:
    """``registry.clock.utcnow``, moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = clock.utcnow()
        monkeypatch.setattr(clock, "utcnow", lambda: self.now)

    def advance(self, **delta: float) -> None:
        """Move the clock forward by ``delta`` (timedelta's arguments)."""
        self.now += dt.timedelta(**delta)


def send_request(client, **overrides: str):  # type: ignore[no-untyped-def]
    """Post the public form (``VALID`` with ``overrides``; a value of None leaves the field out)."""
    data = {**VALID, **overrides, "csrf_token": csrf_token(client, "/access-request")}
    return client.post("/access-request", data={k: v for k, v in data.items() if v is not None})


def mails(app, to: str | None = None) -> list[mail.OutboxMessage]:  # type: ignore[no-untyped-def]
    """The messages of the outbox (to ``to`` only, if given), oldest first."""
    with app.app_context():
        found = list(reversed(mail.outbox()))
    return [m for m in found if to is None or m.to == to]


def link_in(message: mail.OutboxMessage, pattern: re.Pattern[str] = VERIFY_LINK) -> str:
    """The path of the link of ``pattern`` in ``message``."""
    match = pattern.search(message.body)
    assert match, message.body
    return urlsplit(match.group(0)).path


def requests_in_db(app) -> list[AccessRequest]:  # type: ignore[no-untyped-def]
    with app.app_context():
        return list(session.scalars(select(AccessRequest).order_by(AccessRequest.id)))


def confirmed_request(app, client, **overrides: str) -> AccessRequest:  # type: ignore[no-untyped-def]
    """Send a request and follow its confirmation link: a request waiting for the Secretariat."""
    email = overrides.get("email", VALID["email"])
    assert send_request(client, **overrides).status_code == 303
    assert client.get(link_in(mails(app, email)[-1])).status_code == 200
    return next(r for r in requests_in_db(app) if r.email == email)


def test_a_form_with_errors_comes_back_with_every_value_and_a_summary(app, client):
    typed = {**VALID, "phone": "call me", "email": "not-an-address", "family_name": "", "consent": None}
    response = send_request(client, **typed)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    summary = html[html.index('class="error-summary"') : html.index("<form")]
    for name in ("phone", "email", "family_name", "consent"):
        assert f'href="#{name}"' in summary
        assert f'id="{name}"' in html and f'id="{name}-error"' in html
    assert html.count('aria-invalid="true"') == 4
    # Every value comes back as typed, the choices still chosen.
    for name in ("given_name", "organisation", "function", "phone", "email"):
        assert f'value="{typed[name]}"' in html
    assert typed["justification"] in html
    assert '<option value="KE" selected>' in html
    assert '<option value="other_enforcement" selected>' in html
    assert '<option value="enforcement" selected>' in html
    assert "Tick the box to consent" in html
    assert requests_in_db(app) == [] and mails(app) == []


@pytest.mark.parametrize("email", ['"a,b"@kws.example', "a@[192.0.2.1]", "two@kws.example three@kws.example"])
def test_an_address_mail_cannot_carry_is_refused_by_its_field(app, client, email):
    response = send_request(client, email=email)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'href="#email"' in html and 'id="email" name="email" type="email"' in html
    assert requests_in_db(app) == [] and mails(app) == []


def test_consent_is_required_and_the_form_is_labelled(app, client):
    form = client.get("/access-request").get_data(as_text=True)
    for name in VALID:
        assert f'id="{name}"' in form
        assert f'for="{name}"' in form or name == "consent"
    assert 'type="checkbox" id="consent"' in form and "I consent to the processing" in form
    for refused in (None, "no", "on"):
        assert send_request(client, consent=refused).status_code == 422
    assert requests_in_db(app) == [] and mails(app) == []
    assert send_request(client).status_code == 303
    (made,) = requests_in_db(app)
    assert made.consent_at is not None and made.status == "unverified"


def test_the_sign_in_page_and_the_anonymous_header_link_to_the_form(app, client):
    link = 'href="/access-request"'
    assert link in client.get("/login").get_data(as_text=True)
    header = client.get("/").get_data(as_text=True).split("</header>")[0]
    assert link in header
    with app.app_context():
        make_user("reader")
    login(client, "reader-x@test.example", PASSWORD)
    assert link not in client.get("/").get_data(as_text=True).split("</header>")[0]


def test_the_party_list_is_sorted_by_name_in_the_viewers_language(app, client):
    def order(lang: str) -> list[str]:
        html = client.get(f"/access-request?lang={lang}").get_data(as_text=True)
        select_html = html[html.index('id="country"') : html.index("</select>", html.index('id="country"'))]
        return re.findall(r'<option value="([A-Z]{2})"', select_html)

    english, french = order("en"), order("fr")
    # Germany is "Germany" in English (after France) and "Allemagne" in French (near the top).
    assert english.index("DE") > english.index("FR")
    assert french.index("DE") < french.index("FR")
    assert sorted(english) == sorted(french) and len(english) > 150


def test_a_confirmation_link_works_once_and_only_for_48_hours(app, client, people, monkeypatch):
    moved = MovedClock(monkeypatch)
    secretariat = people["secretariat"]
    assert send_request(client).status_code == 303
    (message,) = mails(app, VALID["email"])
    link = link_in(message)
    with app.app_context():
        (made,) = session.scalars(select(AccessRequest))
        # Only the token's sha256 is kept.
        assert made.token_hash and made.token_hash not in link and link.rsplit("/", 1)[1] != made.token_hash
    # Not confirmed: the Secretariat knows nothing of it.
    assert mails(app, secretariat) == []
    desk = sign_in_staff(app, secretariat)
    assert VALID["family_name"] not in desk.get("/admin/access-requests/").get_data(as_text=True)
    assert desk.get(f"/admin/access-requests/{made.id}").status_code == 404

    moved.advance(hours=47)
    confirmed = client.get(link)
    assert confirmed.status_code == 200 and "Address confirmed" in confirmed.get_data(as_text=True)
    (told,) = mails(app, secretariat)
    assert f"/admin/access-requests/{made.id}" in told.body
    assert VALID["family_name"] in desk.get("/admin/access-requests/").get_data(as_text=True)
    # Used: it never works again.
    again = client.get(link)
    assert again.status_code == 404 and "does not work" in again.get_data(as_text=True)
    assert len(mails(app, secretariat)) == 1

    # Another request, whose link is followed too late.
    assert send_request(client, email="late@kws.example").status_code == 303
    late = link_in(mails(app, "late@kws.example")[0])
    moved.advance(hours=48, seconds=1)
    assert client.get(late).status_code == 404
    assert client.get("/access-request/verify/" + "x" * 43).status_code == 404
    assert client.get("/access-request/verify/" + "x" * 500).status_code == 404
    statuses = {r.email: r.status for r in requests_in_db(app)}
    assert statuses == {VALID["email"]: "pending", "late@kws.example": "unverified"}
    assert len(mails(app, secretariat)) == 1


def test_a_repeated_request_replaces_the_unconfirmed_one(app, client):
    assert send_request(client, family_name="First").status_code == 303
    assert send_request(client, family_name="Second", email=VALID["email"].upper()).status_code == 303
    (kept,) = requests_in_db(app)
    assert kept.family_name == "Second" and kept.email == VALID["email"]
    first, second = mails(app, VALID["email"])
    assert client.get(link_in(first)).status_code == 404
    assert client.get(link_in(second)).status_code == 200


def test_the_answer_is_the_same_whether_the_address_is_new_known_or_waiting(app, people):
    def answer(email: str) -> tuple[int, str, str]:
        client = app.test_client()
        posted = send_request(client, email=email)
        page = client.get(posted.headers["Location"])
        return posted.status_code, posted.headers["Location"], page.get_data(as_text=True)

    new = answer("new.officer@kws.example")
    client = app.test_client()
    confirmed_request(app, client, email="waiting@kws.example")
    assert answer(people["reader"]) == new
    assert answer("waiting@kws.example") == new
    # Only the e-mail sent to the address tells the cases apart, and nothing new is stored.
    (known,) = mails(app, people["reader"])
    assert "already an account" in known.body and not VERIFY_LINK.search(known.body)
    waiting = mails(app, "waiting@kws.example")[-1]
    assert "already with the CITES Secretariat" in waiting.body and not VERIFY_LINK.search(waiting.body)
    assert sorted(r.email for r in requests_in_db(app)) == ["new.officer@kws.example", "waiting@kws.example"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_accepting_creates_the_account_and_invites_its_owner_by_a_one_time_link(app, secretariat):
    requester = app.test_client()
    requester.get("/?lang=fr")
    made = confirmed_request(app, requester, role="party", country="KE")
    page = secretariat.get(f"/admin/access-requests/{made.id}").get_data(as_text=True)
    assert VALID["justification"] in page and VALID["phone"] in page
    token = csrf_token(secretariat, f"/admin/access-requests/{made.id}")
    expiry = (clock.utcnow() + dt.timedelta(days=180)).date()

    # No end date; an end date that has come and a Party user without a Party: refused, kept.
    yesterday = (clock.utcnow() - dt.timedelta(days=1)).date().isoformat()
    for posted, invalid in (({"expires_on": ""}, 1), ({"expires_on": yesterday}, 2)):
        refused = secretariat.post(
            f"/admin/access-requests/{made.id}/accept", data={"csrf_token": token, "role": "party", **posted}
        )
        assert refused.status_code == 422
        html = refused.get_data(as_text=True)
        assert html.count('aria-invalid="true"') == invalid and f'value="{posted["expires_on"]}"' in html
    accepted = secretariat.post(
        f"/admin/access-requests/{made.id}/accept",
        data={"csrf_token": token, "role": "party", "party": "KE", "expires_on": expiry.isoformat()},
    )
    assert accepted.status_code == 302
    with app.app_context():
        user = session.scalar(select(User).where(User.email == VALID["email"]))
        assert (user.role, user.party_iso, user.expires_at) == (
            "party",
            "KE",
            dt.datetime.combine(expiry, dt.time()),
        )
        assert (user.family_name, user.organisation, user.language) == (
            "Wanjiru",
            VALID["organisation"],
            "fr",
        )
        entry = session.scalar(select(AuditEvent).where(AuditEvent.action == "access_request_accepted"))
        assert entry.detail["access_request"] == made.id and entry.detail["user"] == user.id
        assert VALID["email"] not in str(entry.detail)
    (invite,) = [m for m in mails(app, VALID["email"]) if SET_PASSWORD_LINK.search(m.body)]
    assert expiry.isoformat() in invite.body and "Kenya" in invite.body

    # The link opens a page to choose a password, once.
    link = link_in(invite, SET_PASSWORD_LINK)
    owner = app.test_client()
    form = owner.get(link)
    assert form.status_code == 200
    new_password = "a long passphrase nobody guesses 7"
    chosen = owner.post(
        link,
        data={"csrf_token": csrf_token(owner, link), "new_password": new_password},
    )
    assert chosen.status_code in (302, 303)
    assert login(app.test_client(), VALID["email"], new_password).status_code == 302
    assert app.test_client().get(link).status_code == 404
    listed = secretariat.get("/admin/access-requests/").get_data(as_text=True)
    assert "No request is waiting." in listed and "Achieng Wanjiru" in listed and "Accepted" in listed
    # Decided: no second decision.
    again = secretariat.post(
        f"/admin/access-requests/{made.id}/decline", data={"csrf_token": token, "reason": "No."}
    )
    assert again.status_code == 422


def test_declining_needs_a_reason_and_sends_it(app, secretariat):
    made = confirmed_request(app, app.test_client())
    url = f"/admin/access-requests/{made.id}/decline"
    token = csrf_token(secretariat, f"/admin/access-requests/{made.id}")
    assert secretariat.post(url, data={"csrf_token": token, "reason": "  "}).status_code == 422
    reason = "Please ask through your CITES Management Authority."
    assert secretariat.post(url, data={"csrf_token": token, "reason": reason}).status_code == 302
    (declined,) = [m for m in mails(app, VALID["email"]) if "declined" in m.body]
    assert reason in declined.body
    with app.app_context():
        assert session.scalar(select(func.count()).select_from(User).where(User.email == VALID["email"])) == 0
        entry = session.scalar(select(AuditEvent).where(AuditEvent.action == "access_request_declined"))
        assert entry.detail == {"access_request": made.id}
    listed = secretariat.get("/admin/access-requests/").get_data(as_text=True)
    assert "Declined" in listed


DESK = (
    ("GET", "/admin/access-requests/"),
    ("GET", "/admin/access-requests/{id}"),
    ("POST", "/admin/access-requests/{id}/accept"),
    ("POST", "/admin/access-requests/{id}/decline"),
)


def test_the_desk_answers_404_to_everyone_but_the_secretariat(app, people):
    with app.app_context():
        people.update(enforcement=make_user("enforcement").email, party=make_user("party", "KE").email)
    made = confirmed_request(app, app.test_client())
    missing = app.test_client().get("/admin/access-requests/999999")
    for who in (None, "reader", "enforcement", "party"):
        client = app.test_client()
        if who:
            assert login(client, people[who], PASSWORD).status_code == 302
        token = csrf_token(client, "/access-request")
        for method, url in DESK:
            data = {"csrf_token": token, "role": "reader", "expires_on": "2099-01-01", "reason": "x"}
            response = client.open(
                url.format(id=made.id), method=method, data=data if method == "POST" else None
            )
            assert response.status_code == 404, (who, method, url)
            assert VALID["family_name"] not in response.get_data(as_text=True)
        assert client.get("/admin/access-requests/999999").status_code == missing.status_code == 404
    assert requests_in_db(app)[0].status == "pending"


@pytest.mark.parametrize("backend", BACKENDS)
def test_requests_are_anonymised_after_the_retention_period(app, people, runner, monkeypatch):
    moved = MovedClock(monkeypatch)
    decided = confirmed_request(app, app.test_client())
    secretariat = sign_in_staff(app, people["secretariat"])
    token = csrf_token(secretariat, f"/admin/access-requests/{decided.id}")
    secretariat.post(
        f"/admin/access-requests/{decided.id}/decline", data={"csrf_token": token, "reason": "No."}
    )
    moved.advance(days=200)
    recent = confirmed_request(app, app.test_client(), email="recent@kws.example")
    assert send_request(app.test_client(), email="never.confirmed@kws.example").status_code == 303

    moved.advance(days=166)
    result = runner.invoke(args=["access-requests", "anonymise"])
    assert result.exit_code == 0, result.output
    assert "Anonymised 1 access request(s); deleted 1 unconfirmed." in result.output
    rows = {r.id: r for r in requests_in_db(app)}
    assert set(rows) == {decided.id, recent.id}
    gone = rows[decided.id]
    assert gone.email == f"anonymised-{decided.id}@invalid" and gone.anonymised_at is not None
    for name in ("family_name", "given_name", "organisation", "function", "phone", "justification"):
        assert getattr(gone, name) == ""
    assert gone.decision_reason == ""
    # What statistics need stays.
    assert (gone.status, gone.country_iso, gone.organisation_type, gone.role_requested) == (
        "declined",
        "KE",
        "other_enforcement",
        "enforcement",
    )
    assert rows[recent.id].family_name == VALID["family_name"]
    page = secretariat.get(f"/admin/access-requests/{decided.id}").get_data(as_text=True)
    assert VALID["family_name"] not in page and VALID["email"] not in page
    assert runner.invoke(args=["access-requests", "anonymise"]).output.startswith("Anonymised 0 ")


def test_emails_carry_nothing_of_other_peoples_requests(app, people):
    other = {
        "family_name": "Quuxley",
        "given_name": "Zorblatt",
        "organisation": "Frobnitz Research Trust",
        "function": "Parrot geneticist",
        "phone": "+44 1632 960 555",
        "email": "z.quuxley@frobnitz.example",
        "justification": "Genetics of seized grey parrots (marker wibblequux).",
    }
    first = confirmed_request(app, app.test_client())
    confirmed_request(app, app.test_client(), organisation_type="research", role="reader", **other)
    secretariat = sign_in_staff(app, people["secretariat"])
    token = csrf_token(secretariat, f"/admin/access-requests/{first.id}")
    secretariat.post(
        f"/admin/access-requests/{first.id}/decline", data={"csrf_token": token, "reason": "No."}
    )
    for message in mails(app, VALID["email"]):
        for value in other.values():
            assert value not in message.body and value not in message.subject
    # The Secretariat's notices name no one: the request is read on the desk.
    for message in mails(app, people["secretariat"]):
        for value in (*other.values(), *(VALID[k] for k in other)):
            assert value not in message.body and value not in message.subject
