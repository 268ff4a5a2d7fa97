"""Writing the outbox: which documents a transaction changes, and whether text leaves a tier.

Services call ``enqueue(record_id)`` for each record they change in a way an index could show.
Just before the transaction commits, in it, ``_write_jobs`` turns those ids into ``IndexJob`` rows:

* one for each record enqueued, and one for each record that **shows** one of them (a network
  and its members: ``models.SHOWN_RECORDS``) whose document changes, before or after the change,
  so that no index keeps another record's words once that record is hidden, withdrawn or retitled;
* each marked ``purge`` when some tier's document loses a word, a word pair or a suggestion word
  (or the whole document): the index then rewrites the segments that held it, so that not even
  its word list, where prefix expansion, suggestions and ranking could still feel it, keeps a
  trace. Nobody has to remember to ask for it: the comparison is made for every change.

What an index holds once caught up is what the committed database says, so the "before" side is
read from the database outside this transaction, and the "after" side from the transaction itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from flask import current_app, has_app_context, has_request_context
from sqlalchemy import event, select
from sqlalchemy.orm import Session, selectinload

from ..db import after_commit, session
from ..models import SHOWN_RECORDS, File, IndexJob, Record
from ..vocab import TIERS
from .analysis import pairs, terms
from .documents import document_for

_PENDING = "index_pending"
_BATCH = 500


def enqueue(record_id: str) -> None:
    """Note that ``record_id`` changed; its index jobs are written when the transaction commits,
    and applied once it has."""
    pending = session.info.setdefault(_PENDING, set())
    if not pending:
        after_commit(_apply_after_commit)
    pending.add(record_id)


def _apply_after_commit() -> None:
    from . import indexes

    # A command applies its own jobs before it exits (its applier thread would die with it).
    if current_app.config["INDEX_APPLY"] == "inline" or not has_request_context():
        indexes().catch_up(session)
    else:
        indexes().applier.wake()  # type: ignore[union-attr]


@event.listens_for(Session, "before_commit")
def _write_jobs(transaction_session: Session) -> None:
    """Write the index jobs of the records enqueued in this transaction, in it."""
    pending = transaction_session.info.pop(_PENDING, None)
    if not pending:
        return
    transaction_session.flush()
    jobs = jobs_for(transaction_session, pending)
    transaction_session.add_all(IndexJob(record_id=record_id, purge=purge) for record_id, purge in jobs)
    transaction_session.flush()


@event.listens_for(Session, "after_rollback")
def _forget_jobs(rolled_back: Session) -> None:
    rolled_back.info.pop(_PENDING, None)


def _batches(ids: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), _BATCH):
        yield ordered[start : start + _BATCH]


def dependents(reading: Session, ids: Iterable[str]) -> set[str]:
    """The records that show any of ``ids`` (``models.SHOWN_RECORDS``), as ``reading`` sees them.

    One level is enough: what a record shows of another (its id, title and Party) holds nothing
    of a third one.
    """
    found: set[str] = set()
    for by, shown in SHOWN_RECORDS.values():
        for batch in _batches(ids):
            found.update(reading.scalars(select(by).where(shown.in_(batch))))
    return found


def _existing(reading: Session, ids: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for batch in _batches(ids):
        found.update(reading.scalars(select(Record.id).where(Record.id.in_(batch))))
    return found


def _documents(reading: Session, ids: set[str]) -> dict[str, dict[str, dict[str, Any] | None]]:
    """Each record's document in each tier, as ``reading`` sees the records."""
    found: dict[str, dict[str, dict[str, Any] | None]] = {}
    for batch in _batches(ids):
        stmt = select(Record).where(Record.id.in_(batch))
        for record in reading.scalars(stmt.options(selectinload(Record.files).undefer(File.text))):
            found[record.id] = {tier: document_for(record, tier) for tier in TIERS}
    return found


def _words(document: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """What a document puts in an index's word lists: body terms, phrase pairs, suggestion words."""
    body = document["body"]
    return set(terms(body)), set(pairs(body)), set(terms(document["words"], stemmed=False))


def _digest(document: dict[str, Any] | None) -> str | None:
    return document["digest"] if document is not None else None


def _loses_words(old: dict[str, Any], new: dict[str, Any] | None) -> bool:
    if new is None:
        return True
    if old["digest"] == new["digest"]:
        return False
    return any(before - after for before, after in zip(_words(old), _words(new), strict=True))


def jobs_for(transaction_session: Session, changed: set[str]) -> list[tuple[str, bool]]:
    """The jobs, ``(record id, purge)``, that the change of the ``changed`` records calls for.

    Raises nothing of its own; needs an application context (documents name labels in three languages).
    """
    if not has_app_context():
        raise RuntimeError("index jobs are written inside an application context")
    with Session(bind=transaction_session.get_bind()) as committed:
        showing = dependents(committed, changed) | dependents(transaction_session, changed)
        concerned = changed | showing
        # Records this transaction creates are in no index yet: nothing can leave one.
        existed = _existing(committed, concerned)
        before = _documents(committed, existed)
        after = _documents(transaction_session, existed)
    jobs = [(record_id, False) for record_id in sorted(changed - existed)]
    for record_id in sorted(existed):
        old, new = before.get(record_id, {}), after.get(record_id, {})
        documents = [(old.get(tier), new.get(tier)) for tier in TIERS]
        purge = any(o is not None and _loses_words(o, n) for o, n in documents)
        differs = any(_digest(o) != _digest(n) for o, n in documents)
        if record_id in changed or differs:
            jobs.append((record_id, purge))
    return jobs
