"""What every response says about itself: caching, transport, cookies, the server, and its links."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from registry import create_app
from registry.db import commit
from registry.services import calls

from .conftest import dispose, fresh_database, load_reference, login
from .factories import PASSWORD, make_record, make_user


def _cache(response) -> str:  # type: ignore[no-untyped-def]
    response.close()
    return response.headers.get("Cache-Control", "")


def _signed_in(app: Flask, email: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert login(client, email, PASSWORD).status_code == 302
    return client


# Caching (issue 10, item 10) ----------------------------------------------------------------------


@pytest.fixture
def confidential(app):
    """A published confidential record, the Secretariat, an enforcement officer and a reader."""
    with app.app_context():
        record = make_record(title="Confidential placement", confidentiality={"level": "confidential"})
        for role in ("secretariat", "enforcement", "reader"):
            make_user(role)
        return record.id


def test_signed_in_pages_are_never_stored(app, confidential):
    """Issue 10, item 10: every page a signed-in user gets is ``no-store``, with ``Vary: Cookie``."""
    client = _signed_in(app, "reader-x@test.example")
    for path in ("/", "/records", "/search?q=parrot", "/about", "/parties/ZA"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert _cache(response) == "no-store", path
        assert "Cookie" in response.vary, path


def test_desk_pages_are_never_stored(app, confidential):
    """Issue 10, item 10: the desk (the outbox and the trail among it) is ``no-store``, even its 404s."""
    client = _signed_in(app, "secretariat-x@test.example")
    for path in ("/admin/", "/admin/outbox", "/admin/audit", f"/admin/records/{confidential}"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert _cache(response) == "no-store", path
    assert _cache(app.test_client().get("/admin/outbox")) == "no-store"
    assert _cache(app.test_client().get("/submit/")) == "no-store"


@pytest.mark.parametrize("role", ["secretariat", "enforcement"])
def test_a_confidential_record_is_never_stored(app, confidential, role):
    """Issue 10, item 10: a confidential record, as those who may read it see it, is ``no-store``."""
    client = _signed_in(app, f"{role}-x@test.example")
    response = client.get(f"/records/{confidential}")
    assert response.status_code == 200 and "Confidential placement" in response.get_data(as_text=True)
    assert _cache(response) == "no-store"


def test_public_pages_for_anonymous_visitors_are_only_revalidated(app, confidential):
    """The public's pages may be kept by a cache if it asks again; the sign-in form (a CSRF token) may not."""
    client = app.test_client()
    assert _cache(client.get("/records")) == "no-cache"
    assert _cache(client.get("/static/style.css")) == "no-cache"
    assert _cache(client.get("/login")) == "no-store"


# Links and reserved url_for arguments (issue 10, item 14) -----------------------------------------

# What every page gets appended: url_for's reserved arguments, and names of the pages' own path
# arguments (which url_with once passed twice).
HOSTILE_QUERY = (
    "_method=POST&_anchor=injected&_external=1&_scheme=javascript"
    "&record_id=x&file_id=x&iso=x&record_type=x&call_id=1&filename=x&q=parrot"
)


def _sample_url(rule, ids: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    """A URL of ``rule`` built from ``ids`` by argument name; a new kind of argument fails here."""
    missing = set(rule.arguments) - set(ids)
    assert not missing, f"give {rule.rule} a sample value for {sorted(missing)}"
    return rule.build({name: ids[name] for name in rule.arguments}, append_unknown=False)[1]


def test_reserved_url_arguments_in_the_query_are_ignored_on_every_page(app):
    """Issue 10, item 14: no GET page answers 500 to url_for's reserved arguments in its query, and
    none of them (another method, an anchor, a host, a scheme) reaches any link of the page."""
    with app.app_context():
        record = make_record(
            party="ZA", files=[{"path": "files/a.pdf", "language": "en", "tier": "public", "text": "x"}]
        )
        secretariat = make_user("secretariat")
        make_user("party", "ZA")
        call = calls.create_call(
            secretariat,
            {
                "notification": "2021/008",
                "title_en": "Call",
                "title_fr": "Appel",
                "title_es": "Solicitud",
                "opens_on": "2021-01-01",
                "deadline": "2021-06-30",
            },
        )
        commit()
        ids = {
            "record_id": record.id,
            "file_id": record.files[0].id,
            "iso": "ZA",
            "record_type": "protocol",
            "call_id": str(call.id),
            "filename": "style.css",
            "token": "not-a-token",
            "request_id": "1",
        }
    urls = sorted(
        _sample_url(rule, ids) for rule in app.url_map.iter_rules() if "GET" in (rule.methods or ())
    )
    assert len(urls) >= 15
    viewers = {
        "anonymous": app.test_client(),
        "secretariat": _signed_in(app, "secretariat-x@test.example"),
        "party": _signed_in(app, "party-za@test.example"),
    }
    for who, client in viewers.items():
        for url in urls:
            response = client.get(f"{url}?{HOSTILE_QUERY}")
            body = response.get_data().decode("utf-8", "replace")  # a download is not text
            response.close()
            assert response.status_code != 500, (who, url)
            assert "#injected" not in body and "javascript:" not in body, (who, url)
            assert not re.search(r"(href|action|src)=\"[a-z]+://localhost", body), (who, url)


def test_links_keep_the_filters_and_nothing_else(client):
    """Issue 10, item 14: the language links of a filtered page keep its filters, and only them."""
    page = client.get("/records?type=protocol&year=2022&utm_source=x&_anchor=injected").get_data(as_text=True)
    links = re.findall(r'href="([^"]*lang=fr[^"]*)"', page)
    assert links == ["/records?type=protocol&amp;year=2022&amp;lang=fr"]


# Transport and cookies (issue 10, item 16) --------------------------------------------------------


@pytest.fixture
def production(request, backend, templates, tmp_path):  # type: ignore[no-untyped-def]
    """An application configured as in production (REGISTRY_ENV=production, not testing)."""
    url = fresh_database(request, backend, templates, tmp_path / "production")
    application = create_app(
        {
            "REGISTRY_ENV": "production",
            "DATABASE_URL": url,
            "REGISTRY_HOME": str(tmp_path / "production" / "home"),
            "SECRET_KEY": "production-test-key",
        }
    )
    with application.app_context():
        load_reference()
        make_user("reader")
    yield application
    dispose(application)


def _set_cookies(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The response's Set-Cookie headers by cookie name."""
    return {value.split("=", 1)[0]: value for value in response.headers.getlist("Set-Cookie")}


def test_every_cookie_is_secure_in_production(production):
    """Issue 10, item 16: the session, language and sign-in cookies are all ``Secure`` in production."""
    client = production.test_client()
    language = _set_cookies(client.get("/?lang=fr", base_url="https://registry.example"))
    assert "Secure" in language["lang"]
    signed_in = _set_cookies(login(client, "reader-x@test.example", PASSWORD))
    assert {"session", "sign_in_device"} <= set(signed_in)
    assert all("Secure" in cookie and "HttpOnly" in cookie for cookie in signed_in.values())
    # flask-login's remember-me cookie is never issued; were it ever, it would be Secure too.
    assert production.config["REMEMBER_COOKIE_SECURE"] is True


def test_cookies_are_not_secure_outside_production(app):
    """``make run`` serves plain HTTP on 127.0.0.1: its cookies must still be sent back."""
    with app.app_context():
        make_user("reader")
    client = app.test_client()
    cookies = _set_cookies(client.get("/?lang=fr"))
    cookies.update(_set_cookies(login(client, "reader-x@test.example", PASSWORD)))
    assert {"lang", "session", "sign_in_device"} <= set(cookies)
    assert not any("Secure" in cookie for cookie in cookies.values())


def test_production_asks_browsers_for_https_only(production, app):
    """Issue 10, item 16: HSTS in production, and only there (``make run`` is plain HTTP)."""
    response = production.test_client().get("/", base_url="https://registry.example")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in app.test_client().get("/").headers


# Headers on every kind of answer (issue 11, item 4) ------------------------------------------------

EVERY_ANSWER = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _says(response, csp: str) -> None:  # type: ignore[no-untyped-def]
    """``response`` carries every protective header, and ``csp`` as its Content-Security-Policy."""
    response.close()
    for name, value in EVERY_ANSWER.items():
        assert response.headers.get(name) == value, name
    assert "camera=()" in response.headers["Permissions-Policy"]
    assert response.headers["Content-Security-Policy"] == csp


@pytest.mark.parametrize("backend", ["sqlite"])
def test_pages_and_json_answers_carry_every_protective_header(app):
    """Issue 11, item 4: an HTML page, the taxon picker's JSON and an error answered as JSON all carry
    the strict CSP (no inline script, no plugins, no base, no framing), COOP and the rest; the
    signed-in ones are never stored."""
    from registry.security import CSP

    assert {"object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "script-src 'self'"} <= set(
        part.strip() for part in CSP.split(";")
    )
    with app.app_context():
        make_user("party", "ZA")
    page = app.test_client().get("/records")
    assert page.mimetype == "text/html"
    _says(page, CSP)
    client = _signed_in(app, "party-za@test.example")
    picker = client.get("/submit/taxa.json?q=parrot")
    assert picker.mimetype == "application/json" and _cache(picker) == "no-store"
    _says(picker, CSP)
    error = app.test_client().get("/records/rmissing000000", headers={"Accept": "application/json"})
    assert error.status_code == 404 and error.mimetype == "application/json"
    _says(error, CSP)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_downloads_are_sandboxed_attachments_and_non_public_ones_never_stored(app):
    """Issue 11, item 4: every download is an attachment under a ``sandbox`` CSP (a PDF that is also a
    web page cannot run as one of the registry's); a non-public file is ``no-store``, a public one only
    revalidated."""
    from registry.security import DOWNLOAD_CSP

    assert "sandbox" in DOWNLOAD_CSP and "default-src 'none'" in DOWNLOAD_CSP
    with app.app_context():
        record = make_record(
            files=[
                {"path": "open.pdf", "language": "en", "tier": "public", "text": "Open"},
                {"path": "closed.pdf", "language": "en", "tier": "confidential", "text": "Closed"},
            ]
        )
        files = {f.original_name: f.id for f in record.files}
        make_user("enforcement")
    public = app.test_client().get(f"/files/{files['open.pdf']}")
    assert public.status_code == 200 and public.headers["Content-Disposition"].startswith("attachment;")
    assert _cache(public) == "private, no-cache"
    _says(public, DOWNLOAD_CSP)
    officer = _signed_in(app, "enforcement-x@test.example")
    closed = officer.get(f"/files/{files['closed.pdf']}")
    assert closed.status_code == 200 and closed.headers["Content-Disposition"].startswith("attachment;")
    assert _cache(closed) == "private, no-store"
    _says(closed, DOWNLOAD_CSP)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_every_cookie_is_http_only_and_same_site_lax_in_production(production):
    """Issue 11, item 4: the language, session and sign-in device cookies are Secure, HttpOnly and
    SameSite=Lax in production (the CSRF token lives in the session cookie)."""
    client = production.test_client()
    cookies = _set_cookies(client.get("/?lang=fr", base_url="https://registry.example"))
    cookies.update(_set_cookies(login(client, "reader-x@test.example", PASSWORD)))
    assert {"lang", "session", "sign_in_device"} <= set(cookies)
    for name, cookie in cookies.items():
        flags = {part.strip() for part in cookie.split(";")}
        assert {"Secure", "HttpOnly", "SameSite=Lax"} <= flags, name
    assert production.config["REMEMBER_COOKIE_HTTPONLY"]
    assert production.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"


# Errors (issue 11, item 5) ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_unexpected_error_is_a_generic_page_in_the_viewers_language(app):
    """A failure nobody foresaw answers 500 with a page in French for a French viewer, naming neither
    the exception nor its place in the code."""

    def broken() -> str:
        raise RuntimeError("secret detail /srv/registry/views.py")

    app.add_url_rule("/broken-for-the-test", "broken_for_the_test", broken)
    response = app.test_client().get("/broken-for-the-test?lang=fr")
    body = response.get_data(as_text=True)
    assert response.status_code == 500 and '<html lang="fr"' in body
    assert "Une erreur" in body or "erreur" in body.lower()
    assert "Traceback" not in body and "secret detail" not in body and "RuntimeError" not in body
    missing = app.test_client().get("/no-such-page?lang=es").get_data(as_text=True)
    assert '<html lang="es"' in missing and "Traceback" not in missing
