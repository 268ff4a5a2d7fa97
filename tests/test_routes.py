"""Route coverage: every endpoint is on a short public allowlist or consults the policy.

A new route that forgets the policy fails here until it is added to one of the two lists.
"""

from __future__ import annotations

import sys

import pytest

from registry import policy

from .conftest import csrf_token, login
from .factories import PASSWORD, make_record, make_user

# Pages that show nothing from the records: no policy needed.
PUBLIC_ALLOWLIST = {"static", "auth.login", "auth.logout", "public.about"}
# Asking for access: nothing from the records, and no account needed.
PUBLIC_ALLOWLIST |= {"access.request", "access.sent", "access.verify"}
# One's own account, the second factor and one-time password links: nothing from the records.
PUBLIC_ALLOWLIST |= {"auth.totp", "account.reset_request", "account.set_password", "account.page"}
PUBLIC_ALLOWLIST |= {"account.change_password", "account.sign_out_others", "account.totp_setup"}
PUBLIC_ALLOWLIST |= {"account.totp_qr", "account.totp_disable"}

# Every other endpoint, with a URL that exercises it.
POLICY_CHECKED = {
    "public.home": lambda ids: "/",
    "public.browse": lambda ids: "/records",
    "public.record": lambda ids: f"/records/{ids['record']}",
    "public.download": lambda ids: f"/files/{ids['file']}",
    "public.parties": lambda ids: "/parties",
    "public.party": lambda ids: "/parties/ZA",
    "public.search_page": lambda ids: "/search?q=parrot",
}
# The Secretariat's desk: (method, URL). Anyone else gets 404, after the desk asked the policy.
DESK_ONLY = {
    "admin.queue": ("GET", lambda ids: "/admin/"),
    "admin.review": ("GET", lambda ids: f"/admin/records/{ids['record']}"),
    "admin.publish": ("POST", lambda ids: f"/admin/records/{ids['record']}/publish"),
    "admin.return_": ("POST", lambda ids: f"/admin/records/{ids['record']}/return"),
    "admin.withdraw": ("POST", lambda ids: f"/admin/records/{ids['record']}/withdraw"),
    "admin.change_tier": ("POST", lambda ids: f"/admin/records/{ids['record']}/tier"),
    "admin.audit": ("GET", lambda ids: "/admin/audit"),
    "admin.outbox": ("GET", lambda ids: "/admin/outbox"),
    "admin.disclosures": ("GET", lambda ids: "/admin/disclosures"),
    "admin.calls": ("GET", lambda ids: "/admin/calls"),
    "admin.call": ("GET", lambda ids: "/admin/calls/1"),
    "admin.remind": ("POST", lambda ids: "/admin/calls/1/remind"),
}
# Pages for whoever manages users (the Secretariat): (method, URL). Anyone else gets 404, after the
# page asked the policy.
MANAGE_USERS_ONLY = {
    "access_admin.index": ("GET", lambda ids: "/admin/access-requests/"),
    "access_admin.detail": ("GET", lambda ids: "/admin/access-requests/1"),
    "access_admin.accept": ("POST", lambda ids: "/admin/access-requests/1/accept"),
    "access_admin.decline": ("POST", lambda ids: "/admin/access-requests/1/decline"),
    "users_admin.index": ("GET", lambda ids: "/admin/users/"),
    "users_admin.set_active": ("POST", lambda ids: "/admin/users/1/active"),
    "users_admin.set_expiry": ("POST", lambda ids: "/admin/users/1/expiry"),
}
# A Party's submissions: (method, URL). Anyone but a Party user (or, for a record, its own Party
# and the Secretariat) gets 404 once signed in, after the view asked the policy.
PARTY_ONLY = {
    "submit.home": ("GET", lambda ids: "/submit/"),
    "submit.new": ("GET", lambda ids: "/submit/new/protocol"),
    "submit.edit": ("GET", lambda ids: f"/submit/{ids['record']}"),
    "submit.send": ("POST", lambda ids: f"/submit/{ids['record']}/submit"),
    "submit.withdraw": ("POST", lambda ids: f"/submit/{ids['record']}/withdraw"),
    "submit.history": ("GET", lambda ids: f"/submit/{ids['record']}/history"),
    "submit.taxa": ("GET", lambda ids: "/submit/taxa.json?q=parrot"),
}
POLICY_FUNCTIONS = ("can", "visible", "visible_clause", "published_at", "mask", "tier_of", "tier_for")


def _spy_on_policy(monkeypatch) -> list[tuple[str, tuple]]:
    """Record each policy call as (name, args), leaving out the page chrome's ``may`` (the menu asks
    it on every page, so it would make any page look as if it had consulted the policy)."""
    calls: list[tuple[str, tuple]] = []
    for name in POLICY_FUNCTIONS:
        original = getattr(policy, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            if sys._getframe(1).f_globals.get("__name__") != "registry.templating":
                calls.append((_name, args))
            return _original(*args, **kwargs)

        monkeypatch.setattr(policy, name, spy)
    return calls


def test_every_endpoint_is_classified(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    unclassified = endpoints - PUBLIC_ALLOWLIST - set(POLICY_CHECKED) - set(DESK_ONLY) - set(PARTY_ONLY)
    unclassified -= set(MANAGE_USERS_ONLY)
    assert unclassified == set(), f"classify these endpoints: {sorted(unclassified)}"
    assert set(POLICY_CHECKED) <= endpoints and PUBLIC_ALLOWLIST <= endpoints
    assert set(DESK_ONLY) <= endpoints
    assert set(PARTY_ONLY) <= endpoints
    assert set(MANAGE_USERS_ONLY) <= endpoints


@pytest.mark.parametrize("endpoint", sorted(POLICY_CHECKED))
def test_endpoint_consults_the_policy(app, monkeypatch, endpoint):
    with app.app_context():
        record = make_record(files=[{"path": "files/a.pdf", "language": "en", "tier": "public", "text": "x"}])
        ids = {"record": record.id, "file": record.files[0].id}
    calls = _spy_on_policy(monkeypatch)
    url = POLICY_CHECKED[endpoint](ids)
    with app.test_client().get(url) as response:
        assert response.status_code == 200, url
    assert calls, f"{endpoint} ({url}) answered without asking the policy"


@pytest.mark.parametrize("endpoint", sorted(DESK_ONLY))
def test_desk_endpoint_asks_the_policy_and_hides(app, monkeypatch, endpoint):
    with app.app_context():
        ids = {"record": make_record().id}
    client = app.test_client()
    token = csrf_token(client)
    calls = _spy_on_policy(monkeypatch)
    method, url = DESK_ONLY[endpoint][0], DESK_ONLY[endpoint][1](ids)
    data = {"csrf_token": token} if method == "POST" else None
    with client.open(url, method=method, data=data) as response:
        assert response.status_code == 404, url
    assert ("can", (None, "review_desk")) in calls, f"{endpoint} ({url}) did not ask the policy"


@pytest.mark.parametrize("endpoint", sorted(MANAGE_USERS_ONLY))
def test_user_management_endpoint_asks_the_policy_and_hides(app, monkeypatch, endpoint):
    client = app.test_client()
    token = csrf_token(client)
    calls = _spy_on_policy(monkeypatch)
    method, url = MANAGE_USERS_ONLY[endpoint][0], MANAGE_USERS_ONLY[endpoint][1]({})
    data = {"csrf_token": token} if method == "POST" else None
    with client.open(url, method=method, data=data) as response:
        assert response.status_code == 404, url
    assert ("can", (None, "manage_users")) in calls, f"{endpoint} ({url}) did not ask the policy"


@pytest.mark.parametrize("endpoint", sorted(PARTY_ONLY))
def test_party_endpoint_asks_the_policy_and_hides(app, monkeypatch, endpoint):
    with app.app_context():
        ids = {"record": make_record(party="ZA").id}
        make_user("reader")
        make_user("party", "FR")
    method, url = PARTY_ONLY[endpoint][0], PARTY_ONLY[endpoint][1](ids)
    anonymous = app.test_client()
    token = csrf_token(anonymous)
    with anonymous.open(
        url, method=method, data={"csrf_token": token} if method == "POST" else None
    ) as response:
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    users = ["reader-x@test.example"] + (["party-fr@test.example"] if "record" in url or "/r" in url else [])
    for email in users:
        client = app.test_client()
        login(client, email, PASSWORD)
        token = csrf_token(client, "/")
        calls = _spy_on_policy(monkeypatch)
        data = {"csrf_token": token} if method == "POST" else None
        with client.open(url, method=method, data=data) as response:
            assert response.status_code == 404, (email, url)
        assert calls, f"{endpoint} ({url}) did not ask the policy"
        monkeypatch.undo()
