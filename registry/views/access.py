"""Asking for access: the public form, the "check your e-mail" page and the confirmation link.

No account is needed. Whatever is known of the address given, the form answers the same way
(``services.access_requests.submit`` tells the cases apart only in the e-mail it sends there).
"""

from __future__ import annotations

import unicodedata

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from schemas.access import REQUEST_FIELDS

from ..auth import current_viewer
from ..errors import Invalid, NotFound, Rejected
from ..i18n import current_language
from ..services import access_requests
from ..services.records import read
from ..vocab import ORGANISATION_TYPES, REQUESTABLE_ROLES

bp = Blueprint("access", __name__)

# Longer than any token the registry makes: not looked up at all.
_MAX_TOKEN = 100


def _sort_key(name: str) -> str:
    """``name`` for sorting as a reader expects: accents and case do not count (Côte d'Ivoire by C)."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def parties_by_name(language: str) -> list[tuple[str, str]]:
    """Every Party as (ISO code, name in ``language``), sorted by that name."""
    named = [(party.iso, party.name(language)) for party in read.list_parties()]
    return sorted(named, key=lambda item: (_sort_key(item[1]), item[0]))


def _form_page(values: dict[str, str], errors: dict[str, list[str]], status: int) -> ResponseReturnValue:
    language = current_language()
    return (
        render_template(
            "access/request.html",
            values=values,
            errors=errors,
            fields=REQUEST_FIELDS,
            parties=parties_by_name(language),
            organisation_types=ORGANISATION_TYPES,
            roles=REQUESTABLE_ROLES,
        ),
        status,
    )


@bp.route("/access-request", methods=["GET", "POST"], endpoint="request")
def request_form() -> ResponseReturnValue:
    """The access-request form; a valid request is taken and the visitor sent to check their e-mail.

    A form with errors comes back with every value as typed, the messages by their fields and a
    summary, and status 422 (nothing is committed).
    """
    if request.method == "GET":
        return _form_page({}, {}, 200)
    # Only the form's own fields are read: anything else posted is ignored.
    values = {name: request.form[name] for name in REQUEST_FIELDS if name in request.form}
    try:
        access_requests.submit(current_viewer(), values, current_language())
    except Invalid as exc:
        raise Rejected(_form_page, values, exc.messages, 422) from exc
    return redirect(url_for("access.sent"), 303)


@bp.get("/access-request/sent")
def sent() -> ResponseReturnValue:
    """What everyone who sent the form is told: look for our e-mail and follow its link."""
    return render_template("access/sent.html", hours=access_requests.VERIFY_HOURS)


@bp.get("/access-request/verify/<token>")
def verify(token: str) -> ResponseReturnValue:
    """Confirm the address of a request by its one-time link; the request then goes to the Secretariat.

    A link that is unknown, used or expired answers 404 with a page that says how to start again.
    """
    try:
        if len(token) > _MAX_TOKEN:
            raise NotFound("access request link")
        access_requests.verify(current_viewer(), token)
    except NotFound:
        return render_template("access/link_invalid.html", hours=access_requests.VERIFY_HOURS), 404
    return render_template("access/verified.html")
