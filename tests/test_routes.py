"""Route coverage: every endpoint is on a short public allowlist or consults the policy.

A new route that forgets the policy fails here until it is added to one of the two lists.
"""

from __future__ import annotations

import pytest

from registry import policy

from .factories import make_record

# Pages that show nothing from the records: no policy needed.
PUBLIC_ALLOWLIST = {"static", "auth.login", "auth.logout", "public.about"}

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
POLICY_FUNCTIONS = ("can", "visible", "visible_clause", "published_at", "project", "tier_of", "tier_for")


def test_every_endpoint_is_classified(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    unclassified = endpoints - PUBLIC_ALLOWLIST - set(POLICY_CHECKED)
    assert unclassified == set(), f"classify these endpoints: {sorted(unclassified)}"
    assert set(POLICY_CHECKED) <= endpoints and PUBLIC_ALLOWLIST <= endpoints


@pytest.mark.parametrize("endpoint", sorted(POLICY_CHECKED))
def test_endpoint_consults_the_policy(app, monkeypatch, endpoint):
    with app.app_context():
        record = make_record(files=[{"path": "files/a.pdf", "language": "en", "tier": "public", "text": "x"}])
        ids = {"record": record.id, "file": record.files[0].id}
    calls: list[str] = []
    for name in POLICY_FUNCTIONS:
        original = getattr(policy, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(policy, name, spy)
    url = POLICY_CHECKED[endpoint](ids)
    with app.test_client().get(url) as response:
        assert response.status_code == 200, url
    assert calls, f"{endpoint} ({url}) answered without asking the policy"
