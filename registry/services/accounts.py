"""User accounts: creation, passwords (argon2) and the session nonce."""

from __future__ import annotations

import secrets
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from .. import policy
from ..db import session
from ..errors import Forbidden, Invalid
from ..models import Party, User
from ..policy import Viewer
from ..vocab import ROLES

_hasher = PasswordHasher()
# Verifying against this keeps the time of a login for an unknown e-mail like that of a known one.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
MIN_PASSWORD = 12


def hash_password(password: str) -> str:
    """The argon2 hash of ``password``."""
    return _hasher.hash(password)


def create_user(
    viewer: Viewer,
    email: str,
    role: str,
    password: str,
    party_iso: str | None = None,
    **profile: str,
) -> User:
    """Create an active user. Raises Forbidden unless ``viewer`` manages users; Invalid on bad input."""
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
    if len(password) < MIN_PASSWORD:
        errors["password"] = [f"Use at least {MIN_PASSWORD} characters."]
    if errors:
        raise Invalid(errors)
    user = User(
        email=email,
        role=role,
        party_iso=party_iso.upper() if party_iso else None,
        password_hash=hash_password(password),
        **profile,
    )
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    """Replace the password and end every existing session of the user."""
    user.password_hash = hash_password(password)
    rotate_nonce(user)


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
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
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
    if user is None or not user.active or not secrets.compare_digest(user.session_nonce, nonce):
        return None
    return user
