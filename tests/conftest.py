"""Fixtures: the app on SQLite and on a real PostgreSQL 15, clients that sign in, factories.

Every database-backed test runs on both backends. Without PostgreSQL the postgres half skips,
unless REQUIRE_POSTGRES=1 (as CI sets), where it fails.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from registry import create_app, migrate
from registry.config import RATE_LIMIT_SETTINGS
from registry.db import commit

from . import pg

pytest_plugins = ["tests.browser"]  # live_app, live_server, browser, page
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
_counter = itertools.count()


def on_backend(backend: str, *values: Any) -> Any:
    """The parameters ``backend, *values`` of one case, marked ``postgres`` when it needs the cluster."""
    marks = [pytest.mark.postgres] if backend == "postgres" else []
    return pytest.param(backend, *values, id="-".join((backend, *map(str, values))), marks=marks)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL server for the whole session."""
    try:
        cluster = pg.Cluster()
        url = cluster.start()
    except pg.PostgresUnavailable as exc:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but {exc}")
        pytest.skip(str(exc))
    try:
        yield url
    finally:
        cluster.stop()


def _migrated_template(tmp_path_factory: pytest.TempPathFactory, backend: str, server: str | None) -> str:
    """Run the migrations once per backend into a template database."""
    if backend == "sqlite":
        folder = tmp_path_factory.mktemp("template")
        url = f"sqlite:///{folder / 'template.sqlite'}"
    else:
        engine = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE DATABASE registry_template"))
        engine.dispose()
        url = f"{server}/registry_template"
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "REGISTRY_HOME": str(tmp_path_factory.mktemp("th")),
            "SECRET_KEY": "template",
        }
    )
    with app.app_context():
        migrate.upgrade()
        from registry.db import get_engine

        get_engine().dispose()
    return url


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Lazily built template databases, one per backend."""
    return {"factory": tmp_path_factory}


def fresh_database(
    request: pytest.FixtureRequest, backend: str, templates: dict[str, Any], folder: Path
) -> str:
    """A new, migrated, empty database for one test (or one module)."""
    server = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    if backend not in templates:
        templates[backend] = _migrated_template(templates["factory"], backend, server)
    template = templates[backend]
    if backend == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "registry.sqlite"
        shutil.copyfile(template.removeprefix("sqlite:///"), target)
        return f"sqlite:///{target}"
    name = f"registry_test_{os.getpid()}_{next(_counter)}"
    engine = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE registry_template"))
    engine.dispose()
    return f"{server}/{name}"


# The real rate limiter, counting in the database, with limits no test reaches by accident (the canary
# crawl alone makes some 180 searches); tests of the limits set low ones.
RELAXED_RATE_LIMITS = {name: "100000/hour" for name in RATE_LIMIT_SETTINGS}


def make_app(database_url: str, home: Path, **config: Any) -> Flask:
    """An application in testing mode on ``database_url`` with its own REGISTRY_HOME."""
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "REGISTRY_HOME": str(home),
            "SECRET_KEY": "test-secret-key",
            **RELAXED_RATE_LIMITS,
            **config,
        }
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test: sqlite or postgres."""
    return request.param


@pytest.fixture
def app_factory(request: pytest.FixtureRequest, backend: str, templates: dict[str, Any], tmp_path: Path):
    """Make applications on fresh databases of this test's backend; their engines are closed afterwards."""
    made: list[Flask] = []

    def factory(name: str = "a") -> Flask:
        url = fresh_database(request, backend, templates, tmp_path / name)
        application = make_app(url, tmp_path / name / "home")
        with application.app_context():
            load_reference()
            commit()
        made.append(application)
        return application

    yield factory
    for application in made:
        dispose(application)


def dispose(application: Flask) -> None:
    """Close an application's searchers and database connections (call outside its app contexts)."""
    from registry import mail, search
    from registry.db import get_engine

    # A password reset hands its message to the mail courier even under testing: end its thread.
    mail.courier(application).stop()
    with application.app_context():
        search.indexes().applier.stop()
        search.indexes().close()
        get_engine().dispose()


@pytest.fixture
def app(app_factory) -> Flask:
    """A fresh application with an empty, migrated database and reference data."""
    return app_factory()


def load_reference() -> None:
    """Load the Parties and the taxon checklist (inside an app context)."""
    import seed
    from registry.services import imports

    imports.load_reference(seed.read_json("parties.json"), seed.read_json("taxa.json"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask):  # type: ignore[no-untyped-def]
    """A CLI runner of ``app``."""
    return app.test_cli_runner()


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def without_csrf(page: str) -> str:
    """``page`` with its CSRF token values blanked: they are signed with a timestamp, so they vary."""
    return _CSRF.sub('name="csrf_token" value=""', page)


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of the form at ``path``."""
    match = _CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: FlaskClient, email: str, password: str, next_url: str | None = None):  # type: ignore[no-untyped-def]
    """Sign in through the real form, CSRF token included; answer the code step of a second factor.

    Returns the last response: the password's, or the code's when the account asked for one.
    """
    data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    if next_url is not None:
        data["next"] = next_url
    response = client.post("/login", data=data)
    if response.status_code == 302 and response.headers["Location"].endswith("/login/code"):
        code = next_totp_code(client.application, email)
        token = csrf_token(client, "/login/code")
        response = client.post("/login/code", data={"code": code, "csrf_token": token})
    return response


def next_totp_code(application: Flask, email: str) -> str:
    """A code of ``email``'s second factor (tests/factories.TOTP_SECRET) that it has not used yet.

    The earliest step from now on that the server accepts (one step either side of now) and that is
    later than the last one used; a test that signs in more often than that allows has its last step
    forgotten.
    """
    import datetime as dt

    import pyotp
    from sqlalchemy import func, select

    from registry import clock
    from registry.db import session
    from registry.models import User

    with application.app_context():
        user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
        assert user is not None and user.totp_secret, f"{email} has no second factor"
        current = int(clock.utcnow().replace(tzinfo=dt.UTC).timestamp()) // 30
        # Never the step before now: should a step end between here and the post, the code still works.
        step = current if user.totp_last_step is None else max(current, user.totp_last_step + 1)
        if step > current + 1:
            user.totp_last_step = None
            commit()
            step = current
        return pyotp.TOTP(user.totp_secret).generate_otp(step)


def logout(client: FlaskClient):  # type: ignore[no-untyped-def]
    """Sign out through the real form."""
    return client.post("/logout", data={"csrf_token": csrf_token(client, "/")})


@pytest.fixture
def people(app: Flask) -> dict[str, str]:
    """One user per role (the Party user of ZA), plus a focal point of FR and of MX: their e-mails."""
    from .factories import make_user

    with app.app_context():
        emails = {
            role: make_user(role, "ZA" if role == "party" else None).email
            for role in ("secretariat", "reader", "enforcement", "party")
        }
        emails["party_fr"] = make_user("party", "FR").email
        emails["party_mx"] = make_user("party", "MX").email
    return emails


@pytest.fixture
def secretariat(app: Flask, people: dict[str, str]) -> FlaskClient:
    """A client signed in as the Secretariat."""
    from .factories import PASSWORD

    client = app.test_client()
    assert login(client, people["secretariat"], PASSWORD).status_code == 302
    return client
