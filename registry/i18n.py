"""Languages: English, French and Spanish, chosen with ``?lang=`` (kept in a cookie) or Accept-Language."""

from __future__ import annotations

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, get_locale

COOKIE = "lang"


def select_locale() -> str:
    """The viewer's language: ``?lang=``, then the cookie, then the browser's preference, then English.

    Outside a request (a command, the import) it is English.
    """
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    chosen = request.args.get("lang")
    if chosen in languages:
        g.lang_chosen = chosen
        return chosen
    cookie = request.cookies.get(COOKIE)
    if cookie in languages:
        return cookie
    return request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]


def current_language() -> str:
    """The language of the page being rendered, as a two-letter code."""
    return str(get_locale() or "en")


def init_app(app: Flask) -> None:
    """Set up Flask-Babel and remember a language chosen with ``?lang=``."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(app.root_path + "/translations"))
    Babel(app, locale_selector=select_locale)

    @app.after_request
    def _remember_language(response):  # type: ignore[no-untyped-def]
        chosen = g.get("lang_chosen")
        if chosen and request.cookies.get(COOKIE) != chosen:
            response.set_cookie(
                COOKIE,
                chosen,
                max_age=365 * 24 * 3600,
                samesite="Lax",
                httponly=True,
                secure=current_app.config["SESSION_COOKIE_SECURE"],  # Secure like every cookie in production
            )
        return response

    @app.context_processor
    def _language():  # type: ignore[no-untyped-def]
        return {"lang": current_language()}
