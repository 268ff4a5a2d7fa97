"""Configuration read from the environment.

``REGISTRY_HOME`` holds the SQLite file, the search indexes and the uploaded files;
``DATABASE_URL`` overrides the SQLite default; ``SECRET_KEY`` is required outside
development and tests; ``REGISTRY_ENV`` is ``production`` (default), ``development`` or ``testing``.
``MAIL_SERVER`` (with ``MAIL_PORT``, ``MAIL_USERNAME``, ``MAIL_PASSWORD``, ``MAIL_STARTTLS``,
``MAIL_SSL``, ``MAIL_SENDER``, ``MAIL_TIMEOUT``) sends e-mail by SMTP; unset, messages are written
as ``.eml`` files into ``MAIL_OUTBOX`` (default ``REGISTRY_HOME/outbox``).
``SESSION_LIFETIME_HOURS`` ends every sign-in after that long, however active; the ``SIGN_IN_*``
numbers set how many failed sign-ins an account or a client address may make before it waits, and
for how long at most (``registry.services.throttle``). ``TRUSTED_PROXIES`` is the number of reverse
proxies in front of the registry whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed.
``ACCESS_REQUEST_RETENTION_DAYS`` is how long an access request keeps its personal data.
The ``RATE_LIMIT_*`` settings are the rate limits (``registry.ratelimit``), each one or more limits
such as ``120/minute`` or ``10/minute;60/hour``, counted per client address (and a sign-in also per
account): ``RATE_LIMIT_LOGIN``, ``RATE_LIMIT_LOGIN_ACCOUNT``, ``RATE_LIMIT_RESET``,
``RATE_LIMIT_ACCESS_REQUEST``, ``RATE_LIMIT_UPLOAD``, ``RATE_LIMIT_SEARCH``, ``RATE_LIMIT_BROWSE``,
``RATE_LIMIT_EXPORT``. ``PAGE_CACHE_MB`` and ``PAGE_CACHE_SECONDS`` size each worker's cache of the
pages anonymous visitors see (``registry.pagecache``; 0 MB turns it off), which the workers of a node
share through ``PAGE_CACHE_DIR`` (default ``REGISTRY_HOME/pages``).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Any

import limits

# Memory (MB) each tier writer of a full rebuild may fill with postings before spilling to disk.
REINDEX_MEMORY_MB = 2048

# An absolute limit on a sign-in: after it, the user signs in again, however active.
SESSION_LIFETIME_HOURS = 12
# Failed sign-ins before each further attempt waits (1 s, doubling), and the longest wait, in
# seconds: per account (anyone may make an account wait, so its wait stays short, and the browser
# its owner signed in with before is counted on its own) and per client address.
SIGN_IN_ACCOUNT_FAILURES = 5
SIGN_IN_ACCOUNT_MAX_WAIT = 15 * 60
SIGN_IN_ADDRESS_FAILURES = 20
SIGN_IN_ADDRESS_MAX_WAIT = 60 * 60
# A run of failures is forgotten once this many seconds have passed, after its last wait, without
# one. As long as the longest wait, so that an account does not start afresh while its attacker's
# address waits.
SIGN_IN_FORGET_AFTER = 60 * 60
# Days an access request is kept with its personal data before it is anonymised (its status stays,
# for statistics): ``flask --app registry access-requests anonymise``.
ACCESS_REQUEST_RETENTION_DAYS = 365

# Rate limits (``registry.ratelimit``), per client address unless said: how many requests of each
# kind are answered in a window before the client is answered 429 until the window ends.
# Sign-in attempts whatever their outcome (a browser that signed in to the account before is not
# counted per address), and per account (or that browser, counted on its own).
RATE_LIMIT_LOGIN = "30/minute;300/hour"
RATE_LIMIT_LOGIN_ACCOUNT = "10/minute;60/hour"
# Password-reset and access requests (each sends an e-mail).
RATE_LIMIT_RESET = "10/hour"
RATE_LIMIT_ACCESS_REQUEST = "10/hour"
# Submission form posts that carry files (up to three each).
RATE_LIMIT_UPLOAD = "60/hour"
# Searches and browse pages (each runs a query and counts facets).
RATE_LIMIT_SEARCH = "120/minute"
RATE_LIMIT_BROWSE = "120/minute"
# Exports (issue 15).
RATE_LIMIT_EXPORT = "30/hour"
# Each setting's default, by name.
RATE_LIMIT_SETTINGS = {
    "RATE_LIMIT_LOGIN": RATE_LIMIT_LOGIN,
    "RATE_LIMIT_LOGIN_ACCOUNT": RATE_LIMIT_LOGIN_ACCOUNT,
    "RATE_LIMIT_RESET": RATE_LIMIT_RESET,
    "RATE_LIMIT_ACCESS_REQUEST": RATE_LIMIT_ACCESS_REQUEST,
    "RATE_LIMIT_UPLOAD": RATE_LIMIT_UPLOAD,
    "RATE_LIMIT_SEARCH": RATE_LIMIT_SEARCH,
    "RATE_LIMIT_BROWSE": RATE_LIMIT_BROWSE,
    "RATE_LIMIT_EXPORT": RATE_LIMIT_EXPORT,
}

ENVIRONMENTS = ("production", "development", "testing")
# The random key of a development home (``REGISTRY_ENV=development`` without ``SECRET_KEY``).
DEV_SECRET_FILE = "dev-secret-key"
# Settings that must be whole numbers of at least 1.
_POSITIVE = (
    "SESSION_LIFETIME_HOURS",
    "SIGN_IN_ACCOUNT_FAILURES",
    "SIGN_IN_ACCOUNT_MAX_WAIT",
    "SIGN_IN_ADDRESS_FAILURES",
    "SIGN_IN_ADDRESS_MAX_WAIT",
    "SIGN_IN_FORGET_AFTER",
    "ACCESS_REQUEST_RETENTION_DAYS",
    "RESET_TOKEN_HOURS",
    "INVITE_TOKEN_HOURS",
)


class ConfigError(RuntimeError):
    """The configuration cannot be used: the app refuses to start."""


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the Flask configuration from the environment, then apply ``overrides``.

    Raises ConfigError when ``SECRET_KEY`` is missing in production, the environment name is
    unknown or a number is out of range.
    """
    overrides = dict(overrides or {})
    home = Path(overrides.pop("REGISTRY_HOME", None) or os.environ.get("REGISTRY_HOME") or "instance")
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)

    env = overrides.pop("REGISTRY_ENV", None) or os.environ.get("REGISTRY_ENV")
    if env is None:
        # A home that ``make run`` made keeps its development key: the commands a user then types in
        # the same folder run in development too. With a SECRET_KEY given, it is production.
        secret_given = overrides.get("SECRET_KEY") or os.environ.get("SECRET_KEY")
        env = "development" if not secret_given and (home / DEV_SECRET_FILE).exists() else "production"
    if overrides.get("TESTING"):
        env = "testing"
    if env not in ENVIRONMENTS:
        raise ConfigError(f"REGISTRY_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")

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
        # Every cookie (the session, flask-login's, the language and the sign-in device cookies) is
        # Secure in production, which is served over HTTPS only (with HSTS).
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env == "production",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": env == "production",
        "STRICT_TRANSPORT_SECURITY": env == "production",
        # argon2-cffi's parameters for new password hashes; the suite's own cheap ones under testing only.
        "ARGON2_PROFILE": "CHEAPEST" if env == "testing" else "RFC_9106_LOW_MEMORY",
        "SESSION_LIFETIME_HOURS": _env_number("SESSION_LIFETIME_HOURS", int, SESSION_LIFETIME_HOURS),
        "SIGN_IN_ACCOUNT_FAILURES": _env_number("SIGN_IN_ACCOUNT_FAILURES", int, SIGN_IN_ACCOUNT_FAILURES),
        "SIGN_IN_ACCOUNT_MAX_WAIT": _env_number("SIGN_IN_ACCOUNT_MAX_WAIT", int, SIGN_IN_ACCOUNT_MAX_WAIT),
        "SIGN_IN_ADDRESS_FAILURES": _env_number("SIGN_IN_ADDRESS_FAILURES", int, SIGN_IN_ADDRESS_FAILURES),
        "SIGN_IN_ADDRESS_MAX_WAIT": _env_number("SIGN_IN_ADDRESS_MAX_WAIT", int, SIGN_IN_ADDRESS_MAX_WAIT),
        "SIGN_IN_FORGET_AFTER": SIGN_IN_FORGET_AFTER,
        "TRUSTED_PROXIES": _env_number("TRUSTED_PROXIES", int, 0),
        # Hours a password-reset link and an invitation link (set a first password) keep working.
        "RESET_TOKEN_HOURS": _env_number("RESET_TOKEN_HOURS", int, 1),
        "INVITE_TOKEN_HOURS": _env_number("INVITE_TOKEN_HOURS", int, 72),
        "ACCESS_REQUEST_RETENTION_DAYS": _env_number(
            "ACCESS_REQUEST_RETENTION_DAYS", int, ACCESS_REQUEST_RETENTION_DAYS
        ),
        "WTF_CSRF_TIME_LIMIT": None,
        "BABEL_DEFAULT_LOCALE": "en",
        "LANGUAGES": ("en", "fr", "es"),
        "PER_PAGE": 20,
        # Each worker keeps anonymous visitors' pages (``registry.pagecache``) in this much memory, for
        # at most this long; any change to what pages show ends them at once. 0 MB turns it off.
        "PAGE_CACHE_MB": _env_number("PAGE_CACHE_MB", float, 32.0),
        "PAGE_CACHE_SECONDS": _env_number("PAGE_CACHE_SECONDS", float, 300.0),
        # ... and shares them with the node's other workers through this folder.
        "PAGE_CACHE_DIR": str(home / "pages"),
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
        # "courier": a thread of each worker delivers the queue; "inline": right after commit (tests).
        "MAIL_DELIVERY": "inline" if env == "testing" else "courier",
        # "applier": a thread of each worker applies index jobs; "inline": right after commit (tests).
        "INDEX_APPLY": "inline" if env == "testing" else "applier",
    }
    config.update({name: os.environ.get(name) or default for name, default in RATE_LIMIT_SETTINGS.items()})
    config.update(overrides)
    for name in RATE_LIMIT_SETTINGS:
        _check_rate_limit(name, config[name])
    for name in _POSITIVE:
        if config[name] < 1:
            raise ConfigError(f"{name} must be at least 1, not {config[name]}")
    if config["ARGON2_PROFILE"] not in ("RFC_9106_LOW_MEMORY", "CHEAPEST") or (
        config["ARGON2_PROFILE"] == "CHEAPEST" and env != "testing"
    ):
        raise ConfigError("ARGON2_PROFILE is RFC_9106_LOW_MEMORY (CHEAPEST is for the test suite alone)")
    if config["TRUSTED_PROXIES"] < 0:
        raise ConfigError(f"TRUSTED_PROXIES must be 0 or more, not {config['TRUSTED_PROXIES']}")
    # flask-login's remember-me cookie (never issued today) lasts no longer than a sign-in.
    config["REMEMBER_COOKIE_DURATION"] = dt.timedelta(hours=config["SESSION_LIFETIME_HOURS"])

    if not config["SECRET_KEY"]:
        if env == "production":
            raise ConfigError(
                "SECRET_KEY is not set. Set it to a long random value "
                "(e.g. python -c 'import secrets; print(secrets.token_hex(32))'), "
                "or set REGISTRY_ENV=development for a local demo."
            )
        config["SECRET_KEY"] = _development_secret(home)
    return config


def _check_rate_limit(name: str, value: object) -> None:
    """Raise ConfigError unless ``value`` is one or more limits such as ``10/minute;60/hour``."""
    try:
        if not isinstance(value, str) or not limits.parse_many(value):
            raise ValueError(value)
    except ValueError:
        example = "'120/minute' or '10/minute;60/hour'"
        raise ConfigError(f"{name} must be limits such as {example}, not {value!r}") from None


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
    path = home / DEV_SECRET_FILE
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
