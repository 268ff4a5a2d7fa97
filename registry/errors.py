"""Domain errors raised by services and the policy, and their HTTP rendering.

Services raise these, never HTTP exceptions; ``init_app`` turns them (and HTTP errors) into
pages or JSON. A record the viewer may not see answers exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from babel.units import format_unit
from flask import Flask, jsonify, render_template, request
from flask_babel import get_locale, gettext
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .db import commit, rollback


class DomainError(Exception):
    """Base of the errors services raise."""


class NotFound(DomainError):
    """Missing, or hidden from this viewer: the two are indistinguishable on purpose."""


class Forbidden(DomainError):
    """The viewer may see the object but not do this to it."""


class Rejected(Exception):
    """A view's answer to bad input (its form again, with the messages): raised, not returned, so
    that the request's unit of work rolls back whatever the attempt wrote before it is rendered."""

    def __init__(self, render: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__("rejected")
        self.render, self.args_, self.kwargs = render, args, kwargs


class TooManyAttempts(DomainError):
    """Too many failed attempts: the next is refused for ``retry_after`` seconds (answered 429)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class Invalid(DomainError):
    """Input that fails validation; ``messages`` maps field names to problems."""

    def __init__(self, messages: dict[str, Any]) -> None:
        super().__init__("invalid input")
        self.messages = messages


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _render(status: int, message: str, errors: dict[str, Any] | None = None, hint: str = ""):  # type: ignore[no-untyped-def]
    if _wants_json():
        body: dict[str, Any] = {"error": message}
        if errors:
            body["errors"] = errors
        return jsonify(body), status
    return render_template("errors/error.html", status=status, message=message, hint=hint), status


def _wait_text(seconds: int) -> str:
    """A wait in the page's language, rounded up, never down: "40 seconds", "2 minutes"."""
    locale = get_locale() or "en"
    if seconds < 60:
        return format_unit(seconds, "duration-second", length="long", locale=locale)
    return format_unit(-(-seconds // 60), "duration-minute", length="long", locale=locale)


def _log_refusal(app: Flask, kind: str) -> None:
    """Write a failed authorisation to the audit trail, in aggregate, in a transaction of its own.

    The refused request's own work was rolled back before (the unit of work, ``db.init_app``): it
    never commits with the entry. Only
    refusals that say nothing about whether a record exists are logged (an action refused on a record
    the viewer sees, a CSRF failure, the desk to anyone but the Secretariat); a hidden record is not
    found exactly like a missing one, with nothing written for either.
    """
    # Imported here: the services import this module for its errors.
    from .auth import current_viewer
    from .ratelimit import client_address, count_refusal
    from .services import audit

    try:
        viewer = current_viewer()
        who = f"user:{viewer.id}" if viewer is not None else client_address()
        audit.log_refusal(
            viewer,
            kind,
            count_refusal(kind, who),
            method=request.method,
            path=request.path[:200],
            endpoint=request.endpoint or "",
        )
        commit()
    except Exception:  # the refusal must still be answered, and without a traceback
        app.logger.exception("Logging a refusal failed")
        rollback()


def _refused_the_desk() -> bool:
    """Whether this request is for a page of the desk that the viewer may not use."""
    from . import policy
    from .auth import current_viewer

    return (
        request.url_rule is not None
        and request.path.startswith("/admin")
        and not policy.can(current_viewer(), "review_desk")
    )


def init_app(app: Flask) -> None:
    """Register the error pages: 404 for missing and hidden alike, never a traceback."""

    @app.errorhandler(NotFound)
    def _not_found(_exc: NotFound):  # type: ignore[no-untyped-def]
        if _refused_the_desk():
            # The desk refuses before it looks anything up, so this says nothing about a record.
            _log_refusal(app, "desk")
        return _render(404, gettext("This page does not exist, or you may not see it."))

    @app.errorhandler(Forbidden)
    def _forbidden(_exc: Forbidden):  # type: ignore[no-untyped-def]
        _log_refusal(app, "forbidden")
        return _render(403, gettext("You may not do this."))

    @app.errorhandler(Rejected)
    def _rejected(exc: Rejected):  # type: ignore[no-untyped-def]
        return exc.render(*exc.args_, **exc.kwargs)

    @app.errorhandler(Invalid)
    def _invalid(exc: Invalid):  # type: ignore[no-untyped-def]
        return _render(400, gettext("The request is not valid."), exc.messages)

    @app.errorhandler(TooManyAttempts)
    def _too_many(exc: TooManyAttempts):  # type: ignore[no-untyped-def]
        body, status = _render(
            429,
            gettext("Too many failed attempts."),
            hint=gettext("Please try again in %(wait)s.", wait=_wait_text(exc.retry_after)),
        )
        return body, status, {"Retry-After": str(exc.retry_after)}

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(_exc: RateLimitExceeded):  # type: ignore[no-untyped-def]
        from .ratelimit import retry_after

        wait = retry_after()
        body, status = _render(
            429,
            gettext("You have sent too many requests in a short time."),
            hint=gettext("Please try again in %(wait)s.", wait=_wait_text(wait)),
        )
        return body, status, {"Retry-After": str(wait)}

    @app.errorhandler(CSRFError)
    def _csrf(_exc: CSRFError):  # type: ignore[no-untyped-def]
        _log_refusal(app, "csrf")
        return _render(400, gettext("The form has expired or was not sent from this site. Please try again."))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        status = exc.code or 500
        messages = {
            404: gettext("This page does not exist, or you may not see it."),
            405: gettext("This address does not accept this kind of request."),
            413: gettext("The upload is too large."),
        }
        return _render(status, messages.get(status, gettext("The request could not be handled.")))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        app.logger.exception("Unhandled error", exc_info=exc)
        # The unit of work has rolled the request back already (``db.init_app``).
        return _render(500, gettext("Something went wrong on our side. The error has been logged."))
