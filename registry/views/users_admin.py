"""The Secretariat's list of accounts: deactivate and reactivate them, set or clear their access expiry.

Like the rest of ``/admin``, it answers 404 to anyone the policy does not let manage users. A
deactivated account's sessions end at once (its nonce rotates); an expired one is anonymous from
its expiry on, wherever it is used (``User.is_active``).
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from .. import clock, policy
from ..auth import current_viewer
from ..errors import Invalid, NotFound, Rejected
from ..services import accounts

bp = Blueprint("users_admin", __name__, url_prefix="/admin/users")


@bp.before_request
def _secretariat_only() -> None:
    """Anyone who may not manage users gets the 404 of a page that does not exist."""
    if not policy.can(current_viewer(), "manage_users"):
        raise NotFound(request.path)


@bp.get("/")
def index() -> ResponseReturnValue:
    """Every account: e-mail, name, role, Party, whether active, when its access ends."""
    return _index()


def _index(errors: dict[int, list[str]] | None = None, status: int = 200) -> ResponseReturnValue:
    users = accounts.list_users(current_viewer())
    return render_template(
        "admin/users.html", users=users, errors=errors or {}, today=clock.utcnow().date()
    ), status


@bp.post("/<int:user_id>/active")
def set_active(user_id: int) -> ResponseReturnValue:
    """Deactivate (``active=0``) or reactivate (``active=1``) an account."""
    viewer = current_viewer()
    user = accounts.get_user(viewer, user_id)
    active = request.form.get("active") == "1"
    try:
        accounts.set_active(viewer, user, active)
    except Invalid as exc:
        raise Rejected(_index, {user.id: [m for ms in exc.messages.values() for m in ms]}, 422) from exc
    flash(
        gettext("%(email)s has been reactivated.", email=user.email)
        if active
        else gettext(
            "%(email)s has been deactivated: every session of the account has ended.", email=user.email
        )
    )
    return redirect(url_for("users_admin.index"))


@bp.post("/<int:user_id>/expiry")
def set_expiry(user_id: int) -> ResponseReturnValue:
    """Set the date an account's access ends (``expires_on``, YYYY-MM-DD), or clear it (empty)."""
    viewer = current_viewer()
    user = accounts.get_user(viewer, user_id)
    value = request.form.get("expires_on", "").strip()
    try:
        expires_on = dt.date.fromisoformat(value) if value else None
    except ValueError:
        return _index({user.id: [gettext("Enter a date as YYYY-MM-DD.")]}, 422)
    try:
        accounts.set_expiry(viewer, user, expires_on)
    except Invalid as exc:
        raise Rejected(_index, {user.id: [m for ms in exc.messages.values() for m in ms]}, 422) from exc
    flash(
        gettext(
            "The access of %(email)s now ends on %(date)s.", email=user.email, date=expires_on.isoformat()
        )
        if expires_on
        else gettext("The access of %(email)s no longer ends.", email=user.email)
    )
    return redirect(url_for("users_admin.index"))
