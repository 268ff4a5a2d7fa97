"""Protections every response gets: CSRF on every POST, and strict security headers."""

from __future__ import annotations

from flask import Flask, g, request
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

csrf = CSRFProtect()

# No inline scripts or styles, nothing from other sites.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# A download is never run as a page of the site, whatever it holds: no script, no plugin, no form,
# a unique origin (a polyglot PDF/HTML opened in the browser can read nothing of the registry's).
DOWNLOAD_CSP = "default-src 'none'; sandbox"
# Powerful browser features no page of the registry uses.
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
    "payment=(), usb=()"
)
# Production is served over HTTPS only: browsers are told to use nothing else for a year.
HSTS = "max-age=31536000; includeSubDomains"
# Whole areas that are someone's own, whoever asks: the Secretariat's desk and a Party's submissions.
PERSONAL_AREAS = ("/admin", "/submit")


def init_app(app: Flask) -> None:
    """Enable CSRF protection and add the security headers; believe the configured proxies."""
    csrf.init_app(app)
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        # Behind a reverse proxy every request comes from the proxy's address: without this, the
        # audit trail would name the proxy, and the sign-in throttle would make everyone wait for
        # one attacker. Only as many proxies as configured are believed, so a client cannot forge it.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        if response.headers.get("Content-Disposition", "").startswith("attachment"):
            response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
        else:
            response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        # No other site's window keeps a handle on ours, nor may another site embed what we serve.
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        response.headers["Permissions-Policy"] = PERMISSIONS_POLICY
        if app.config["STRICT_TRANSPORT_SECURITY"]:
            response.headers["Strict-Transport-Security"] = HSTS
        # A view that decides for itself (a download) keeps its own answer.
        response.headers.setdefault("Cache-Control", "no-store" if personal() else "no-cache")
        if request.endpoint != "static" and current_user.is_authenticated:
            response.vary.add("Cookie")
        return response


def personal() -> bool:
    """Whether the response being made is someone's own, so no cache may store it.

    Decided from the request, not from the response's headers: the session's cookie and
    ``Vary: Cookie`` are only added after every ``after_request`` function has run. Personal
    are: every page for a signed-in viewer, the desk and the submission pages whoever asks, and
    any page that carries a CSRF token (which belongs to one browser's session). Static files are
    the same for everyone.
    """
    if request.endpoint == "static":
        return False
    return (
        current_user.is_authenticated
        or request.path.startswith(PERSONAL_AREAS)
        or g.get("csrf_token") is not None
    )
