"""The seized live-animal resources registry: a Flask application."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from .config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the application: configuration, extensions, blueprints, commands."""
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder="static")
    try:
        app.config.update(load_config(test_config))
    except ConfigError as exc:
        if test_config is not None:
            raise
        # Said in one sentence to whoever starts it (a command, gunicorn), not as a traceback.
        raise SystemExit(f"Error: {exc}") from None

    from . import auth, cli, db, errors, i18n, mail, pagecache, ratelimit, search, security, templating
    from .views import access, access_admin, account, admin, public, submit, users_admin

    db.init_app(app)
    search.init_app(app)
    mail.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    templating.init_app(app)
    errors.init_app(app)
    app.register_blueprint(public.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(submit.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(users_admin.bp)
    app.register_blueprint(access.bp)
    app.register_blueprint(access_admin.bp)
    pagecache.init_app(app)  # after every blueprint, before the limits: they count kept pages too
    ratelimit.init_app(app)  # after every blueprint: it limits their endpoints by name
    cli.init_app(app)
    return app
