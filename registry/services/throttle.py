"""Sign-in throttling: counters of failed attempts, kept in the database so every worker shares them.

An attempt is counted against each of its keys (an account, a client address, a trusted browser)
*before* the password is checked, in one atomic statement per key, and stays counted as failed
unless it succeeds. A key that has failed ``Limit.free`` times must wait before its next attempt:
1 s, then twice as long after each further failure, up to ``Limit.max_wait``. While it waits,
``take`` refuses at the cost of one SELECT: no password hash is checked, nothing is written or
audited. A run of failures is forgotten ``Limit.forget_after`` seconds after its last wait ended
with no new failure.

Anyone can make an account wait, so its wait is capped (by default at 15 minutes), and the
browser its owner signed in with before is not held up by it at all: that browser is counted on
its own device key (``registry.auth``). The per-address wait goes higher (an hour): only that
address's own clients wait.

Counting before checking costs every attempt one small write per key (and a successful one as many
again, to give the count back); in exchange, however many requests arrive at once, no more than
``free`` of them get past a key before it waits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import math
from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .. import clock
from ..db import session
from ..errors import TooManyAttempts
from ..models import SignInThrottle

SCOPES = ("account", "address", "device")


def utcnow() -> dt.datetime:
    """The current time, naive UTC like every timestamp of the database (tests move it).

    Delegates to ``registry.clock`` at call time, so freezing that clock moves this one too.
    """
    return clock.utcnow()


@dataclass(frozen=True)
class Limit:
    """How many attempts of one key may fail before it waits, how long it waits, when it is forgiven."""

    free: int
    max_wait: int
    forget_after: int

    def wait(self, failures: int) -> int:
        """Seconds a key waits after its ``failures``-th failure: 0, then 1, 2, 4 ... up to ``max_wait``."""
        if failures < self.free:
            return 0
        return min(2 ** min(failures - self.free, 62), self.max_wait)

    def steps(self) -> range:
        """The failure counts whose waits still double; from the end of this range on, ``max_wait``."""
        doublings = math.ceil(math.log2(self.max_wait)) if self.max_wait > 1 else 0
        return range(self.free, self.free + doublings + 1)


@dataclass(frozen=True)
class Key:
    """One counter: its stored name, what it counts (one of ``SCOPES``) and its limit."""

    name: str
    scope: str
    limit: Limit


@dataclass(frozen=True)
class Count:
    """A key's count of failed attempts, this one included, once ``take`` has counted it."""

    key: Key
    failures: int

    @property
    def wait(self) -> int:
        """Seconds the key waits after this attempt if it fails."""
        return self.key.limit.wait(self.failures)


def account_key(email: str, limit: Limit) -> Key:
    """The key of the account named by ``email`` (normalised like ``accounts.authenticate`` does).

    The address is hashed: keys have one short length whatever was typed, and a NUL or a line
    separator in the form never reaches the database.
    """
    digest = hashlib.sha256(email.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
    return Key(f"account:{digest}", "account", limit)


def address_key(remote_addr: str, limit: Limit) -> Key:
    """The key of a client address. An IPv6 client counts as its /64: one machine usually holds all of it."""
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return Key(f"address:{remote_addr[:64]}", "address", limit)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return Key(f"address:{address.ipv4_mapped}", "address", limit)
        return Key(f"address:{ipaddress.ip_network(f'{address}/64', strict=False)}", "address", limit)
    return Key(f"address:{address}", "address", limit)


def device_key(token: str, limit: Limit) -> Key:
    """The key of a browser that signed in to an account before (``token`` comes from its signed cookie)."""
    return Key(f"device:{token[:64]}", "device", limit)


def take(keys: list[Key], now: dt.datetime | None = None) -> list[Count]:
    """Count one attempt against each of ``keys`` and return their counts, this attempt included.

    Raises TooManyAttempts, with the seconds until the longest wait ends, when any key must still
    wait; then nothing stays counted (the request that raised does not commit). Each count is one
    atomic statement, so concurrent attempts on any backend never lose a count.
    """
    now = now or utcnow()
    _refuse_if_waiting([key.name for key in keys], now)
    counts = []
    for key in keys:
        failures = session.execute(_count_statement(key, now)).scalar()
        if failures is None:
            # Another attempt made this key wait between the check above and this statement.
            _refuse_if_waiting([key.name], now)
            # ... and a sign-in ended the wait since: count again, or wait a second if even that is refused.
            failures = session.execute(_count_statement(key, now)).scalar()
            if failures is None:
                raise TooManyAttempts(1)
        if failures == 1:
            _forget_runs_that_are_over(now)
        counts.append(Count(key, failures))
    session.flush()
    return counts


def succeeded(counts: list[Count]) -> None:
    """The attempt ``take`` counted succeeded: an account or device starts afresh, an address is refunded.

    An address is only given back this attempt, so that signing in to one's own account between
    guesses at others does not wipe the guesses out.
    """
    for count in counts:
        if count.key.scope == "address":
            session.execute(
                update(SignInThrottle)
                .where(SignInThrottle.key == count.key.name, SignInThrottle.failures > 0)
                .values(failures=SignInThrottle.failures - 1, locked_until=None)
            )
        else:
            session.execute(delete(SignInThrottle).where(SignInThrottle.key == count.key.name))
    session.flush()


def _forget_runs_that_are_over(now: dt.datetime) -> None:
    """Delete up to a thousand counters whose run is over; called as a run begins, so they cannot pile up.

    Rows another transaction holds are skipped (PostgreSQL's SKIP LOCKED): two workers purging at
    once never wait for each other, so they cannot deadlock.
    """
    over = (
        select(SignInThrottle.key)
        .where(SignInThrottle.expires_at <= now)
        .limit(1000)
        .with_for_update(skip_locked=True)
    )
    session.execute(delete(SignInThrottle).where(SignInThrottle.key.in_(over)))


def _refuse_if_waiting(names: list[str], now: dt.datetime) -> None:
    """Raise TooManyAttempts if any of the keys ``names`` must still wait at ``now``."""
    until = session.scalar(
        select(func.max(SignInThrottle.locked_until)).where(
            SignInThrottle.key.in_(names), SignInThrottle.locked_until > now
        )
    )
    if until is not None:
        raise TooManyAttempts(max(1, math.ceil((until - now).total_seconds())))


def _count_statement(key: Key, now: dt.datetime):  # type: ignore[no-untyped-def]
    """INSERT ... ON CONFLICT DO UPDATE that counts one attempt for ``key`` unless it must wait.

    Returns the new count, or no row when the key is waiting. A run that is over starts again at 1.
    Every value is computed in the statement from the row as it is, so two workers never lose a
    count; the waits come from a CASE over the few counts at which they still double.
    """
    table = SignInThrottle.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    over = table.c.expires_at <= now
    failures = case((over, 1), else_=table.c.failures + 1)
    first_until, first_forget = _until(key.limit, 1, now)
    statement = insert(table).values(
        key=key.name, failures=1, window_start=now, locked_until=first_until, expires_at=first_forget
    )
    until, forget = _until_case(key.limit, failures, now)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "failures": failures,
            "window_start": case((over, now), else_=table.c.window_start),
            "locked_until": until,
            "expires_at": forget,
        },
        where=or_(table.c.locked_until.is_(None), table.c.locked_until <= now),
    )
    return statement.returning(table.c.failures)


def _until(limit: Limit, failures: int, now: dt.datetime) -> tuple[dt.datetime | None, dt.datetime]:
    """When a key that failed ``failures`` times may try again (None: at once), and when it is forgotten."""
    wait = limit.wait(failures)
    until = now + dt.timedelta(seconds=wait) if wait else None
    return until, (until or now) + dt.timedelta(seconds=limit.forget_after)


def _until_case(
    limit: Limit, failures: ColumnElement[int], now: dt.datetime
) -> tuple[ColumnElement[dt.datetime | None], ColumnElement[dt.datetime]]:
    """``_until`` as SQL CASE expressions over the count ``failures``."""
    steps = list(limit.steps())
    until_branches = [(failures < limit.free, None)]
    forget_branches = [(failures < limit.free, _until(limit, 0, now)[1])]
    for step in steps:
        until, forget = _until(limit, step, now)
        until_branches.append((failures == step, until))
        forget_branches.append((failures == step, forget))
    last_until, last_forget = _until(limit, steps[-1] + 1, now)
    return case(*until_branches, else_=last_until), case(*forget_branches, else_=last_forget)
