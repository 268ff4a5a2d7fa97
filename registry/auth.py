"""Signing in and out. The login cookie carries the user's session nonce, rotated at logout.

Sign-in attempts are throttled (``services.throttle``) per account and per client address; a
browser that signed in to an account before carries a signed device cookie and is counted on its
own, so that nobody can keep the account's owner out by failing on purpose. A sign-in lasts at most
``SESSION_LIFETIME_HOURS``, however active.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from . import db
from .models import User
from .policy import Viewer
from .services import accounts, audit, throttle
from .services import totp as second_factor

bp = Blueprint("auth", __name__)
login_manager = LoginManager()

# The cookie of a browser that signed in to an account: signed, naming the account's throttle key
# and the browser's own, and sent only to the sign-in form.
DEVICE_COOKIE = "sign_in_device"
DEVICE_DAYS = 180
# The session key of a sign-in whose password was right and whose code is awaited, and how long
# the code may take.
PENDING = "pending_sign_in"
PENDING_SECONDS = 5 * 60


class CodeForm(FlaskForm):
    """The six-digit code of an authenticator app, with the CSRF token."""

    code = StringField(
        lazy_gettext("Code from your authenticator app"), validators=[DataRequired(), Length(max=20)]
    )


class LoginForm(FlaskForm):
    """E-mail and password, with the CSRF token."""

    email = EmailField(lazy_gettext("E-mail address"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=1000)])


def current_viewer() -> Viewer | None:
    """The signed-in user, or None for an anonymous visitor: what views pass to services."""
    return current_user._get_current_object() if current_user.is_authenticated else None  # type: ignore[return-value]


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    """Show the login form; sign the user in on valid credentials.

    Every attempt, a form that does not validate (no password, an address too long) included, is
    counted by the throttle before the password is checked, and committed at once so that every
    worker counts it; an account, address or browser that must wait is answered 429 (TooManyAttempts)
    without its password being checked or anything being written. A refusal is answered with 400,
    a page the view returns, so the request commits its trail entry like any other.
    """
    form = LoginForm()
    next_url = safe_next(request.values.get("next"))
    if not form.is_submitted():
        return render_template("auth/login.html", form=form, next_url=next_url)
    email = form.email.data or ""
    account = throttle.account_key(email, _limit("ACCOUNT"))
    counts = throttle.take(_sign_in_keys(account))
    db.commit()
    user = accounts.authenticate(email, form.password.data or "") if form.validate() else None
    if user is not None and user.totp_secret:
        # The password was right; the sign-in is not done until the code is. The attempt stays
        # counted (a right password must not reset the count that guards the codes) and is given
        # back once the code is right. The session only names the account, bound to its nonce.
        session.clear()
        session[PENDING] = {
            "user": user.get_id(),
            "at": int(time.time()),
            "next": next_url,
            "failed_before": counts[0].failures - 1,
        }
        return redirect(url_for("auth.totp"))
    if user is not None:
        return _finish_sign_in(user, account, [counts], next_url, counts[0].failures - 1)
    if not form.errors:
        form.password.errors.append(gettext("The e-mail address or password is not correct."))
    audit.log_failed_sign_in(email, counts)
    return render_template("auth/login.html", form=form, next_url=next_url), 400


def _finish_sign_in(
    user: User,
    account: throttle.Key,
    counts: list[list[throttle.Count]],
    next_url: str | None,
    failed_before: int,
) -> Response:
    """Sign ``user`` in (a new session), give back the attempts ``counts`` and trust this browser."""
    for attempt in counts:
        throttle.succeeded(attempt)
    session.clear()
    login_user(user)
    session["signed_in_at"] = int(time.time())
    audit.log(user, "login", **({"failed_attempts": failed_before} if failed_before > 0 else {}))
    response = redirect(next_url or url_for("public.home"))
    _trust_browser(response, account)
    return response


def _pending_user() -> User | None:
    """The account whose password was given in this session, waiting for its code, or None.

    None too once ``PENDING_SECONDS`` have passed, or once the account's nonce has rotated (its
    password changed, it was deactivated or signed out everywhere) or it expired.
    """
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or not isinstance(pending.get("at"), int):
        return None
    if not 0 <= time.time() - pending["at"] < PENDING_SECONDS:
        return None
    user = accounts.load_session_user(str(pending.get("user", "")))
    return user if user is not None and user.totp_secret else None


@bp.route("/login/code", methods=["GET", "POST"])
def totp():  # type: ignore[no-untyped-def]
    """The second step of signing in to an account with a second factor: its current code.

    Each attempt is counted by the throttle on the same keys as a password (the account, the
    address, or the trusted browser), so the million codes cannot be tried: after a few failures
    each further attempt waits. A code is refused if it, or a later one, was already used.
    """
    user = _pending_user()
    if user is None:
        session.pop(PENDING, None)
        flash(gettext("Please sign in again."))
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if not form.is_submitted():
        return render_template("auth/totp.html", form=form)
    account = throttle.account_key(user.email, _limit("ACCOUNT"))
    counts = throttle.take(_sign_in_keys(account))
    db.commit()
    if form.validate() and second_factor.verify(user, form.code.data or ""):
        pending = session[PENDING]
        # Both attempts are given back: the password's and this code's.
        address_only = [count for count in counts if count.key.scope == "address"]
        next_url = safe_next(pending.get("next"))
        failed_before = pending.get("failed_before", 0)
        return _finish_sign_in(user, account, [counts, address_only], next_url, failed_before)
    if not form.errors:
        form.code.errors.append(second_factor.WRONG_CODE)
    audit.log_failed_sign_in(user.email, counts)
    return render_template("auth/totp.html", form=form), 400


def _limit(kind: str) -> throttle.Limit:
    """The throttle's limit for ``kind`` ("ACCOUNT" or "ADDRESS") from the configuration."""
    config = current_app.config
    return throttle.Limit(
        config[f"SIGN_IN_{kind}_FAILURES"], config[f"SIGN_IN_{kind}_MAX_WAIT"], config["SIGN_IN_FORGET_AFTER"]
    )


def _sign_in_keys(account: throttle.Key) -> list[throttle.Key]:
    """The counters an attempt to sign in to ``account`` is taken from.

    A browser that signed in to this account before is counted on its own; any other attempt on
    the account's counter and on the client address's.
    """
    browser = trusted_browser(account)
    if browser is not None:
        return [throttle.device_key(browser, account.limit)]
    return [account, throttle.address_key(request.remote_addr or "", _limit("ADDRESS"))]


def _device_signer() -> URLSafeTimedSerializer:
    """Signs and checks device cookies with the application's key (a salt of their own)."""
    return URLSafeTimedSerializer(current_app.secret_key, salt="sign-in-device")  # type: ignore[arg-type]


def trusted_browser(account: throttle.Key) -> str | None:
    """The browser's device token if its cookie says it signed in to ``account`` before, else None."""
    cookie = request.cookies.get(DEVICE_COOKIE)
    if not cookie:
        return None
    try:
        name, token = _device_signer().loads(cookie, max_age=DEVICE_DAYS * 24 * 3600)
    except (BadSignature, TypeError, ValueError):
        return None
    return token if name == account.name and isinstance(token, str) else None


def _trust_browser(response: Response, account: throttle.Key) -> None:
    """Give the browser that just signed in to ``account`` its device cookie (keeping its token, if any)."""
    token = trusted_browser(account) or secrets.token_urlsafe(16)
    response.set_cookie(
        DEVICE_COOKIE,
        _device_signer().dumps([account.name, token]),
        max_age=DEVICE_DAYS * 24 * 3600,
        path=url_for("auth.login"),
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


@bp.route("/logout", methods=["POST"])
@login_required
def logout():  # type: ignore[no-untyped-def]
    """Sign out everywhere: the nonce rotates, so any copy of the old cookie stops working."""
    accounts.rotate_nonce(current_user._get_current_object())
    logout_user()
    session.clear()
    flash(gettext("You are signed out."))
    return redirect(url_for("public.home"))


def init_app(app: Flask) -> None:
    """Set up flask-login, the client's address for the trail, and the absolute lifetime of a sign-in."""
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please sign in to see this page.")
    login_manager.session_protection = "basic"

    @app.before_request
    def _remember_client() -> None:
        # The audit trail records where an action came from; services read it from the session.
        db.session.info["remote_addr"] = request.remote_addr or ""

    @app.before_request
    def _end_old_sign_ins() -> None:
        # An absolute lifetime: a forgotten or stolen session cookie stops working after it, however
        # active. A sign-in without its time (or from the future) is ended too.
        if request.endpoint == "static" or "_user_id" not in session:
            return
        started = session.get("signed_in_at")
        age = time.time() - started if isinstance(started, int | float) else -1.0
        if not 0 <= age < app.config["SESSION_LIFETIME_HOURS"] * 3600:
            logout_user()
            session.clear()
            flash(gettext("Your sign-in has ended. Please sign in again."))

    @login_manager.user_loader
    def _load(identity: str) -> User | None:
        return accounts.load_session_user(identity)
