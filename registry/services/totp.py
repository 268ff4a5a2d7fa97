"""The second factor: time-based one-time codes (TOTP, RFC 6238: SHA-1, 6 digits, 30 s steps).

A code is accepted for the current step and one step either side (a phone's clock may be a little
off), and only for a step later than the last one accepted (``User.totp_last_step``), so a code
seen over someone's shoulder or replayed from a log cannot be used again. Set-up gives a fresh
secret that only becomes the account's once a code made from it has been accepted. Attempts are
throttled by the caller (``registry.auth``, ``services.throttle``), not here.
"""

from __future__ import annotations

import datetime as dt
import io

import pyotp
import segno
from flask_babel import lazy_gettext as _l

from .. import clock
from ..db import session
from ..errors import Invalid
from ..models import User
from . import audit

ISSUER = "CITES seized live-animal registry"
STEP = 30
WRONG_CODE = _l("This code is not correct, or it was already used. Enter the newest code of your app.")


def new_secret() -> str:
    """A fresh random base32 secret (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32(32)


def provisioning_uri(user: User, secret: str) -> str:
    """The ``otpauth://`` address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> bytes:
    """The QR code of ``uri`` as a standalone SVG image (no script, no style element)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=5, border=2, xmldecl=True, svgns=True)
    return buffer.getvalue()


def required(user: User) -> bool:
    """Whether ``user`` must have a second factor before doing anything (the Secretariat must)."""
    return user.role == "secretariat"


def _matching_step(secret: str, code: str, after: int | None) -> int | None:
    """The step within one of now whose code is ``code`` and which is later than ``after``, or None."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now = clock.utcnow()  # naive UTC, so the step follows a frozen or moved test clock
    current = int(now.replace(tzinfo=dt.UTC).timestamp()) // STEP
    for step in (current - 1, current, current + 1):
        if after is not None and step <= after:
            continue
        # pyotp compares in constant time (hmac.compare_digest).
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


def verify(user: User, code: str) -> bool:
    """Whether ``code`` is a valid, unused code of ``user``'s second factor; if so it is used up."""
    if not user.totp_secret:
        return False
    step = _matching_step(user.totp_secret, code, user.totp_last_step)
    if step is None:
        return False
    user.totp_last_step = step
    session.flush()
    return True


def enable(user: User, secret: str, code: str) -> None:
    """Make ``secret`` the second factor of ``user`` once ``code`` shows the app has it; audited.

    Raises Invalid (under ``code``) when the code does not match.
    """
    step = _matching_step(secret, code, None)
    if step is None:
        raise Invalid({"code": [WRONG_CODE]})
    user.totp_secret = secret
    user.totp_last_step = step
    session.flush()
    audit.log(user, "totp_enabled")


def disable(user: User) -> None:
    """Remove the second factor of ``user``; audited. The caller checks the password first."""
    user.totp_secret = None
    user.totp_last_step = None
    session.flush()
    audit.log(user, "totp_disabled")
