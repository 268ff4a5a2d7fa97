"""Access requests: the public CENcomm form, the e-mail confirmation, the Secretariat's decision.

A request reaches the Secretariat only once its address is confirmed by a link sent to it (only
the sha256 of the link's token is stored; it works once, for ``VERIFY_HOURS``). Whoever sends the
form gets the same answer whatever is known of the address: a new request, one already waiting,
or an account are told apart only in the e-mail that goes to that address. The Secretariat
accepts (creating the account, which its owner opens by a one-time link to set a password) or
declines with a reason; the requester is told in their own language. ``purge`` anonymises
requests past the retention period and deletes confirmation links nobody used.

Every function takes the viewer first, flushes and never commits; e-mails go out after commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app, render_template
from flask_babel import force_locale, lazy_gettext
from marshmallow import Schema, ValidationError
from sqlalchemy import delete, func, select

from schemas.access import AcceptForm, AccessRequestForm, DeclineForm

from .. import clock, mail, policy
from ..db import session
from ..errors import Forbidden, Invalid, NotFound
from ..models import AccessRequest, Party, User
from ..policy import Viewer
from . import accounts, audit, notices, tokens

# How long a confirmation link works.
VERIFY_HOURS = 48
# How many decided requests the desk lists (the newest).
DECIDED_SHOWN = 200
# Fields blanked when a request is anonymised; the address is replaced by a placeholder.
PERSONAL_FIELDS = ("family_name", "given_name", "organisation", "function", "phone", "justification")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _load(schema: type[Schema], data: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return schema().load(dict(data))
    except ValidationError as exc:
        raise Invalid(exc.messages) from exc  # type: ignore[arg-type]


def _language(language: str | None) -> str:
    return language if language in current_app.config["LANGUAGES"] else "en"


def _send(to: str, language: str, template: str, subject: Any, **context: Any) -> None:
    """Compose one message in ``language`` from ``templates/mail/<template>.txt`` and queue it."""
    with force_locale(_language(language)):
        body = render_template(f"mail/{template}.txt", **context)
        mail.send(to, mail.one_line(str(subject)), body)


# The public form -----------------------------------------------------------------------------------


def submit(viewer: Viewer | None, data: Mapping[str, Any], language: str) -> None:
    """Take a request from the public form and e-mail the address given.

    ``language`` is the requester's (the page's), for every e-mail they will receive. A new
    address gets a confirmation link; an earlier request of the same address that was never
    confirmed is replaced. An address that already has an account, or a request waiting for the
    Secretariat, is told so by e-mail instead, and nothing is stored: the caller's answer is the
    same in every case. Raises Invalid (messages by field) for bad input, an unknown Party or an
    address that mail cannot carry (a quoted local part with a comma, an address literal).
    """
    clean = _load(AccessRequestForm, data)
    if session.get(Party, clean["country"]) is None:
        raise Invalid({"country": [lazy_gettext("Not a CITES Party in the registry.")]})
    try:
        _take(clean, clean["email"].strip().lower(), language)
    except ValueError as exc:
        # mail.send refuses what its one-bare-address rule does not allow, which the form's
        # e-mail check (RFC 5322's quoted strings and literals included) lets through.
        raise Invalid({"email": [lazy_gettext("The registry cannot send e-mail to this address.")]}) from exc


def _take(clean: dict[str, Any], email: str, language: str) -> None:
    """The work of ``submit`` once the input is valid. Raises ValueError when mail refuses ``email``."""
    login_link = mail.link("auth.login")
    if session.scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
        _send(email, language, "access_exists", lazy_gettext("Your request for access"), link=login_link)
        return
    waiting = select(AccessRequest.id).where(
        AccessRequest.email == email,
        AccessRequest.status == "pending",
        AccessRequest.anonymised_at.is_(None),
    )
    if session.scalar(waiting) is not None:
        _send(email, language, "access_waiting", lazy_gettext("Your request for access"))
        return
    session.execute(
        delete(AccessRequest).where(AccessRequest.email == email, AccessRequest.status == "unverified")
    )
    now = clock.utcnow()
    token = secrets.token_urlsafe(32)
    request = AccessRequest(
        status="unverified",
        email=email,
        country_iso=clean["country"],
        family_name=clean["family_name"],
        given_name=clean["given_name"],
        organisation=clean["organisation"],
        function=clean["function"],
        phone=clean["phone"],
        organisation_type=clean["organisation_type"],
        role_requested=clean["role"],
        justification=clean["justification"],
        consent_at=now,
        language=_language(language),
        created_at=now,
        token_hash=_hash(token),
        token_expires_at=now + dt.timedelta(hours=VERIFY_HOURS),
        decision_reason="",
    )
    session.add(request)
    session.flush()
    _send(
        email,
        request.language,
        "access_verify",
        lazy_gettext("Confirm your e-mail address"),
        link=mail.link("access.verify", token=token),
        hours=VERIFY_HOURS,
    )


def verify(viewer: Viewer | None, token: str) -> AccessRequest:
    """Confirm the address of the request whose link carries ``token`` and tell the Secretariat.

    The link works once, and only for ``VERIFY_HOURS``. Raises NotFound for a link that is
    unknown, used or expired (they are not told apart).
    """
    found = session.scalar(
        select(AccessRequest).where(
            AccessRequest.token_hash == _hash(token),
            AccessRequest.status == "unverified",
            AccessRequest.token_expires_at > clock.utcnow(),
        )
    )
    if found is None:
        raise NotFound("access request link")
    found.status = "pending"
    found.verified_at = clock.utcnow()
    found.token_hash = None
    found.token_expires_at = None
    session.flush()
    link = mail.link("access_admin.detail", request_id=found.id)
    for user in notices.secretariat():
        # Nothing personal in the message: the Secretariat reads the request on the desk.
        _send(
            user.email,
            user.language,
            "access_new",
            lazy_gettext("A new request for access is waiting"),
            user=user,
            request=found,
            link=link,
        )
    return found


# The Secretariat's desk ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestLists:
    """The requests waiting for a decision (oldest first) and the newest decided ones."""

    pending: list[AccessRequest]
    decided: list[AccessRequest]


def _require(viewer: Viewer | None) -> None:
    if not policy.can(viewer, "manage_users"):
        raise Forbidden("manage_users")


def list_requests(viewer: Viewer | None) -> RequestLists:
    """The confirmed requests: those waiting and the newest decided or anonymised ones.

    Requests whose address is not confirmed are never listed. Raises Forbidden for anyone who
    may not manage users.
    """
    _require(viewer)
    pending = session.scalars(
        select(AccessRequest)
        .where(AccessRequest.status == "pending", AccessRequest.anonymised_at.is_(None))
        .order_by(AccessRequest.verified_at, AccessRequest.id)
    )
    decided = session.scalars(
        select(AccessRequest)
        .where(
            AccessRequest.status != "unverified",
            (AccessRequest.status != "pending") | AccessRequest.anonymised_at.is_not(None),
        )
        .order_by(func.coalesce(AccessRequest.decided_at, AccessRequest.created_at).desc(), AccessRequest.id)
        .limit(DECIDED_SHOWN)
    )
    return RequestLists(list(pending), list(decided))


def get_request(viewer: Viewer | None, request_id: int) -> AccessRequest:
    """The confirmed request ``request_id``.

    Raises Forbidden for anyone who may not manage users, NotFound when there is no such request
    or its address is not confirmed.
    """
    _require(viewer)
    found = session.get(AccessRequest, request_id) if 0 < request_id < 2**31 else None
    if found is None or found.status == "unverified":
        raise NotFound(str(request_id))
    return found


def _undecided(request: AccessRequest) -> None:
    if request.status != "pending" or request.anonymised_at is not None:
        raise Invalid({"_form": [lazy_gettext("This request has already been decided.")]})


def accept(viewer: Viewer | None, request: AccessRequest, data: Mapping[str, Any]) -> User:
    """Accept ``request``: create its account with the role, Party and expiry date chosen, and
    e-mail the requester a one-time link to set their password.

    ``data`` holds ``role``, ``party`` (required for a Party user, ignored otherwise) and
    ``expires_on`` (after today; access ends at the start of that day, UTC). Raises Forbidden for
    anyone who may not manage users, Invalid (messages by field) for bad input, a request already
    decided or an address that has an account by now.
    """
    _require(viewer)
    _undecided(request)
    clean = _load(AcceptForm, data)
    today = clock.utcnow().date()
    errors: dict[str, list[str]] = {}
    if clean["expires_on"] <= today:
        errors["expires_on"] = [lazy_gettext("Choose a date after today.")]
    party = clean["party"] if clean["role"] == "party" else None
    if clean["role"] == "party" and not party:
        errors["party"] = [lazy_gettext("A Party user needs its Party.")]
    if errors:
        raise Invalid(errors)
    try:
        user = accounts.create_user(
            viewer,
            request.email,
            clean["role"],
            password=None,
            party_iso=party,
            given_name=request.given_name,
            family_name=request.family_name,
            organisation=request.organisation,
            function=request.function,
            phone=request.phone,
            language=request.language,
        )
    except Invalid as exc:
        # The address is the request's own, not a field of this form: its problem is the form's.
        messages = dict(exc.messages)
        if "email" in messages:
            messages["_form"] = messages.pop("email")
        raise Invalid(messages) from exc
    user.expires_at = dt.datetime.combine(clean["expires_on"], dt.time())
    raw = tokens.issue(user, "invite")
    now = clock.utcnow()
    request.status = "accepted"
    request.decided_by_id = getattr(viewer, "id", None)
    request.decided_at = now
    request.granted_role = clean["role"]
    request.granted_party_iso = party
    request.granted_until = clean["expires_on"]
    request.user_id = user.id
    session.flush()
    audit.log(
        viewer,
        "access_request_accepted",
        access_request=request.id,
        user=user.id,
        role=clean["role"],
        party=party,
        expires_on=clean["expires_on"].isoformat(),
    )
    _send(
        request.email,
        request.language,
        "access_accepted",
        lazy_gettext("Your access to the registry"),
        request=request,
        link=mail.link("account.set_password", token=raw),
        hours=current_app.config["INVITE_TOKEN_HOURS"],
    )
    return user


def decline(viewer: Viewer | None, request: AccessRequest, data: Mapping[str, Any]) -> None:
    """Decline ``request`` with the reason in ``data["reason"]``, which the requester is sent.

    Raises Forbidden for anyone who may not manage users, Invalid for a missing reason or a
    request already decided.
    """
    _require(viewer)
    _undecided(request)
    clean = _load(DeclineForm, data)
    request.status = "declined"
    request.decided_by_id = getattr(viewer, "id", None)
    request.decided_at = clock.utcnow()
    request.decision_reason = clean["reason"]
    session.flush()
    # The reason stays with the request (and goes with it when it is anonymised), not in the trail,
    # which is never changed: it may name the requester.
    audit.log(viewer, "access_request_declined", access_request=request.id)
    _send(
        request.email,
        request.language,
        "access_declined",
        lazy_gettext("Your request for access"),
        request=request,
    )


# Retention -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Purged:
    """What ``purge`` did: requests anonymised, and unconfirmed requests deleted."""

    anonymised: int
    deleted: int


def purge(viewer: Viewer | None, retention_days: int) -> Purged:
    """Anonymise the confirmed requests untouched for ``retention_days`` and delete the unconfirmed
    ones whose link has expired.

    A request's age counts from its decision, or from when it was made while it waits. Its
    personal fields are blanked, its address becomes ``anonymised-<id>@invalid`` and its link to
    the account goes; its status, country, organisation type, roles and dates stay, for
    statistics. Raises Forbidden for anyone who may not manage users.
    """
    _require(viewer)
    now = clock.utcnow()
    cutoff = now - dt.timedelta(days=retention_days)
    old = session.scalars(
        select(AccessRequest).where(
            AccessRequest.status != "unverified",
            AccessRequest.anonymised_at.is_(None),
            func.coalesce(AccessRequest.decided_at, AccessRequest.created_at) < cutoff,
        )
    ).all()
    for request in old:
        for name in PERSONAL_FIELDS:
            setattr(request, name, "")
        request.email = f"anonymised-{request.id}@invalid"
        request.decision_reason = ""
        request.user_id = None
        request.anonymised_at = now
    deleted = session.execute(
        delete(AccessRequest).where(
            AccessRequest.status == "unverified", AccessRequest.token_expires_at <= now
        )
    ).rowcount
    session.flush()
    return Purged(anonymised=len(old), deleted=deleted or 0)
