"""Signing in and out: argon2, CSRF, safe ``next``, and cookies that die at logout."""

from __future__ import annotations

import pytest

from registry.auth import safe_next
from registry.db import commit, session
from registry.models import User

from .conftest import csrf_token, login, logout, without_csrf
from .factories import PASSWORD, make_record, make_user


@pytest.fixture
def reader(app):
    with app.app_context():
        user = make_user("reader")
        hidden = make_record(title="Registered-only protocol", confidentiality={"level": "registered"})
        return {"email": user.email, "record": hidden.id}


def test_password_is_hashed_with_argon2(app, reader):
    with app.app_context():
        user = session.query(User).filter_by(email=reader["email"]).one()
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash


def test_login_shows_registered_material(client, reader):
    assert client.get(f"/records/{reader['record']}").status_code == 404
    response = login(client, reader["email"], PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get(f"/records/{reader['record']}").status_code == 200


def test_wrong_password_keeps_the_email_and_says_why(client, reader):
    response = login(client, reader["email"], "not the password")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "The e-mail address or password is not correct." in page
    assert f'value="{reader["email"]}"' in page
    assert client.get(f"/records/{reader['record']}").status_code == 404


def test_unknown_email_gets_the_same_answer(client, reader):
    unknown = without_csrf(login(client, "nobody@test.example", PASSWORD).get_data(as_text=True))
    wrong = without_csrf(login(client, reader["email"], "wrong password!").get_data(as_text=True))
    assert "The e-mail address or password is not correct." in unknown
    assert unknown.replace("nobody@test.example", "") == wrong.replace(reader["email"], "")


def test_cookie_replay_after_logout_fails(app, client, reader):
    login(client, reader["email"], PASSWORD)
    stolen = client.get_cookie("session").value
    assert client.get(f"/records/{reader['record']}").status_code == 200
    assert logout(client).status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get(f"/records/{reader['record']}").status_code == 404
    assert "Sign out" not in replay.get("/").get_data(as_text=True)


def test_deactivated_user_loses_access_at_once(app, client, reader):
    login(client, reader["email"], PASSWORD)
    with app.app_context():
        session.query(User).filter_by(email=reader["email"]).one().active = False
        commit()
    assert client.get(f"/records/{reader['record']}").status_code == 404
    assert login(client, reader["email"], PASSWORD).status_code == 400


def test_login_without_csrf_token_is_refused(client, reader):
    response = client.post("/login", data={"email": reader["email"], "password": PASSWORD})
    assert response.status_code == 400
    assert "The form has expired" in response.get_data(as_text=True)
    assert client.get(f"/records/{reader['record']}").status_code == 404


def test_logout_without_csrf_token_is_refused(client, reader):
    login(client, reader["email"], PASSWORD)
    assert client.post("/logout").status_code == 400
    assert client.get(f"/records/{reader['record']}").status_code == 200


def test_logout_by_get_is_not_allowed(client, reader):
    login(client, reader["email"], PASSWORD)
    assert client.get("/logout").status_code == 405
    assert client.get(f"/records/{reader['record']}").status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "/records\r\nLocation: https://evil.example",
    ],
)
def test_bad_next_is_ignored(client, reader, target):
    response = login(client, reader["email"], PASSWORD, next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_same_site_next_is_followed(client, reader):
    response = login(client, reader["email"], PASSWORD, next_url="/records?type=protocol")
    assert response.headers["Location"] == "/records?type=protocol"


def test_safe_next_rules():
    assert safe_next("/records/abc") == "/records/abc"
    for bad in (None, "", "records", "//x", "https://x", "/\\x", "/a\x00b"):
        assert safe_next(bad) is None


def test_login_page_has_csrf_token_and_fields(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'name="email"' in page and 'name="password"' in page and csrf_token(client)


def test_security_headers(client):
    response = client.get("/")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    "email",
    ["reader-x@test.example\x00", "\x00", "reader\u2028-x@test.example", "no address at all", "a@b\x07"],
)
def test_junk_in_the_email_gets_the_usual_answer(client, reader, email):
    response = login(client, email, PASSWORD)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "The e-mail address or password is not correct." in page and "Traceback" not in page
    assert client.get(f"/records/{reader['record']}").status_code == 404
    # The form still works afterwards: nothing was left half done.
    assert login(client, reader["email"], PASSWORD).status_code == 302
