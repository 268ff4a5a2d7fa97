"""Rate limits (Flask-Limiter) on the endpoints worth abusing, counted in the application's database.

Which endpoint is limited, by which setting and per what (a client address, an account) is said in one
place, ``LIMITS``; a new endpoint takes one line there (and its setting in ``registry.config``). The
limits are applied by endpoint name once the blueprints are registered, so no view knows about them.

The counters are rows of ``rate_limit`` (``RateLimitCounter``), written by ``DatabaseStorage``, a
``limits`` storage registered under its own scheme, ``registry-db://``: every gunicorn worker and every
node counts the same requests, and a restart forgets none. Each counted request is one atomic
INSERT ... ON CONFLICT DO UPDATE on a connection of its own, committed at once, so that neither the
request's transaction nor its outcome (a refusal commits nothing) decides whether it was counted, and
the request never holds a write lock while it works. A refused request writes nothing but its count.

The windows are fixed (Flask-Limiter's ``fixed-window``): a key's row is reused by its next window, and
whenever a window begins, up to ``PRUNE_BATCH`` rows of windows that are over are deleted, so rows of
clients that went away do not pile up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, request
from flask_limiter import Limiter
from limits.storage import Storage
from sqlalchemy import DateTime, Integer, String, bindparam, case, delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.expression import Executable

from . import auth, clock
from .db import get_engine
from .models import RateLimitCounter
from .services import throttle

SCHEME = "registry-db"
# Rows of windows that are over deleted whenever a window begins: a few, so that no request pays much.
PRUNE_BATCH = 100
# Stored keys longer than the column are kept as their hash.
_KEY_LENGTH = 255
# The throttle's keys carry a limit; a rate limit uses only their names.
_NAME_ONLY = throttle.Limit(free=1, max_wait=1, forget_after=1)
# How long refusals of one kind by one client are counted together (see ``count_refusal``).
REFUSAL_WINDOW = 3600


class DatabaseStorage(Storage):
    """A ``limits`` storage in the application's database (SQLite or PostgreSQL): ``registry-db://``.

    It counts in the database of the application whose context it is called in, so one storage serves
    any number of applications in one process (as the tests make them).
    """

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: float | str | bool):
        """Take the URI ``registry-db://`` (nothing follows the scheme: the database is the app's)."""
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        # The counting statement by dialect, built once: building it costs more than running it.
        self._counting: dict[str, Executable] = {}

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """What a failing database raises."""
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Count ``amount`` more requests of ``key`` in its window (begun now if there is none or it is
        over, to last ``expiry`` seconds) and return the window's count, in one atomic statement."""
        now = clock.utcnow()
        engine = get_engine()
        dialect = engine.dialect.name
        if dialect not in self._counting:
            self._counting[dialect] = _counting_statement(dialect)
        ends = now + dt.timedelta(seconds=expiry)
        values = {"key": _stored(key), "amount": amount, "now": now, "ends": ends}
        with engine.begin() as connection:
            count = connection.execute(self._counting[dialect], values).scalar_one()
            if count == amount:
                _prune(connection, now)
        return count

    def get(self, key: str) -> int:
        """The count of ``key``'s current window (0 when it has none)."""
        row = self._row(key)
        return row.count if row is not None and row.expires_at > clock.utcnow() else 0

    def get_expiry(self, key: str) -> float:
        """When ``key``'s current window ends, as a Unix time (now when it has none)."""
        row = self._row(key)
        now = clock.utcnow()
        ends = row.expires_at if row is not None and row.expires_at > now else now
        return ends.replace(tzinfo=dt.UTC).timestamp()

    def check(self) -> bool:
        """Whether the database answers."""
        try:
            with get_engine().connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        """Forget every count; return how many windows were forgotten."""
        with get_engine().begin() as connection:
            return connection.execute(delete(RateLimitCounter)).rowcount

    def clear(self, key: str) -> None:
        """Forget the count of ``key``."""
        with get_engine().begin() as connection:
            connection.execute(delete(RateLimitCounter).where(RateLimitCounter.key == _stored(key)))

    def _row(self, key: str):  # type: ignore[no-untyped-def]
        with get_engine().connect() as connection:
            return connection.execute(
                select(RateLimitCounter.count, RateLimitCounter.expires_at).where(
                    RateLimitCounter.key == _stored(key)
                )
            ).first()


def _counting_statement(dialect: str) -> Executable:
    """INSERT ... ON CONFLICT DO UPDATE counting ``:amount`` requests of ``:key`` at ``:now``.

    A window that is over starts again, to end at ``:ends``; every value is computed in the statement
    from the row as it was, so two workers never lose a count. Returns the window's count.
    """
    table = RateLimitCounter.__table__
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    amount = bindparam("amount", type_=Integer)
    ends = bindparam("ends", type_=DateTime)
    over = table.c.expires_at <= bindparam("now", type_=DateTime)
    return (
        insert(table)
        .values(key=bindparam("key", type_=String), count=amount, expires_at=ends)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "count": case((over, amount), else_=table.c.count + amount),
                "expires_at": case((over, ends), else_=table.c.expires_at),
            },
        )
        .returning(table.c.count)
    )


def _stored(key: str) -> str:
    """``key`` as stored: itself, or its hash when it is longer than the column."""
    if len(key) <= _KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _prune(connection: Connection, now: dt.datetime) -> None:
    """Delete up to ``PRUNE_BATCH`` windows that are over; rows another worker holds are skipped
    (PostgreSQL's SKIP LOCKED), so two workers pruning at once never wait for each other."""
    over = (
        select(RateLimitCounter.key)
        .where(RateLimitCounter.expires_at <= now)
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    connection.execute(delete(RateLimitCounter).where(RateLimitCounter.key.in_(over)))


# Who a request is counted against -------------------------------------------------------------------


def client_address() -> str:
    """The client's address, as the sign-in throttle counts it (an IPv6 client as its /64).

    Behind reverse proxies, the address they forwarded (``TRUSTED_PROXIES``, ``registry.security``).
    """
    return throttle.address_key(request.remote_addr or "", _NAME_ONLY).name


def _sign_in_account() -> throttle.Key:
    return throttle.account_key(request.form.get("email", ""), _NAME_ONLY)


def _trusted_browser() -> str | None:
    """The device token of a browser that signed in to the account it now tries, or None."""
    return auth.trusted_browser(_sign_in_account())


def sign_in_account() -> str:
    """The account a sign-in tries, or, from a browser that signed in to it before, that browser.

    As for the throttle, the owner's own browser is counted apart, so that nobody can keep the owner
    out by trying the account from elsewhere.
    """
    browser = _trusted_browser()
    return throttle.device_key(browser, _NAME_ONLY).name if browser else _sign_in_account().name


def _not_uploading() -> bool:
    """Whether this submission form POST carries no file (saving a form is not an upload)."""
    return not any(upload.filename for upload in request.files.values())


@dataclass(frozen=True)
class Rule:
    """One rate limit: the setting holding its limits, the methods it counts, per what it counts.

    Endpoints whose rules name the same setting share one counter (``submit.new`` and
    ``submit.edit`` count the same uploads). ``exempt`` says when a request is not counted.
    """

    setting: str
    methods: tuple[str, ...] = ("GET", "HEAD")
    key: Callable[[], str] = client_address
    exempt: Callable[[], bool] | None = None

    @property
    def scope(self) -> str:
        """The counter's name among the client's: its setting's ("RATE_LIMIT_SEARCH" counts "search")."""
        return self.setting.removeprefix("RATE_LIMIT_").lower()


_UPLOAD = Rule("RATE_LIMIT_UPLOAD", ("POST",), exempt=_not_uploading)
# Endpoint -> its rules. An endpoint not registered (yet) is skipped.
LIMITS: dict[str, tuple[Rule, ...]] = {
    "auth.login": (
        Rule("RATE_LIMIT_LOGIN", ("POST",), exempt=lambda: _trusted_browser() is not None),
        Rule("RATE_LIMIT_LOGIN_ACCOUNT", ("POST",), key=sign_in_account),
    ),
    # The second factor's codes count with the passwords of the same address.
    "auth.totp": (Rule("RATE_LIMIT_LOGIN", ("POST",)),),
    "account.reset_request": (Rule("RATE_LIMIT_RESET", ("POST",)),),
    "access.request": (Rule("RATE_LIMIT_ACCESS_REQUEST", ("POST",)),),
    "submit.new": (_UPLOAD,),
    "submit.edit": (_UPLOAD,),
    "public.search_page": (Rule("RATE_LIMIT_SEARCH"),),
    "public.browse": (Rule("RATE_LIMIT_BROWSE"),),
}


def _limits_of(setting: str) -> Callable[[], str]:
    """The limits of ``setting`` in the current application's configuration, read at each request."""
    return lambda: current_app.config[setting]


def init_app(app: Flask) -> None:
    """Apply ``LIMITS`` to the endpoints registered on ``app`` (call after the blueprints).

    Each application gets a limiter of its own, which wraps its view functions; the counts are in the
    application's database.
    """
    limiter = Limiter(
        key_func=client_address,
        storage_uri=f"{SCHEME}://",
        strategy="fixed-window",
        # No X-RateLimit headers: they would cost each counted request two more reads.
        headers_enabled=False,
    )
    limiter.init_app(app)
    app.extensions["registry.limiter"] = limiter
    for endpoint, rules in LIMITS.items():
        view = app.view_functions.get(endpoint)
        if view is None:
            continue
        for rule in rules:
            view = limiter.shared_limit(
                _limits_of(rule.setting),
                scope=rule.scope,
                key_func=rule.key,
                methods=list(rule.methods),
                exempt_when=rule.exempt,
            )(view)
        app.view_functions[endpoint] = view


def retry_after() -> int:
    """Seconds until the limit this request broke lets the client in again (at least 1)."""
    limiter: Limiter = current_app.extensions["registry.limiter"]
    broken = limiter.current_limit
    if broken is None:
        return 1
    now = clock.utcnow().replace(tzinfo=dt.UTC).timestamp()
    # The window's own end: Flask-Limiter's ``reset_at`` adds a second to it (``int(end + 1)``), which
    # could tell a client to wait longer than the window itself.
    return max(1, math.ceil(broken.window[0] - now))


def count_refusal(kind: str, who: str) -> int:
    """Count one refusal of ``kind`` to ``who`` (a user or an address) and return how many it has
    had in the current ``REFUSAL_WINDOW``, so that the audit trail records them in aggregate."""
    storage: Storage = current_app.extensions["registry.limiter"].storage
    return storage.incr(f"refused/{kind}/{who}", REFUSAL_WINDOW)
