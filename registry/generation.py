"""The content generation: a count of the transactions that changed anything a page can show.

Caches of rendered pages and of reference data (``registry.pagecache``) keep what they hold under
the count they read before they read the data; whatever the count says now, nothing kept under an
older count is used. So a change is seen by every worker at its next request, however many there are.

Nobody has to remember to bump it. Whenever the ORM flushes a change to any table that is not in
``UNSHOWN`` (a new model is shown until it is said otherwise), or runs an INSERT, UPDATE or DELETE
statement (or raw SQL) through the session on such a table, the count goes up by one in the same
transaction, just before it commits: it becomes visible exactly when the change does, and a
rolled-back change has no bump.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from .models import (
    AccessRequest,
    AccountToken,
    AuditEvent,
    ContentGeneration,
    IndexJob,
    QueuedMail,
    RateLimitCounter,
    SignInThrottle,
)

# Tables no page that may be cached ever shows: writing them changes no page. The page cache only
# serves anonymous visitors, so what only a signed-in user sees of their own account is here too.
UNSHOWN = frozenset(
    model.__table__.name  # type: ignore[attr-defined]
    for model in (
        AccessRequest,
        AccountToken,
        AuditEvent,
        ContentGeneration,
        IndexJob,
        QueuedMail,
        RateLimitCounter,
        SignInThrottle,
    )
)
_BUMP = update(ContentGeneration).where(ContentGeneration.id == 1).values(count=ContentGeneration.count + 1)


def current(session: Session) -> int | None:
    """The count as ``session`` reads it now; None when the row is missing (nothing may be cached)."""
    return session.scalar(select(ContentGeneration.count).where(ContentGeneration.id == 1))


def _shown(instances: Any) -> bool:
    """Whether any of ``instances`` lives in a table a page may show."""
    for instance in instances:
        table = getattr(type(instance), "__table__", None)
        if table is None or table.name not in UNSHOWN:
            return True
    return False


_CHANGED = "content_changed"


@event.listens_for(Session, "after_flush")
def _after_flush(flushed: Session, _context: UOWTransaction) -> None:
    """Note that the transaction wrote a table a page may show."""
    if _shown(flushed.new) or _shown(flushed.dirty) or _shown(flushed.deleted):
        flushed.info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    """Note a statement that may write a shown table, run through the session."""
    if state.is_select:
        return
    if state.is_insert or state.is_update or state.is_delete:
        mapper = state.bind_mapper
        table = getattr(mapper, "local_table", None) if mapper is not None else None
        if table is not None and table.name in UNSHOWN:
            return
    # Raw SQL, or a statement on a table pages show: assume it changed what they show.
    state.session.info[_CHANGED] = True


@event.listens_for(Session, "before_commit")
def _bump(committing: Session) -> None:
    """Count the transaction, last thing before it commits (after the outbox's own flush).

    Taken at the end, the row's lock (PostgreSQL) is held only while the transaction commits, so two
    transactions never wait for each other's locks in opposite orders.
    """
    committing.flush()
    if committing.info.pop(_CHANGED, False):
        committing.connection().execute(_BUMP)


@event.listens_for(Session, "after_rollback")
def _forget(rolled_back: Session) -> None:
    rolled_back.info.pop(_CHANGED, None)
