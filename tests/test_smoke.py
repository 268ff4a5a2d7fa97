"""The application starts on both backends and serves its main pages."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pyotp
import pytest

from registry import create_app, migrate
from registry.config import ConfigError, load_config
from registry.db import commit, get_engine

from .conftest import load_reference
from .factories import PASSWORD, make_record, make_user

ROOT = Path(__file__).resolve().parent.parent


def test_main_pages_answer(app, client):
    with app.app_context():
        record = make_record()
        record_id = record.id
    for path in ["/", "/records", "/parties", "/parties/ZA", "/about", "/login", f"/records/{record_id}"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"Seized live-animal resources registry" in response.data


def test_production_refuses_to_start_without_secret_key(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"REGISTRY_ENV": "production", "REGISTRY_HOME": str(tmp_path)})


def test_development_key_is_random_and_kept(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = load_config({"REGISTRY_ENV": "development", "REGISTRY_HOME": str(tmp_path)})["SECRET_KEY"]
    again = load_config({"REGISTRY_ENV": "development", "REGISTRY_HOME": str(tmp_path)})["SECRET_KEY"]
    other = load_config({"REGISTRY_ENV": "development", "REGISTRY_HOME": str(tmp_path / "b")})["SECRET_KEY"]
    assert first == again != other and len(first) >= 32


def test_sqlite_pragmas(app):
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("SQLite only")
    from sqlalchemy import text

    from registry.db import session

    with app.app_context():
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_a_home_made_by_make_run_runs_its_commands_in_development(monkeypatch, tmp_path):
    """The README's commands, typed in the folder where ``make run`` made its instance, need no
    settings; a SECRET_KEY or an explicit REGISTRY_ENV still decides."""
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("REGISTRY_ENV", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"REGISTRY_HOME": str(tmp_path)})
    made = load_config({"REGISTRY_ENV": "development", "REGISTRY_HOME": str(tmp_path)})
    again = load_config({"REGISTRY_HOME": str(tmp_path)})
    assert (again["REGISTRY_ENV"], again["SECRET_KEY"]) == ("development", made["SECRET_KEY"])
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    assert load_config({"REGISTRY_HOME": str(tmp_path)})["REGISTRY_ENV"] == "production"
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.setenv("REGISTRY_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"REGISTRY_HOME": str(tmp_path)})


def test_cheap_password_hashes_are_for_the_test_suite_alone(tmp_path):
    """Testing hashes cheaply by default; development and production use RFC 9106 and refuse the cheap one."""
    home = {"REGISTRY_HOME": str(tmp_path), "SECRET_KEY": "k" * 64}
    assert load_config({**home, "TESTING": True})["ARGON2_PROFILE"] == "CHEAPEST"
    for env in ("development", "production"):
        assert load_config({**home, "REGISTRY_ENV": env})["ARGON2_PROFILE"] == "RFC_9106_LOW_MEMORY"
        with pytest.raises(ConfigError, match="ARGON2_PROFILE"):
            load_config({**home, "REGISTRY_ENV": env, "ARGON2_PROFILE": "CHEAPEST"})


def test_a_command_without_its_settings_says_why_in_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "REGISTRY_HOME": str(tmp_path), "REGISTRY_ENV": "production"}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "registry", "index-status"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "Error: SECRET_KEY is not set" in done.stderr


class _Browser:
    """Just enough of a browser for a live server: cookies kept, redirects not followed."""

    class _Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), self._Stay()
        )

    def get(self, path: str) -> tuple[int, dict[str, str], str]:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, str], str]:
        data = urllib.parse.urlencode(form).encode()
        return self._open(urllib.request.Request(self.base + path, data=data, method="POST"))

    def _open(self, request: urllib.request.Request) -> tuple[int, dict[str, str], str]:
        try:
            with self.opener.open(request, timeout=10) as answer:
                return answer.status, dict(answer.headers), answer.read().decode()
        except urllib.error.HTTPError as answer:
            with answer:
                return answer.code, dict(answer.headers), answer.read().decode()

    def csrf(self, path: str) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', self.get(path)[2])
        assert match, path
        return match.group(1)


def test_make_run_serves_through_gunicorn_with_two_workers(tmp_path):
    """Issue 11, item 7: the server of ``make run``, started as it starts it, answers the home page, a
    search and a sign-in, names no server software, and a record the Secretariat publishes through
    one worker is found by searches that both workers answer (one applier per node, the other reads)."""
    makefile = (ROOT / "Makefile").read_text()
    command = "$(BIN)/gunicorn --config python:registry.gunicorn_conf"
    assert re.search(rf"^\t.*{re.escape(command)}", makefile, re.MULTILINE), "make run left gunicorn"
    home = tmp_path / "home"
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    env = {**os.environ, "REGISTRY_ENV": "development", "REGISTRY_HOME": str(home), "DATABASE_URL": url}
    env.pop("SECRET_KEY", None)
    seeded = create_app({"REGISTRY_ENV": "development", "REGISTRY_HOME": str(home), "DATABASE_URL": url})
    with seeded.app_context():
        migrate.upgrade()
        load_reference()
        commit()
        published = make_record(title="Holding seized numbat kits").id
        draft = make_record(title="Holding seized wombatine joeys", status="submitted").id
        # The Secretariat signs in with a second factor.
        secret = pyotp.random_base32(32)
        make_user("secretariat").totp_secret = secret
        commit()
        get_engine().dispose()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "access.log"
    gunicorn = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--config",
        "python:registry.gunicorn_conf",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "registry:create_app()",
    ]
    with log.open("w") as out:
        server = subprocess.Popen(gunicorn, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        browser = _Browser(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                status, headers, page = browser.get("/")
                break
            except OSError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        assert status == 200 and "Seized live-animal resources registry" in page
        assert headers["Server"] == "registry"
        status, _, page = browser.get("/search?q=numbat")
        assert status == 200 and f"/records/{published}" in page

        token = browser.csrf("/login")
        form = {"email": "secretariat-x@test.example", "password": PASSWORD, "csrf_token": token}
        assert browser.post("/login", form)[0] == 302
        code = {"code": pyotp.TOTP(secret).now(), "csrf_token": browser.csrf("/login/code")}
        assert browser.post("/login/code", code)[0] == 302
        token = browser.csrf(f"/admin/records/{draft}")
        assert browser.post(f"/admin/records/{draft}/publish", {"csrf_token": token, "reason": ""})[0] == 302

        workers: set[str] = set()
        for _ in range(40):
            visitor = _Browser(browser.base)
            status, _, page = visitor.get("/search?q=wombatine")
            assert status == 200 and f"/records/{draft}" in page
            workers = set(re.findall(r'<(\d+)> \S+ "GET /search\?q=wombatine ', log.read_text()))
            if len(workers) == 2:
                break
        assert len(workers) == 2, "one worker answered every search"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=15)
    assert server.returncode == 0, log.read_text()
    assert "Shutting down: Master" in log.read_text()
