"""Signing in and out. The login cookie carries the user's session nonce, rotated at logout."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from . import db
from .models import User
from .policy import Viewer
from .services import accounts, audit

bp = Blueprint("auth", __name__)
login_manager = LoginManager()


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
    """Show the login form; sign the user in on valid credentials."""
    form = LoginForm()
    next_url = safe_next(request.values.get("next"))
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            session.clear()
            login_user(user)
            audit.log(user, "login")
            return redirect(next_url or url_for("public.home"))
        form.password.errors.append(gettext("The e-mail address or password is not correct."))
    if form.is_submitted():
        # Every refused attempt is a failed login, a form that did not validate (no password, an
        # address too long) included. The refusal is answered with 400, which commits nothing: the
        # trail entry commits here.
        audit.log(None, "login_failed", actor=form.email.data or "")
        db.commit()
    status = 400 if form.is_submitted() else 200
    return render_template("auth/login.html", form=form, next_url=next_url), status


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
    """Set up flask-login."""
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please sign in to see this page.")
    login_manager.session_protection = "basic"

    @app.before_request
    def _remember_client() -> None:
        # The audit trail records where an action came from; services read it from the session.
        db.session.info["remote_addr"] = request.remote_addr or ""

    @login_manager.user_loader
    def _load(identity: str) -> User | None:
        return accounts.load_session_user(identity)
