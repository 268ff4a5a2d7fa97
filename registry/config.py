"""Configuration read from the environment.

``REGISTRY_HOME`` holds the SQLite file, the search indexes and the uploaded files;
``DATABASE_URL`` overrides the SQLite default; ``SECRET_KEY`` is required outside
development and tests; ``REGISTRY_ENV`` is ``production`` (default), ``development`` or ``testing``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("production", "development", "testing")


class ConfigError(RuntimeError):
    """The configuration cannot be used: the app refuses to start."""


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the Flask configuration from the environment, then apply ``overrides``.

    Raises ConfigError when ``SECRET_KEY`` is missing in production or the
    environment name is unknown.
    """
    overrides = dict(overrides or {})
    env = overrides.pop("REGISTRY_ENV", None) or os.environ.get("REGISTRY_ENV", "production")
    if overrides.get("TESTING"):
        env = "testing"
    if env not in ENVIRONMENTS:
        raise ConfigError(f"REGISTRY_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")

    home = Path(overrides.pop("REGISTRY_HOME", None) or os.environ.get("REGISTRY_HOME") or "instance")
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)

    config: dict[str, Any] = {
        "REGISTRY_ENV": env,
        "REGISTRY_HOME": str(home),
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{home / 'registry.sqlite'}",
        "FILES_DIR": str(home / "files"),
        "INDEX_DIR": str(home / "indexes"),
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        "MAX_CONTENT_LENGTH": 50 * 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env == "production",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "BABEL_DEFAULT_LOCALE": "en",
        "LANGUAGES": ("en", "fr", "es"),
        "PER_PAGE": 20,
    }
    config.update(overrides)

    if not config["SECRET_KEY"]:
        if env == "production":
            raise ConfigError(
                "SECRET_KEY is not set. Set it to a long random value "
                "(e.g. python -c 'import secrets; print(secrets.token_hex(32))'), "
                "or set REGISTRY_ENV=development for a local demo."
            )
        config["SECRET_KEY"] = _development_secret(home)
    return config


def _development_secret(home: Path) -> str:
    """Return a random per-installation key kept in REGISTRY_HOME, so dev sessions survive restarts."""
    path = home / "dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
