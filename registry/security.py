"""Protections every response gets: CSRF on every POST, and strict security headers."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()

# No inline scripts or styles, nothing from other sites.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def init_app(app: Flask) -> None:
    """Enable CSRF protection and add the security headers."""
    csrf.init_app(app)

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store" if _personal(response) else "no-cache")
        return response


def _personal(response) -> bool:  # type: ignore[no-untyped-def]
    """Responses that depend on who is signed in must not be stored by shared caches."""
    return "Cookie" in response.vary or response.headers.get("Set-Cookie") is not None
