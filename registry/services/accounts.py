"""User accounts: creation, passwords (argon2), the session nonce, deactivation and expiry."""

from __future__ import annotations

import datetime as dt
import secrets
import unicodedata

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from .. import clock, policy
from ..db import session
from ..errors import Forbidden, Invalid, NotFound
from ..models import Party, User
from ..policy import Viewer
from ..vocab import ROLES
from . import audit, passwords

# argon2id with RFC 9106's low-memory parameters; under testing, by default, argon2-cffi's cheapest
# ones (``ARGON2_PROFILE``, refused outside testing), so that the suite's thousands of sign-ins do not
# each cost a tenth of a second. A hash keeps its parameters: a cheap one would be rehashed at the
# next sign-in under the standard profile.
_HASHERS = {
    name: PasswordHasher.from_parameters(getattr(profiles, name))
    for name in ("RFC_9106_LOW_MEMORY", "CHEAPEST")
}
# Verifying against these keeps the time of a login for an unknown e-mail like that of a known one.
_DUMMY_HASH = {name: hasher.hash(secrets.token_hex(16)) for name, hasher in _HASHERS.items()}
MIN_PASSWORD = passwords.MIN_LENGTH


def _profile() -> str:
    return str(current_app.config.get("ARGON2_PROFILE", "RFC_9106_LOW_MEMORY"))


def _hasher() -> PasswordHasher:
    return _HASHERS[_profile()]


def hash_password(password: str) -> str:
    """The argon2 hash of ``password``."""
    return _hasher().hash(password)


def create_user(
    viewer: Viewer,
    email: str,
    role: str,
    password: str | None = None,
    party_iso: str | None = None,
    **profile: str,
) -> User:
    """Create an active user. Raises Forbidden unless ``viewer`` manages users; Invalid on bad input.

    Without ``password`` (an invited user) the account gets the hash of a random secret nobody
    knows: it cannot be signed in to until its owner sets a password through an invitation link.
    """
    if not policy.can(viewer, "manage_users"):
        raise Forbidden("manage_users")
    errors: dict[str, list[str]] = {}
    email = email.strip().lower()
    if not could_be_address(email):
        errors["email"] = ["Enter a valid e-mail address."]
    elif session.scalar(select(User).where(func.lower(User.email) == email)):
        errors["email"] = ["A user with this e-mail address already exists."]
    if role not in ROLES:
        errors["role"] = [f"Choose one of: {', '.join(ROLES)}."]
    if role == "party":
        if not party_iso:
            errors["party"] = ["A party user needs --party ISO."]
        elif session.get(Party, party_iso.upper()) is None:
            errors["party"] = [f"{party_iso} is not a CITES Party in the registry."]
    elif party_iso:
        errors["party"] = ["Only party users belong to a Party."]
    if password is not None:
        names = (profile.get("given_name", ""), profile.get("family_name", ""))
        problems = passwords.problems(password, email, names)
        if problems:
            errors["password"] = problems
    if errors:
        raise Invalid(errors)
    user = User(
        email=email,
        role=role,
        party_iso=party_iso.upper() if party_iso else None,
        password_hash=hash_password(password if password is not None else secrets.token_urlsafe(32)),
        **profile,
    )
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    """Replace the password and end every existing session of the user (no policy check: see below)."""
    user.password_hash = hash_password(password)
    rotate_nonce(user)


def password_problems(user: User, password: str) -> list[str]:
    """What the password policy (``services.passwords``) says against ``password`` for ``user``."""
    return passwords.problems(password, user.email, (user.given_name, user.family_name))


def choose_password(user: User, password: str, field: str = "password") -> None:
    """Set a password the user chose (reset, invitation, change), after the policy accepts it.

    Ends every existing session of the user. Raises Invalid, with the messages under ``field``.
    """
    problems = password_problems(user, password)
    if problems:
        raise Invalid({field: problems})
    set_password(user, password)
    audit.log(user, "password_set")


def change_password(user: User, current: str, new: str) -> None:
    """Change the password of ``user``, who must give the ``current`` one; ends every session.

    Raises Invalid with a message under ``current_password`` or ``new_password``.
    """
    try:
        _hasher().verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise Invalid({"current_password": [_l("The current password is not correct.")]}) from None
    choose_password(user, new, field="new_password")


def check_password(user: User, password: str) -> bool:
    """Whether ``password`` is the password of ``user`` (for confirming a sensitive action)."""
    try:
        return _hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def set_active(viewer: Viewer, user: User, active: bool) -> None:
    """Deactivate (every session of the user ends at once) or reactivate ``user``; audited.

    Raises Forbidden unless ``viewer`` manages users, and Invalid when the viewer would deactivate
    their own account (the Secretariat must not lock itself out).
    """
    if not policy.can(viewer, "manage_users"):
        raise Forbidden("manage_users")
    if not active and getattr(viewer, "id", None) == user.id:
        raise Invalid({"active": [_l("You cannot deactivate your own account.")]})
    user.active = active
    if not active:
        rotate_nonce(user)
    audit.log(viewer, "user_deactivated" if not active else "user_reactivated", target=user.email)


def set_expiry(viewer: Viewer, user: User, expires_on: dt.date | None) -> None:
    """End ``user``'s access at the start (UTC) of ``expires_on``, or never (None); audited.

    Raises Forbidden unless ``viewer`` manages users; Invalid for a date that has passed (deactivate
    instead) or for the viewer's own account.
    """
    if not policy.can(viewer, "manage_users"):
        raise Forbidden("manage_users")
    if getattr(viewer, "id", None) == user.id:
        raise Invalid({"expires_on": [_l("You cannot set an expiry on your own account.")]})
    if expires_on is not None and expires_on <= clock.utcnow().date():
        raise Invalid({"expires_on": [_l("Choose a date after today.")]})
    user.expires_at = dt.datetime.combine(expires_on, dt.time()) if expires_on else None
    session.flush()
    expiry = expires_on.isoformat() if expires_on else None
    audit.log(viewer, "user_expiry", target=user.email, expires_on=expiry)


def list_users(viewer: Viewer) -> list[User]:
    """Every account, by e-mail address. Raises Forbidden unless ``viewer`` manages users."""
    if not policy.can(viewer, "manage_users"):
        raise Forbidden("manage_users")
    return list(session.scalars(select(User).order_by(User.email)))


def get_user(viewer: Viewer, user_id: int) -> User:
    """The account ``user_id``. Raises Forbidden unless ``viewer`` manages users, NotFound if none."""
    if not policy.can(viewer, "manage_users"):
        raise Forbidden("manage_users")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(str(user_id))
    return user


def by_email(email: str) -> User | None:
    """The account of ``email`` (normalised), or None; an impossible address is never looked up."""
    email = email.strip().lower()
    if not could_be_address(email):
        return None
    return session.scalar(select(User).where(func.lower(User.email) == email))


def could_be_address(email: str) -> bool:
    """Whether ``email`` has the shape of an address: an @, at most 254 characters, nothing invisible.

    Spaces, control characters (NUL among them), line separators and other invisible characters are
    never part of an address a user has, and some databases refuse a NUL in a query outright.
    """
    return "@" in email and len(email) <= 254 and all(unicodedata.category(c)[0] not in "CZ" for c in email)


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None (in about the same time either way).

    An ``email`` that cannot be an address is never looked up: it is refused like an unknown one.
    """
    email = email.strip().lower()
    user = None
    if could_be_address(email):
        user = session.scalar(select(User).where(func.lower(User.email) == email))
    try:
        hasher = _hasher()
        hasher.verify(user.password_hash if user else _DUMMY_HASH[_profile()], password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active:
        return None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def rotate_nonce(user: User) -> None:
    """Give the user a new session nonce: every login cookie issued before stops working."""
    user.session_nonce = secrets.token_urlsafe(24)
    session.flush()


def load_session_user(identity: str) -> User | None:
    """The active user named by a login cookie's ``id:nonce``, or None if the nonce has rotated."""
    user_id, _, nonce = identity.partition(":")
    if not user_id.isdigit() or not nonce:
        return None
    user = session.get(User, int(user_id))
    # ``is_active`` is false once deactivated or past ``expires_at``: an expired session is anonymous.
    if user is None or not user.is_active or not secrets.compare_digest(user.session_nonce, nonce):
        return None
    return user
