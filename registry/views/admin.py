"""The Secretariat's desk: review queue, review and decisions, audit trail, outbox, disclosures, calls.

The whole desk answers 404 to anyone the policy does not let use it, exactly like a missing page.
Forms that fail validation come back with the message next to the field, the text kept, and
status 422, so the request boundary does not commit.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError

from schemas.desk import AGES, AuditArgs, PublishForm, QueueArgs, ReturnForm, TierChangeForm, WithdrawForm

from .. import mail, policy
from ..auth import current_viewer
from ..errors import Invalid, NotFound, Rejected
from ..labels import LABELS, label
from ..models import Record
from ..services import audit, calls, desk
from ..services.records import history as record_history
from ..services.records import read, shape
from ..services.records import review as record_review

# One query-string parser for every page (bad parameters dropped and named).
from .public import _parse_query

bp = Blueprint("admin", __name__, url_prefix="/admin")

# Labels of the trail's actions and of a Party's answer to a call.
CALL_STATUS_LABELS = {
    "submitted": _l("Answered"),
    "in_progress": _l("In progress"),
    "not_started": _l("Not started"),
}
# Labels of the core fields of the JSON shape; details use the labels of their fields.
CORE_LABELS = {
    "type": _l("Type of resource"),
    "title": _l("Title"),
    "summary": _l("Summary"),
    "language": _l("Original language"),
    "scope": _l("Scope"),
    "issuing_bodies": _l("Issued by"),
    "year": _l("Year"),
    "date": _l("Date"),
    "party": _l("Party"),
    "region": _l("CITES region"),
    "translations": _l("Translations"),
    "taxa": _l("Taxa covered"),
    "files": _l("Documents"),
    "confidentiality.level": _l("Confidentiality level"),
    "confidentiality.rule": _l("The Party's rule"),
    "confidentiality.justification": _l("Justification"),
    "confidentiality.disclosure_date": _l("May be disclosed from"),
    "details.latitude": _l("Latitude"),
    "details.longitude": _l("Longitude"),
}
CALL_FIELDS = ("notification", "title_en", "title_fr", "title_es", "opens_on", "deadline")


@bp.before_request
def _secretariat_only() -> None:
    """Anyone who may not use the desk gets the 404 of a page that does not exist."""
    if not policy.can(current_viewer(), "review_desk"):
        raise NotFound(request.path)


def field_label(path: str) -> str:
    """The label of a field of the JSON shape named by its dotted ``path``, e.g. ``details.address``."""
    if path in CORE_LABELS:
        return str(CORE_LABELS[path])
    section, _, name = path.partition(".")
    if section == "details" and name:
        return label("field", name)
    if path.startswith("confidentiality.fields."):
        return gettext("Tier of %(field)s", field=label("field", path.rsplit(".", 1)[-1]))
    return path


@bp.context_processor
def _desk_labels() -> dict[str, Any]:
    return {
        "action_labels": LABELS["audit_action"],
        "call_status_labels": CALL_STATUS_LABELS,
        "field_label": field_label,
    }


def _form(names: tuple[str, ...]) -> dict[str, str]:
    """The posted values of the fields ``names`` (as typed, for a form that comes back with errors)."""
    return {name: request.form[name] for name in names if name in request.form}


def _load_form(schema_cls: type[Schema], names: tuple[str, ...]) -> dict[str, Any]:
    """The posted fields ``names`` loaded with ``schema_cls``. Raises Invalid with messages by field."""
    try:
        return schema_cls().load(_form(names))
    except ValidationError as exc:
        raise Invalid(exc.messages) from exc  # type: ignore[arg-type]


# The review queue --------------------------------------------------------------------------------


@bp.get("/")
def queue() -> ResponseReturnValue:
    """Submissions waiting for review, oldest first, with filters and the desk's counts."""
    viewer = current_viewer()
    parsed, errors = _parse_query(QueueArgs)
    filters = desk.QueueFilters(**parsed)
    return (
        render_template(
            "admin/queue.html",
            items=desk.review_queue(viewer, filters),
            counts=desk.desk_counts(viewer),
            filters=filters,
            errors=errors,
            ages=AGES,
            parties=read.list_parties(),
            waiting_since=desk.waiting_since,
        ),
        400 if errors else 200,
    )


# Reviewing one record ----------------------------------------------------------------------------


def _review_page(
    record: Record,
    errors: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    """The review page of ``record``; ``errors`` and ``values`` are keyed by form (return, file:…)."""
    viewer = current_viewer()
    # A revision replaces the live record, the desk's tier changes since its publication included, so
    # it is compared with that; anything else with the version last published, if there is one.
    published = record.status == "published"
    old = shape.record_shape(record) if published else record_history.last_published(record)
    new = shape.working_shape(record)
    return (
        render_template(
            "admin/review.html",
            record=record,
            is_new=old is None,
            changes=_changes(old, new),
            comments=desk.comment_history(viewer, record),
            versions=record_history.versions(viewer, record),
            targets=desk.tier_targets(record),
            lowers=desk.publish_lowers(viewer, record),
            file_tiers={f.id: policy.file_tier(f) for f in record.files},
            under_review=record_review.under_review(record),
            waiting=desk.waiting_since(record),
            errors=errors or {},
            values=values or {},
        ),
        status,
    )


def _blank(shape: dict[str, Any]) -> dict[str, Any]:
    """``shape`` with every value emptied, so that a new record is compared field by field."""
    return {key: _blank(value) if isinstance(value, dict) else None for key, value in shape.items()}


def _changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The rows of the review's comparison; a new record shows each field it fills in as new."""
    if old is not None:
        return record_history.changes(old, new)
    return [row for row in record_history.changes(_blank(new), new) if row[2] not in ("", [], {})]


def _refused(record_id: str, form: str, exc: Invalid, values: dict[str, Any]) -> Rejected:
    """The review page again with its messages, once whatever the failed action touched is rolled back."""
    messages = exc.messages

    def page() -> ResponseReturnValue:
        record = desk.get_record(current_viewer(), record_id)
        return _review_page(record, errors={form: messages}, values={form: values}, status=422)

    return Rejected(page)


@bp.get("/records/<record_id>")
def review(record_id: str) -> ResponseReturnValue:
    """A submission beside the last published version, its files, comments, versions and the decisions."""
    return _review_page(desk.get_record(current_viewer(), record_id))


@bp.post("/records/<record_id>/publish")
def publish(record_id: str) -> ResponseReturnValue:
    """Publish the submission (a new record or a revision); a version that lowers a tier needs a reason."""
    viewer = current_viewer()
    record = desk.get_record(viewer, record_id)
    values = _form(("reason",))
    try:
        data = _load_form(PublishForm, ("reason",))
        record_review.publish(
            viewer, record, files_dir=Path(current_app.config["FILES_DIR"]), reason=data["reason"]
        )
    except Invalid as exc:
        raise _refused(record_id, "publish", exc, values) from exc
    flash(gettext("Published: %(title)s", title=record.title))
    return redirect(url_for("admin.queue"))


@bp.post("/records/<record_id>/return")
def return_(record_id: str) -> ResponseReturnValue:
    """Return the submission to its Party with the Secretariat's comment (required)."""
    viewer = current_viewer()
    record = desk.get_record(viewer, record_id)
    values = _form(("comment",))
    try:
        data = _load_form(ReturnForm, ("comment",))
        record_review.return_to_party(viewer, record, data["comment"])
    except Invalid as exc:
        raise _refused(record_id, "return", exc, values) from exc
    flash(gettext("Returned to the Party: %(title)s", title=record.title))
    return redirect(url_for("admin.queue"))


@bp.post("/records/<record_id>/withdraw")
def withdraw(record_id: str) -> ResponseReturnValue:
    """Withdraw the record from every public page and index, with the reason (required)."""
    viewer = current_viewer()
    record = desk.get_record(viewer, record_id)
    values = _form(("reason",))
    try:
        data = _load_form(WithdrawForm, ("reason",))
        record_review.withdraw(viewer, record, data["reason"])
    except Invalid as exc:
        raise _refused(record_id, "withdraw", exc, values) from exc
    flash(gettext("Withdrawn: %(title)s", title=record.title))
    return redirect(url_for("admin.review", record_id=record.id))


@bp.post("/records/<record_id>/tier")
def change_tier(record_id: str) -> ResponseReturnValue:
    """Make the record, a file or a sensitive field group stricter, or on purpose more open, with a reason."""
    viewer = current_viewer()
    record = desk.get_record(viewer, record_id)
    names = ("target", "tier", "reason")
    values = _form(names)
    target = values.get("target", "")
    # Messages go next to the form of the target posted; an unknown target's to the record's.
    form = target if any(t.key == target for t in desk.tier_targets(record)) else "record"
    current = next((t.current for t in desk.tier_targets(record) if t.key == target), None)
    try:
        data = _load_form(TierChangeForm, names)
        desk.change_tier(viewer, record, data["target"], data["tier"], data["reason"])
    except Invalid as exc:
        raise _refused(record_id, form, exc, values) from exc
    if policy.rank(data["tier"]) < policy.rank(current):
        flash(gettext("The tier is lowered. It applies everywhere from now on."))
    else:
        flash(gettext("The tier is raised. It applies everywhere from now on."))
    return redirect(url_for("admin.review", record_id=record.id))


# The trail, the outbox and due disclosures -------------------------------------------------------


@bp.get("/audit", endpoint="audit")
def audit_trail() -> ResponseReturnValue:
    """The audit trail, newest first, filtered by action, Party or record. Read-only."""
    parsed, errors = _parse_query(AuditArgs)
    page = audit.trail(
        current_viewer(),
        action=parsed["action"],
        party=parsed["party"],
        record_id=parsed["record"],
        page=parsed["page"],
    )
    return (
        render_template(
            "admin/audit.html",
            page=page,
            filters=parsed,
            errors=errors,
            actions=audit.ACTIONS,
            parties=read.list_parties(),
        ),
        400 if errors else 200,
    )


@bp.get("/outbox")
def outbox() -> ResponseReturnValue:
    """The e-mails written to the outbox folder, newest first; those that could not be sent are marked."""
    return render_template("admin/outbox.html", messages=mail.outbox())


@bp.get("/disclosures")
def disclosures() -> ResponseReturnValue:
    """Records with something restricted whose disclosure date has passed, to review with their Party."""
    due = desk.disclosures_due(current_viewer(), dt.date.today())
    return render_template("admin/disclosures.html", due=due)


# Calls for information ---------------------------------------------------------------------------


@bp.route("/calls", methods=["GET", "POST"], endpoint="calls")
def calls_page() -> ResponseReturnValue:
    """The calls for information, and the form to open a new one."""
    viewer = current_viewer()
    values: dict[str, str] = {}
    errors: dict[str, Any] = {}
    if request.method == "POST":
        values = _form(CALL_FIELDS)
        unknown = set(request.form) - {*CALL_FIELDS, "csrf_token"}
        try:
            if unknown:
                raise Invalid(
                    {"_form": [gettext("Unexpected fields: %(names)s", names=", ".join(sorted(unknown)))]}
                )
            created = calls.create_call(viewer, values)
        except Invalid as exc:
            raise Rejected(_calls_page, viewer, values, exc.messages) from exc
        flash(gettext("Call %(notification)s is open.", notification=created.notification))
        return redirect(url_for("admin.call", call_id=created.id))
    return _calls_page(viewer, values, errors)


def _calls_page(viewer: Any, values: dict[str, str], errors: dict[str, Any]) -> ResponseReturnValue:
    page = render_template("admin/calls.html", calls=calls.list_calls(viewer), values=values, errors=errors)
    return page, 422 if errors else 200


@bp.get("/calls/<int:call_id>")
def call(call_id: int) -> ResponseReturnValue:
    """Which Parties have answered a call, by CITES region, and the button to remind the others."""
    viewer = current_viewer()
    found = calls.get_call(viewer, call_id)
    statuses = calls.party_statuses(viewer, found)
    return render_template(
        "admin/call.html",
        call=found,
        regions=calls.by_region(statuses),
        totals=calls.count_total(statuses),
        statuses=calls.STATUSES,
    )


@bp.post("/calls/<int:call_id>/remind")
def remind(call_id: int) -> ResponseReturnValue:
    """E-mail a reminder to the focal points of every Party that has not answered the call."""
    viewer = current_viewer()
    sent = calls.remind(viewer, calls.get_call(viewer, call_id))
    flash(ngettext("%(num)s reminder sent.", "%(num)s reminders sent.", sent))
    return redirect(url_for("admin.call", call_id=call_id))
