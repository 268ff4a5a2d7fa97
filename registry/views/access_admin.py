"""The Secretariat's desk for access requests: the list, one request, accept or decline.

Only for whoever the policy lets manage users; everyone else gets the 404 of a page that does
not exist, like the rest of ``/admin``. A decision that fails validation comes back with its
messages by the field, the values kept, and status 422 (raised as ``Rejected``: nothing is committed).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from .. import policy
from ..auth import current_viewer
from ..errors import Invalid, NotFound, Rejected
from ..i18n import current_language
from ..services import access_requests
from ..vocab import REQUESTABLE_ROLES
from .access import parties_by_name

bp = Blueprint("access_admin", __name__, url_prefix="/admin/access-requests")

ACCEPT_FIELDS = ("role", "party", "expires_on")
DECLINE_FIELDS = ("reason",)


@bp.before_request
def _user_managers_only() -> None:
    """Anyone who may not manage users gets the 404 of a page that does not exist."""
    if not policy.can(current_viewer(), "manage_users"):
        raise NotFound(request.path)


@bp.get("/")
def index() -> ResponseReturnValue:
    """The requests waiting for a decision, oldest first, then the newest decided ones."""
    return render_template(
        "admin/access_requests.html", lists=access_requests.list_requests(current_viewer())
    )


def _detail_page(
    request_id: int,
    errors: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    found = access_requests.get_request(current_viewer(), request_id)
    return (
        render_template(
            "admin/access_request.html",
            item=found,
            roles=REQUESTABLE_ROLES,
            parties=parties_by_name(current_language()),
            errors=errors or {},
            values=values or {},
        ),
        status,
    )


@bp.get("/<int:request_id>")
def detail(request_id: int) -> ResponseReturnValue:
    """One request, with the forms to accept or decline it while it waits."""
    return _detail_page(request_id)


def _posted(names: tuple[str, ...]) -> dict[str, str]:
    # An empty choice ("no Party") is no value at all.
    return {name: request.form[name] for name in names if request.form.get(name)}


@bp.post("/<int:request_id>/accept")
def accept(request_id: int) -> ResponseReturnValue:
    """Accept: create the account with the role, Party and end of access chosen; the requester is
    e-mailed a one-time link to choose a password."""
    viewer = current_viewer()
    found = access_requests.get_request(viewer, request_id)
    values = _posted(ACCEPT_FIELDS)
    try:
        user = access_requests.accept(viewer, found, values)
    except Invalid as exc:
        raise Rejected(_detail_page, request_id, {"accept": exc.messages}, {"accept": values}, 422) from exc
    flash(gettext("Accepted: an account for %(email)s is made and its owner is invited.", email=user.email))
    return redirect(url_for("access_admin.index"))


@bp.post("/<int:request_id>/decline")
def decline(request_id: int) -> ResponseReturnValue:
    """Decline with a reason (required), which the requester is sent."""
    viewer = current_viewer()
    found = access_requests.get_request(viewer, request_id)
    values = _posted(DECLINE_FIELDS)
    try:
        access_requests.decline(viewer, found, values)
    except Invalid as exc:
        raise Rejected(_detail_page, request_id, {"decline": exc.messages}, {"decline": values}, 422) from exc
    flash(gettext("Declined: the requester is told why."))
    return redirect(url_for("access_admin.index"))
