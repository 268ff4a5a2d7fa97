"""Words an edit removes leave the index's word lists at once, not at some later merge.

Issue 10, item 7: a word that no live document of a tier has any more must not linger in that
tier's word list, where prefix expansion, suggestions and ranking (document frequencies) could
still feel it. Every change is compared with what the index holds; one that takes a word out of a
tier is applied as a purge, rewriting the segments that held it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import select

from registry import search
from registry.db import commit, session
from registry.models import IndexJob, Record
from registry.search.analysis import terms
from registry.services.records import review, shape, write
from registry.vocab import TIERS

from .factories import make_record, make_user

WORD = "Quetzalcoatl"


def _files_dir() -> Path:
    return Path(current_app.config["FILES_DIR"])


def _holds(tier: str, word: str) -> bool:
    """Whether the ``tier`` index's word lists (body, phrase pairs, suggestions) hold ``word``."""
    with search.indexes().index(tier).searcher() as searcher:
        reader = searcher.reader()
        body, plain = terms(word)[0], terms(word, stemmed=False)[0]
        pairs = any(term.decode().split(" ")[0] == body for term in reader.lexicon("pairs"))
        return ("body", body) in reader or ("words", plain) in reader or pairs


def _last_job() -> tuple[str, bool]:
    return session.execute(select(IndexJob.record_id, IndexJob.purge).order_by(IndexJob.id.desc())).first()


def _shape(record: Record, **changes) -> dict:
    shaped = shape.record_shape(record)
    shaped.pop("files")
    return {**shaped, **changes}


def _correct(record: Record, **changes) -> None:
    write.save_record(make_user("secretariat"), record, _shape(record, **changes), [], _files_dir())
    commit()


def _revise(record: Record, **changes) -> None:
    party = make_user("party", "ZA")
    write.save_record(party, record, _shape(record, **changes), [], _files_dir())
    review.submit(party, record)
    commit()
    review.publish(make_user("secretariat", email="desk@test.example"), record, _files_dir())
    commit()


@pytest.mark.parametrize("how", [_correct, _revise], ids=["corrected", "revised"])
def test_a_word_an_edit_removes_leaves_every_word_list_at_once(app, how):
    with app.app_context():
        record = make_record(title="Holding seized macaws", summary=f"Call the {WORD} desk at once.")
        assert all(_holds(tier, WORD) for tier in TIERS)
        how(record, summary="Call the duty desk at once.")
        assert _last_job() == (record.id, True)
        assert not any(_holds(tier, WORD) for tier in TIERS)
        assert all(_holds(tier, "duty") for tier in TIERS)


def test_an_edit_that_only_adds_words_is_no_purge(app):
    """Purges rewrite segments: only a change that takes words out of a tier pays for one."""
    with app.app_context():
        record = make_record(title="Holding seized macaws", summary="Call the desk.")
        _correct(record, summary=f"Call the desk. Ask for {WORD}.")
        assert _last_job() == (record.id, False)
        assert _holds("public", WORD)


def test_words_of_a_document_the_edit_drops_leave_the_index(app):
    with app.app_context():
        record = make_record(
            title="Holding seized macaws",
            files=[{"path": "files/annex.pdf", "language": "en", "tier": "public", "text": f"Annex {WORD}."}],
        )
        assert _holds("public", WORD)
        _correct(record)
        assert session.get(Record, record.id).files == []
        assert _last_job() == (record.id, True)
        assert not any(_holds(tier, WORD) for tier in TIERS)
