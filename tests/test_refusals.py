"""Failed authorisations reach the audit trail (issue 11, item 5), in aggregate, and only those that say
nothing about whether a record exists: a hidden record is not found like a missing one, with nothing
written for either."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from registry.db import session
from registry.models import AuditEvent

from .conftest import csrf_token, login
from .factories import PASSWORD, make_record, make_user

# The trail's and the counter's SQL are tested on both backends elsewhere (test_audit, test_rate_limits).
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def _refusals(app) -> list[tuple[str | None, dict]]:  # type: ignore[no-untyped-def]
    """The trail's refusals, oldest first: who was refused, and the entry's detail."""
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action == "refused").order_by(AuditEvent.id)
        events = session.scalars(query)
        return [(event.actor, event.detail) for event in events]


def test_an_action_refused_to_a_signed_in_user_is_in_the_trail(app):
    """A Party user submitting a record that is already published is told 403, and the trail says so;
    the refused request's own work is not committed with the entry."""
    with app.app_context():
        record_id = make_record(party="ZA").id
        make_user("party", "ZA")
    client = app.test_client()
    login(client, "party-za@test.example", PASSWORD)
    token = csrf_token(client, "/submit/")
    assert client.post(f"/submit/{record_id}/submit", data={"csrf_token": token}).status_code == 403
    [(actor, detail)] = _refusals(app)
    assert actor == "party-za@test.example"
    assert detail == {
        "kind": "forbidden",
        "refusals": 1,
        "method": "POST",
        "path": f"/submit/{record_id}/submit",
        "endpoint": "submit.send",
    }


def test_a_csrf_failure_is_in_the_trail(app):
    """A form sent without its token is refused, and the refusal is recorded."""
    with app.app_context():
        make_user("reader")
    client = app.test_client()
    login(client, "reader-x@test.example", PASSWORD)
    assert client.post("/logout").status_code == 400
    [(actor, detail)] = _refusals(app)
    assert actor == "reader-x@test.example" and detail["kind"] == "csrf" and detail["path"] == "/logout"


def test_the_desk_refused_is_in_the_trail_in_aggregate(app):
    """Anyone but the Secretariat asking for the desk gets its 404 and an entry: the 1st, 2nd and 4th
    refusal of one viewer are written, with their count, so repeating cannot fill the trail."""
    with app.app_context():
        make_user("reader")
        make_user("secretariat")
    reader = app.test_client()
    login(reader, "reader-x@test.example", PASSWORD)
    for _ in range(4):
        assert reader.get("/admin/").status_code == 404
    assert [detail["refusals"] for _actor, detail in _refusals(app)] == [1, 2, 4]
    assert app.test_client().get("/admin/audit").status_code == 404
    assert _refusals(app)[-1] == ("", {**_refusals(app)[-1][1], "kind": "desk", "refusals": 1})
    secretariat = app.test_client()
    login(secretariat, "secretariat-x@test.example", PASSWORD)
    assert secretariat.get("/admin/records/rmissing000000").status_code == 404
    assert len(_refusals(app)) == 4


def test_hidden_and_missing_records_write_nothing(app):
    """A record hidden from the viewer and one that does not exist are both not found, with no entry."""
    with app.app_context():
        hidden = make_record(title="Hidden", confidentiality={"level": "confidential"}).id
        make_user("reader")
    client = app.test_client()
    login(client, "reader-x@test.example", PASSWORD)
    for path in (f"/records/{hidden}", "/records/rmissing000000", f"/submit/{hidden}/history"):
        assert client.get(path).status_code == 404, path
    assert _refusals(app) == []
