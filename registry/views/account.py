"""The account of whoever is signed in, and the one-time links that set a password.

* ``/account``: who I am, my role, Party and access expiry; change of password, the second factor
  (set-up and removal), signing out every other browser.
* ``/password/reset``: ask for a reset link. The page, its status and the work done are the same
  whether or not the address has an account, so the form tells nobody who has one.
* ``/password/<token>``: set a new password with a reset or invitation link (``services.tokens``).

A Secretariat account must have a second factor: until it has one, every page but its set-up (and
signing out) sends it there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from .. import mail
from ..errors import Invalid
from ..models import User
from ..services import accounts, audit, tokens
from ..services import totp as second_factor

bp = Blueprint("account", __name__)

# What a Secretariat account without a second factor may still reach.
_BEFORE_SECOND_FACTOR = {"static", "account.totp_setup", "account.totp_qr", "auth.logout"}
# The session key of the random salt from which a second factor being set up is derived.
_SETUP_SALT = "totp_setup"


class ResetRequestForm(FlaskForm):
    """The e-mail address of the account whose password is forgotten."""

    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Length(max=254)])


class NewPasswordForm(FlaskForm):
    """A new password (the policy is checked by the service, messages by the field)."""

    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=1000)])


class ChangePasswordForm(NewPasswordForm):
    """The current password and a new one."""

    current_password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=1000)])


class ConfirmForm(FlaskForm):
    """The current password, to confirm removing the second factor."""

    confirm_password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=1000)])


class CodeForm(FlaskForm):
    """A code of the authenticator app being set up."""

    code = StringField(_l("Code from your authenticator app"), validators=[DataRequired(), Length(max=20)])


@bp.before_app_request
def _second_factor_first() -> ResponseReturnValue | None:
    """Send a signed-in Secretariat account without a second factor to its set-up, whatever it asks."""
    if request.endpoint in _BEFORE_SECOND_FACTOR or not current_user.is_authenticated:
        return None
    if second_factor.required(current_user) and not current_user.totp_secret:
        return redirect(url_for("account.totp_setup"))
    return None


def _me() -> User:
    """The signed-in user (the views below are all ``login_required``)."""
    return current_user._get_current_object()  # type: ignore[no-any-return]


def _stay_signed_in(user: User) -> None:
    """After the nonce rotated (every other session ended), keep this browser signed in."""
    started = session.get("signed_in_at")
    login_user(user)
    session["signed_in_at"] = started


def _field_errors(form: FlaskForm, exc: Invalid) -> None:
    """Put the service's messages next to the fields they name."""
    for name, messages in exc.messages.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, *messages]


# The account page ---------------------------------------------------------------------------------


def _page(status: int = 200, **forms: FlaskForm) -> ResponseReturnValue:
    user = _me()
    context = {
        "password_form": ChangePasswordForm(),
        "remove_form": ConfirmForm(),
        **forms,
    }
    return render_template(
        "account/page.html", user=user, required=second_factor.required(user), **context
    ), status


@bp.get("/account")
@login_required
def page() -> ResponseReturnValue:
    """Who I am, my role, Party and access expiry; forms to change the password and the second factor."""
    return _page()


@bp.post("/account/password")
@login_required
def change_password() -> ResponseReturnValue:
    """Change my password (the current one required); every other browser is signed out."""
    user = _me()
    form = ChangePasswordForm()
    if form.validate():
        try:
            accounts.change_password(user, form.current_password.data or "", form.new_password.data or "")
        except Invalid as exc:
            _field_errors(form, exc)
        else:
            _stay_signed_in(user)
            flash(gettext("Your password has been changed. Every other browser has been signed out."))
            return redirect(url_for("account.page"))
    return _page(422, password_form=form)


@bp.post("/account/sign-out-others")
@login_required
def sign_out_others() -> ResponseReturnValue:
    """End every session of mine but this one (a browser left signed in elsewhere, a copied cookie)."""
    user = _me()
    accounts.rotate_nonce(user)
    audit.log(user, "signed_out_everywhere")
    _stay_signed_in(user)
    flash(gettext("Every other browser has been signed out."))
    return redirect(url_for("account.page"))


# The second factor ---------------------------------------------------------------------------------


def _setup_secret(user: User) -> str:
    """The secret being set up in this session: derived from the application key, the user and a
    random salt kept in the session, so the session cookie (signed, not encrypted) never holds it."""
    salt = session.get(_SETUP_SALT)
    if not isinstance(salt, str):
        salt = session[_SETUP_SALT] = secrets.token_urlsafe(16)
    key = str(current_app.secret_key).encode()
    digest = hmac.new(
        key, f"totp-setup:{user.id}:{user.session_nonce}:{salt}".encode(), hashlib.sha256
    ).digest()
    return base64.b32encode(digest[:20]).decode()


@bp.route("/account/second-factor", methods=["GET", "POST"])
@login_required
def totp_setup() -> ResponseReturnValue:
    """Set up the second factor: the secret as text and as a QR code; enabled once a code is right."""
    user = _me()
    if user.totp_secret:
        return redirect(url_for("account.page"))
    secret = _setup_secret(user)
    form = CodeForm()
    status = 200
    if form.is_submitted():
        status = 422
        if form.validate():
            try:
                second_factor.enable(user, secret, form.code.data or "")
            except Invalid as exc:
                _field_errors(form, exc)
            else:
                session.pop(_SETUP_SALT, None)
                flash(gettext("Your second factor is on: signing in now also asks for a code."))
                return redirect(url_for("account.page"))
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render_template(
        "account/totp_setup.html", form=form, secret=grouped, required=second_factor.required(user)
    ), status


@bp.get("/account/second-factor/qr.svg")
@login_required
def totp_qr() -> Response:
    """The QR code of the secret being set up, as an SVG image of this site (the CSP allows it)."""
    user = _me()
    svg = second_factor.qr_svg(second_factor.provisioning_uri(user, _setup_secret(user)))
    return Response(svg, mimetype="image/svg+xml")


@bp.post("/account/second-factor/remove")
@login_required
def totp_disable() -> ResponseReturnValue:
    """Remove the second factor (the current password required); the Secretariat may not."""
    user = _me()
    form = ConfirmForm()
    if second_factor.required(user) or not user.totp_secret:
        flash(gettext("The Secretariat's accounts must keep a second factor."))
        return redirect(url_for("account.page"))
    if form.validate():
        if accounts.check_password(user, form.confirm_password.data or ""):
            second_factor.disable(user)
            flash(gettext("Your second factor has been removed."))
            return redirect(url_for("account.page"))
        form.confirm_password.errors = [gettext("The current password is not correct.")]
    return _page(422, remove_form=form)


# Password reset and invitation links ----------------------------------------------------------------


@bp.route("/password/reset", methods=["GET", "POST"])
def reset_request() -> ResponseReturnValue:
    """Ask for a link to set a new password, sent to the address if it has an account.

    The answer is the same page, with the same status, whether or not it has one, and about the
    same work is done: a token is made (or a dummy one), an e-mail composed, the database written.
    The e-mail goes out after the commit (in the background when it goes by SMTP).
    """
    form = ResetRequestForm()
    if not form.is_submitted():
        return render_template("account/reset_request.html", form=form)
    if not form.validate():
        return render_template("account/reset_request.html", form=form), 422
    user = accounts.by_email(form.email.data or "")
    if user is not None and user.is_active:
        raw = tokens.issue(user, "reset")
        _compose_reset(user, raw, send=True)
    else:
        tokens.dummy_work()
        _compose_reset(
            User(email="nobody@invalid.example", language="en", given_name="", family_name=""),
            "x" * 43,
            send=False,
        )
    return render_template("account/reset_sent.html")


def public_link(raw: str) -> str:
    """The absolute address of the one-time link ``raw``, built on ``PUBLIC_URL``.

    Never on the request's Host header: an attacker asking for a reset of someone else's account
    with a Host of their own would otherwise get the victim's token sent to their site.
    """
    return mail.link("account.set_password", token=raw)


def _compose_reset(user: User, raw: str, send: bool) -> None:
    """Compose the reset e-mail of ``user`` in their language; queue it if ``send``."""
    language = user.language if user.language in current_app.config["LANGUAGES"] else "en"
    link = public_link(raw)
    hours = current_app.config["RESET_TOKEN_HOURS"]
    with force_locale(language):
        body = render_template("mail/reset.txt", user=user, link=link, hours=hours)
        subject = gettext("Set a new password for the registry")
    if send:
        mail.send(user.email, subject, body, in_background=True)


@bp.route("/password/<token>", methods=["GET", "POST"])
def set_password(token: str) -> ResponseReturnValue:
    """Set a password with a one-time link; a used, expired or unknown link gets one clear page.

    The token is only used up when a password the policy accepts is set. Every session of the
    account ends; the user then signs in with the new password.
    """
    found = tokens.find(token)
    if found is None:
        return render_template("account/link_invalid.html"), 404
    form = NewPasswordForm()
    if form.is_submitted():
        valid = form.validate()
        problems = accounts.password_problems(found.user, form.new_password.data or "") if valid else []
        if valid and not problems:
            user = tokens.consume(token)
            if user is None:
                return render_template("account/link_invalid.html"), 404
            accounts.choose_password(user, form.new_password.data or "", field="new_password")
            flash(gettext("Your password has been set. Please sign in with it."))
            return redirect(url_for("auth.login"))
        form.new_password.errors = [*form.new_password.errors, *problems]
        return render_template("account/set_password.html", form=form, user=found.user, token=token), 422
    return render_template("account/set_password.html", form=form, user=found.user, token=token)
