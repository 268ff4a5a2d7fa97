"""Database engine and session, bound to the Flask application.

The request is the unit of work (see ``init_app``): it commits when no exception escaped the
view, and rolls back when one did, before any error page is rendered. Services flush; views
never commit or roll back: a view that answers bad input with its form raises
``errors.Rejected``, so whatever the failed attempt wrote is rolled back before the form is shown
again. Work that must happen only once the data is durable (waking the index applier and the
mail courier) is registered with ``after_commit`` and runs after a successful commit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g
from flask.globals import app_ctx
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from werkzeug.local import LocalProxy


class Base(DeclarativeBase):
    """Declarative base of every model."""


class _State:
    """The per-application engine and scoped session."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        self.session = scoped_session(factory, scopefunc=lambda: id(app_ctx._get_current_object()))


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets foreign keys ON, WAL and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def init_app(app: Flask) -> None:
    """Attach the engine to ``app``; each request commits unless an exception escaped its view."""
    state = _State(make_engine(app.config["DATABASE_URL"]))
    app.extensions["registry.db"] = state
    handle_user_exception = app.handle_user_exception

    def _roll_back_then_handle(exc: Exception):  # type: ignore[no-untyped-def]
        # Every exception of a request comes here before its error handler: the attempt's work is
        # dropped first, so no handler and no later commit can keep any of it. After a failed flush
        # the session refuses all work until it is rolled back, and error pages read the database
        # (the signed-in user).
        g.registry_failed = True
        try:
            rollback()
        except Exception:  # the database may be gone: the error page must still be shown
            app.logger.exception("Rollback after an error failed")
        return handle_user_exception(exc)

    app.handle_user_exception = _roll_back_then_handle  # type: ignore[method-assign]

    @app.after_request
    def _commit(response):  # type: ignore[no-untyped-def]
        if not g.get("registry_failed"):
            commit()
        return response

    @app.teardown_appcontext
    def _remove(_exc: BaseException | None) -> None:
        state.session.remove()


def get_session() -> Session:
    """Return the session of the current application context."""
    return current_app.extensions["registry.db"].session()


def get_engine() -> Engine:
    """Return the engine of the current application."""
    return current_app.extensions["registry.db"].engine


session: Session = LocalProxy(get_session)  # type: ignore[assignment]


def after_commit(func: Callable[[], None]) -> None:
    """Run ``func`` once the current transaction has committed; dropped on rollback."""
    get_session().info.setdefault("after_commit", []).append(func)


def commit() -> None:
    """Commit the current session, then run the work registered with ``after_commit``."""
    sess = get_session()
    sess.commit()
    pending = sess.info.pop("after_commit", [])
    for func in pending:
        func()


def retry_on_conflict(work: Callable[[], Any]) -> Any:
    """Run ``work``; if the database refuses it for a unique key another transaction took meanwhile
    (a form sent twice at once), roll back and run it once more, on what is committed now."""
    try:
        return work()
    except IntegrityError:
        rollback()
        return work()


def rollback() -> None:
    """Roll back the current session and forget the registered post-commit work."""
    sess = get_session()
    sess.rollback()
    sess.info.pop("after_commit", None)
