"""Records that show other records (a network and its member centres) never show, nor index, more
of them than each viewer may see.

Issue 10, items 1 and 2. A network's page and its search document show its members' ids, titles and
Parties. Each member is shown only if the viewer may see it itself (never at the network's tier),
and every change of a member (its tier, its status, its title) re-indexes, with purge, every
document that shows it, in the same transaction: no index keeps a hidden member's words, not even
in its word list.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import select

from registry import policy, search
from registry.db import commit, session
from registry.errors import Invalid
from registry.models import SHOWN_RECORDS, IndexJob, Record, User
from registry.search.analysis import terms
from registry.services.records import review, shape, tiers, write
from registry.services.search import SearchParams, run_search
from registry.vocab import TIERS

from .conftest import login
from .factories import PASSWORD, import_payload, make_user, record_data

REASON = "The keeper asked for it."
OLD_WORD, NEW_WORD = "Kestrelhaven", "Ospreyglade"


def _user(email: str) -> User:
    return session.scalar(select(User).where(User.email == email))


def _files_dir() -> Path:
    return Path(current_app.config["FILES_DIR"])


def _found(viewer, query: str) -> tuple[list[str], int]:
    results = run_search(viewer, SearchParams(q=query, per_page=100))
    return [hit.record.id for hit in results.hits], results.total


def _lexicon(tier: str) -> set[str]:
    """Every word of the ``tier`` index's body field, live documents or not."""
    with search.indexes().index(tier).searcher() as searcher:
        return {t.decode() if isinstance(t, bytes) else t for t in searcher.reader().lexicon("body")}


def _shared_with_network() -> dict[str, str]:
    """A public centre of ZA, member of a public regional network; a user per role. Their ids."""
    import_payload(
        [
            record_data(
                type="rescue_centre",
                ref="centre",
                title=f"{OLD_WORD} sanctuary for confiscated parrots",
                details={"facility_type": "sanctuary", "operator": "Trust", "city": "Town"},
            ),
            record_data(
                type="network",
                title="Southern rescue network",
                party=None,
                scope="regional",
                region="africa",
                details={"coordinator": "Network office", "members": ["centre"]},
            ),
        ]
    )
    centre = session.scalar(select(Record).where(Record.type == "rescue_centre"))
    network = session.scalar(select(Record).where(Record.type == "network"))
    return {
        "centre": centre.id,
        "network": network.id,
        "secretariat": make_user("secretariat").email,
        "party": make_user("party", "ZA").email,
        "reader": make_user("reader").email,
        "enforcement": make_user("enforcement").email,
    }


def _raise(ids: dict[str, str]) -> None:
    tiers.change_tier(_user(ids["secretariat"]), session.get(Record, ids["centre"]), "confidential", REASON)


def _withdraw(ids: dict[str, str]) -> None:
    review.withdraw(_user(ids["secretariat"]), session.get(Record, ids["centre"]), REASON)


def _shape_with_new_title(centre: Record) -> dict:
    shaped = shape.record_shape(centre)
    shaped.pop("files")
    shaped["title"] = f"{NEW_WORD} sanctuary for confiscated parrots"
    return shaped


def _correct_title(ids: dict[str, str]) -> None:
    centre = session.get(Record, ids["centre"])
    write.save_record(_user(ids["secretariat"]), centre, _shape_with_new_title(centre), [], _files_dir())


def _revise_title(ids: dict[str, str]) -> None:
    centre, party = session.get(Record, ids["centre"]), _user(ids["party"])
    write.save_record(party, centre, _shape_with_new_title(centre), [], _files_dir())
    review.submit(party, centre)
    commit()
    review.publish(_user(ids["secretariat"]), centre, _files_dir())


# Each kind of change a shown record goes through, and the tiers it leaves.
CHANGES = {
    "tier raised": (_raise, ("public", "registered")),
    "withdrawn": (_withdraw, TIERS),
    "retitled by the Secretariat": (_correct_title, TIERS),
    "retitled by a revision": (_revise_title, TIERS),
}


def test_every_relation_that_shows_records_is_tested_here():
    # A new entry of models.SHOWN_RECORDS needs its builder here: the tests below cover each one.
    assert set(SHOWN_RECORDS) == {"members"}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_search_never_finds_a_hidden_or_changed_member_through_its_network(app, change):
    """Issue 10, item 1: after the change, the member's old words and its id leave every index it left,
    from the network's document too, word list included; index-status finds nothing stale."""
    apply, left = CHANGES[change]
    with app.test_request_context():
        ids = _shared_with_network()
        old = terms(OLD_WORD)[0]
        assert sorted(_found(None, OLD_WORD)[0]) == sorted([ids["centre"], ids["network"]])
        assert old in _lexicon("public")
        apply(ids)
        commit()
        # The network's job is written with the centre's, in the same transaction, with purge.
        jobs = session.execute(select(IndexJob.record_id, IndexJob.purge).order_by(IndexJob.id.desc())).all()
        assert (ids["network"], True) in jobs[:2]
        for tier in left:
            viewer = policy.audience(tier)
            assert _found(viewer, OLD_WORD) == ([], 0), (change, tier)
            assert old not in _lexicon(tier), (change, tier)
            prefix = _found(viewer, f"{OLD_WORD[:5].lower()}*")
            assert prefix == ([], 0), (change, tier)
            if change in ("tier raised", "withdrawn"):
                assert _found(viewer, ids["centre"]) == ([], 0), (change, tier)
                assert ids["centre"] not in _lexicon(tier), (change, tier)
                assert _found(viewer, f"{ids['centre'][:6]}*") == ([], 0), (change, tier)
        if change == "tier raised":
            # The officers' index still shows it, through the network too.
            officer = _user(ids["enforcement"])
            assert sorted(_found(officer, OLD_WORD)[0]) == sorted([ids["centre"], ids["network"]])
        if change.startswith("retitled"):
            assert sorted(_found(None, NEW_WORD)[0]) == sorted([ids["centre"], ids["network"]])
        report = search.indexes().status(session)
        assert all(not problems for tier in report.values() for problems in tier.values()), report


def test_a_change_that_leaves_a_network_document_alone_adds_no_job_for_it(app):
    """Only the networks whose document changes are re-indexed: a member's new summary is not shown."""
    with app.test_request_context():
        ids = _shared_with_network()
        centre = session.get(Record, ids["centre"])
        shaped = shape.record_shape(centre)
        shaped.pop("files")
        shaped["summary"] += " The network does not show its summary."
        write.save_record(_user(ids["secretariat"]), centre, shaped, [], _files_dir())
        head = session.scalar(select(IndexJob.id).order_by(IndexJob.id.desc()).limit(1))
        commit()
        new = session.execute(select(IndexJob.record_id, IndexJob.purge).where(IndexJob.id > head)).all()
        assert new == [(ids["centre"], False)]


# Each viewer sees the members it may see itself ----------------------------------------------------


def _french_network() -> dict[str, str]:
    """France's public network with a public and a confidential centre of ZA and France's own
    confidential centre: their ids, and a user per role."""
    import_payload(
        [
            record_data(type="rescue_centre", ref="za-open", title="Open centre of ZA"),
            record_data(
                type="rescue_centre",
                ref="za-secret",
                title="Secret centre of ZA",
                confidentiality={"level": "confidential"},
            ),
            record_data(
                type="rescue_centre",
                ref="fr-secret",
                party="FR",
                title="Secret centre of FR",
                confidentiality={"level": "confidential"},
            ),
            record_data(
                type="network",
                party="FR",
                title="French network",
                details={"coordinator": "Paris", "members": ["za-open", "za-secret", "fr-secret"]},
            ),
        ]
    )
    by_title = {r.title: r.id for r in session.scalars(select(Record))}
    return {
        **by_title,
        "fr": make_user("party", "FR").email,
        "za": make_user("party", "ZA").email,
        "secretariat": make_user("secretariat").email,
    }


def test_a_party_sees_only_the_members_it_may_see_on_its_own_network(app):
    """Issue 10, item 2: France's own network does not list South Africa's confidential centre,
    which France gets 404 on."""
    with app.app_context():
        ids = _french_network()
        network = session.get(Record, ids["French network"])
        france = _user(ids["fr"])
        shown = {m["title"] for m in shape.project(network, france).details["members"]}
        assert shown == {"Open centre of ZA", "Secret centre of FR"}
        shown_to_za = {m["title"] for m in shape.project(network, _user(ids["za"])).details["members"]}
        assert shown_to_za == {"Open centre of ZA", "Secret centre of ZA"}
    client = app.test_client()
    login(client, ids["fr"], PASSWORD)
    page = client.get(f"/records/{ids['French network']}").get_data(as_text=True)
    assert "Open centre of ZA" in page and "Secret centre of FR" in page
    assert "Secret centre of ZA" not in page and ids["Secret centre of ZA"] not in page
    assert client.get(f"/records/{ids['Secret centre of ZA']}").status_code == 404
    form = client.get(f"/submit/{ids['French network']}").get_data(as_text=True)
    assert "Secret centre of ZA" not in form and ids["Secret centre of ZA"] not in form


def test_a_partys_edit_of_its_network_keeps_the_members_it_cannot_see(app):
    """The form lists only the centres the Party may see: saving it keeps the others, and the Party
    cannot add one it may not see."""
    with app.app_context():
        ids = _french_network()
        network, france = session.get(Record, ids["French network"]), _user(ids["fr"])
        shaped = shape.working_shape(network)
        shaped.pop("files")
        shaped["details"]["members"] = [ids["Open centre of ZA"]]
        write.save_record(france, network, shaped, [], _files_dir())
        review.submit(france, network)
        review.publish(_user(ids["secretariat"]), network, _files_dir())
        commit()
        members = {m.title for m in session.get(Record, ids["French network"]).members}
        assert members == {"Open centre of ZA", "Secret centre of ZA"}
        other = import_payload(
            [
                record_data(
                    type="rescue_centre", title="Another secret", confidentiality={"level": "confidential"}
                )
            ]
        )[0]
        shaped = shape.working_shape(network)
        shaped.pop("files")
        shaped["details"]["members"] = [ids["Open centre of ZA"], other]
        with pytest.raises(Invalid) as refused:
            write.save_record(france, network, shaped, [], _files_dir())
        assert "details.members" in refused.value.messages
