"""Configuration read from the environment.

``REGISTRY_HOME`` holds the SQLite file, the search indexes and the uploaded files;
``DATABASE_URL`` overrides the SQLite default; ``SECRET_KEY`` is required outside
development and tests; ``REGISTRY_ENV`` is ``production`` (default), ``development`` or ``testing``.
``MAIL_SERVER`` (with ``MAIL_PORT``, ``MAIL_USERNAME``, ``MAIL_PASSWORD``, ``MAIL_STARTTLS``,
``MAIL_SSL``, ``MAIL_SENDER``, ``MAIL_TIMEOUT``) sends e-mail by SMTP; unset, messages are written
as ``.eml`` files into ``MAIL_OUTBOX`` (default ``REGISTRY_HOME/outbox``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

# Memory (MB) each tier writer of a full rebuild may fill with postings before spilling to disk.
REINDEX_MEMORY_MB = 2048

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
        "REINDEX_MEMORY_MB": _env_number("REINDEX_MEMORY_MB", int, REINDEX_MEMORY_MB),
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        # The whole request (Werkzeug answers 413 beyond it: a form carries up to three uploads),
        # and each uploaded file (storage.store).
        "MAX_CONTENT_LENGTH": 160 * 1024 * 1024,
        "MAX_FILE_SIZE": 50 * 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env == "production",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "BABEL_DEFAULT_LOCALE": "en",
        "LANGUAGES": ("en", "fr", "es"),
        "PER_PAGE": 20,
        # The registry's address as users reach it, for links in e-mails (sent with no request).
        "PUBLIC_URL": os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000"),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER") or None,
        "MAIL_PORT": _env_number("MAIL_PORT", int, 25),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        "MAIL_STARTTLS": _env_flag("MAIL_STARTTLS"),
        "MAIL_SSL": _env_flag("MAIL_SSL"),
        "MAIL_SENDER": os.environ.get("MAIL_SENDER") or "registry@localhost",
        "MAIL_TIMEOUT": _env_number("MAIL_TIMEOUT", float, 10.0),
        "MAIL_OUTBOX": os.environ.get("MAIL_OUTBOX") or str(home / "outbox"),
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


def _env_flag(name: str) -> bool:
    """Read a yes/no setting: ``1`` or ``true`` (any case) is yes, anything else no."""
    return os.environ.get(name, "").strip().lower() in ("1", "true")


def _env_number(name: str, kind: type[int] | type[float], default: int | float) -> int | float:
    """Read a number from the environment; raise ConfigError when it is not one."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None


def _development_secret(home: Path) -> str:
    """Return a random per-installation key kept in REGISTRY_HOME, so dev sessions survive restarts."""
    path = home / "dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
