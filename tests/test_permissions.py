"""The permission matrix: role × action × record state × tier, from one table.

The table below states the rule in plain terms. For every cell the test checks that
``policy.can``, ``policy.visible`` (SQL) and the rendered pages all agree with it.
"""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from registry import policy
from registry.db import session
from registry.models import File, Record, User
from registry.services.records import shape
from registry.vocab import STATUSES, TIERS

from .conftest import login
from .factories import PASSWORD, import_payload, make_user, record_data

OWN, OTHER = "ZA", "FR"
ROLES = ("anonymous", "reader", "enforcement", "party_own", "party_other", "secretariat")

# The rule, once: which tiers of *published* records each role reads ...
READS = {
    "anonymous": {"public"},
    "reader": {"public", "registered"},
    "enforcement": {"public", "registered", "confidential"},
    "party_own": {"public", "registered", "confidential"},
    "party_other": {"public", "registered"},
    "secretariat": {"public", "registered", "confidential"},
}
# ... who also sees records that are not published (drafts, under review, withdrawn) ...
SEES_UNPUBLISHED = {"party_own", "secretariat"}
# ... who edits in which states, and who reviews, publishes and marks confidential.
# A Party prepares the next version of a published record while the published one stays live.
EDITS = {"party_own": {"draft", "returned", "published"}, "secretariat": set(STATUSES)}
SUBMITS = {"party_own": {"draft", "returned"}}
# A Party withdraws what is not yet published; the Secretariat anything not yet withdrawn.
WITHDRAWS = {
    "party_own": {"draft", "submitted", "returned"},
    "secretariat": set(STATUSES) - {"withdrawn"},
}
KEEPS_HISTORY = {"party_own", "secretariat"}
SECRETARIAT_ONLY = ("review", "publish", "mark_confidential")


def expect_view(role: str, status: str, tier: str) -> bool:
    if role in SEES_UNPUBLISHED:
        return True
    return status == "published" and tier in READS[role]


def expect_download(role: str, status: str, tier: str, file_tier: str) -> bool:
    if not expect_view(role, status, tier):
        return False
    if role in SEES_UNPUBLISHED:
        return True
    return file_tier in READS[role]


def expect_edit(role: str, status: str) -> bool:
    return status in EDITS.get(role, set())


@pytest.fixture
def matrix(app):
    """One record per status × tier for the own Party, each with one file per tier; a user per role."""
    with app.app_context():
        records = [
            record_data(
                title=f"Matrix {status} {tier}",
                status=status,
                confidentiality={"level": tier},
                files=[
                    {
                        "path": f"files/{status}-{tier}-{ft}.pdf",
                        "language": "en",
                        "tier": ft,
                        "text": "matrix",
                    }
                    for ft in TIERS
                ],
            )
            for status, tier in itertools.product(STATUSES, TIERS)
        ]
        import_payload(records)
        users = {
            "reader": make_user("reader"),
            "enforcement": make_user("enforcement"),
            "party_own": make_user("party", OWN),
            "party_other": make_user("party", OTHER),
            "secretariat": make_user("secretariat"),
        }
        return {role: (user.email if user else None) for role, user in users.items()}


def _viewer(role: str, emails: dict[str, str]) -> User | None:
    if role == "anonymous":
        return None
    return session.scalar(select(User).where(User.email == emails[role]))


def test_policy_and_sql_agree_with_the_table(app, matrix):
    mismatches = []
    with app.app_context():
        everything = session.scalars(select(Record)).all()
        for role in ROLES:
            viewer = _viewer(role, matrix)
            listed = set(session.scalars(policy.visible(select(Record.id), viewer)))
            files_listed = set(
                session.scalars(select(File.id).join(Record).where(policy.visible_files_clause(viewer)))
            )
            for record in everything:
                status, tier = record.status, record.tier
                cell = (role, status, tier)
                if policy.can(viewer, "view", record) != expect_view(role, status, tier):
                    mismatches.append(("can view", *cell))
                if (record.id in listed) != expect_view(role, status, tier):
                    mismatches.append(("visible()", *cell))
                if policy.can(viewer, "edit", record) != expect_edit(role, status):
                    mismatches.append(("can edit", *cell))
                if policy.can(viewer, "submit", record) != (status in SUBMITS.get(role, set())):
                    mismatches.append(("can submit", *cell))
                if policy.can(viewer, "withdraw", record) != (status in WITHDRAWS.get(role, set())):
                    mismatches.append(("can withdraw", *cell))
                if policy.can(viewer, "see_history", record) != (role in KEEPS_HISTORY):
                    mismatches.append(("can see_history", *cell))
                for action in SECRETARIAT_ONLY:
                    if policy.can(viewer, action, record) != (role == "secretariat"):
                        mismatches.append((f"can {action}", *cell))
                for file in record.files:
                    wanted = expect_download(role, status, tier, file.tier)
                    if policy.can(viewer, "download", file) != wanted:
                        mismatches.append(("can download", *cell, file.tier))
                    if (file.id in files_listed) != wanted:
                        mismatches.append(("visible_files_clause", *cell, file.tier))
            own_create = role in ("party_own", "secretariat")
            if policy.can(viewer, "create", OWN) != own_create:
                mismatches.append(("can create", role))
            if policy.can(viewer, "create", None) != (role == "secretariat"):
                mismatches.append(("can create global", role))
            for action in ("manage_users", "see_extraction_errors", "review_desk"):
                if policy.can(viewer, action) != (role == "secretariat"):
                    mismatches.append((f"can {action}", role))
            if policy.can(viewer, "no-such-action", everything[0]):
                mismatches.append(("unknown action allowed", role))
    assert mismatches == []


def test_pages_agree_with_the_table(app, matrix):
    with app.app_context():
        cells = [
            (r.id, r.status, r.tier, [(f.id, f.tier) for f in r.files])
            for r in session.scalars(select(Record))
        ]
    mismatches = []
    for role in ROLES:
        client = app.test_client()
        if role != "anonymous":
            assert login(client, matrix[role], PASSWORD).status_code == 302
        browse = client.get("/records?party=ZA").get_data(as_text=True)
        for record_id, status, tier, files in cells:
            wanted = expect_view(role, status, tier)
            got = client.get(f"/records/{record_id}").status_code
            if got != (200 if wanted else 404):
                mismatches.append(("page", role, status, tier, got))
            if (f'/records/{record_id}"' in browse) != wanted:
                mismatches.append(("browse", role, status, tier))
            for file_id, file_tier in files:
                want_file = expect_download(role, status, tier, file_tier)
                with client.get(f"/files/{file_id}") as response:
                    got = response.status_code
                if got != (200 if want_file else 404):
                    mismatches.append(("file", role, status, tier, file_tier, got))
    assert mismatches == []


def test_tier_of_each_role(app, matrix):
    expected = {
        "anonymous": "public",
        "reader": "registered",
        "enforcement": "confidential",
        "party_own": "registered",
        "party_other": "registered",
        "secretariat": "confidential",
    }
    with app.app_context():
        assert {role: policy.tier_of(_viewer(role, matrix)) for role in ROLES} == expected


def test_fail_closed_for_unknown_roles_and_tiers():
    stranger = policy.Actor(role="superuser")
    assert policy.tier_of(stranger) is None
    assert policy.allowed_tiers(None) == ()
    assert policy.allowed_tiers("top-secret") == ()
    assert not policy.allows("public", "unknown-tier")
    assert policy.strictest("public", "bogus") == "confidential"
    inactive = policy.Actor(role="secretariat", is_active=False)
    assert policy.tier_of(inactive) == "public"
    assert not policy.can(inactive, "manage_users")


def test_unknown_role_sees_nothing(app, matrix):
    with app.app_context():
        stranger = policy.Actor(role="superuser")
        assert session.scalars(policy.visible(select(Record.id), stranger)).all() == []
        for record in session.scalars(select(Record)):
            assert not policy.can(stranger, "view", record)


def test_a_record_shows_of_another_only_what_the_viewer_may_see_of_that_one(app):
    """Issue 10, item 2: a network of the other Party lists the own Party's centres of every status and
    tier; each role is shown, on the projection and the page, exactly the members the table lets it see
    itself: the network's tier for the viewer (confidential for its own Party) never decides for them."""
    with app.app_context():
        centres = [
            record_data(
                type="rescue_centre",
                ref=f"centre-{status}-{tier}",
                title=f"Member {status} {tier}",
                status=status,
                confidentiality={"level": tier},
            )
            for status, tier in itertools.product(STATUSES, TIERS)
        ]
        network = record_data(
            type="network",
            party=OTHER,
            title="Network of the other Party",
            details={"coordinator": "Office", "members": [c["ref"] for c in centres]},
        )
        import_payload([*centres, network])
        emails = {
            "reader": make_user("reader").email,
            "enforcement": make_user("enforcement").email,
            "party_own": make_user("party", OWN).email,
            "party_other": make_user("party", OTHER).email,
            "secretariat": make_user("secretariat").email,
        }
        network_id = session.scalar(select(Record.id).where(Record.type == "network"))
        wanted = {
            role: {
                f"Member {status} {tier}"
                for status, tier in itertools.product(STATUSES, TIERS)
                if expect_view(role, status, tier)
            }
            for role in ROLES
        }
        mismatches = []
        for role in ROLES:
            viewer = _viewer(role, emails)
            projection = shape.project(session.get(Record, network_id), viewer)
            shown = {m["title"] for m in projection.details["members"]}
            if shown != wanted[role]:
                mismatches.append(("projection", role, sorted(shown ^ wanted[role])))
    for role in ROLES:
        client = app.test_client()
        if role != "anonymous":
            assert login(client, emails[role], PASSWORD).status_code == 302
        page = client.get(f"/records/{network_id}").get_data(as_text=True)
        titles = (f"Member {status} {tier}" for status, tier in itertools.product(STATUSES, TIERS))
        listed = {title for title in titles if title in page}
        if listed != wanted[role]:
            mismatches.append(("page", role, sorted(listed ^ wanted[role])))
    assert mismatches == []
