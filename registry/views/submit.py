"""A Party's submissions: its start page, the record forms, submitting, withdrawing, the history.

Views are thin: the form is turned into the JSON shape (``forms``), the record services
validate it with the same schemas as import and the API, and the page is re-rendered with
every value and accepted upload kept when something is wrong.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required
from marshmallow import ValidationError
from sqlalchemy import func, or_, select
from werkzeug.datastructures import MultiDict

from schemas import load_record
from schemas.common import FILE_LANGUAGES, FileEntrySchema
from schemas.query import TaxonQueryArgs
from schemas.submit import PartyWithdrawForm

from .. import policy, storage, uploads
from ..auth import current_viewer
from ..db import retry_on_conflict, session
from ..errors import Forbidden, Invalid, NotFound, Rejected
from ..models import MODEL_FOR_TYPE, Record, RescueCentre, Taxon
from ..services import audit
from ..services.records import history as record_history
from ..services.records import read, tiers, write
from ..services.records import review as record_review
from ..services.records import shape as record_shape
from ..vocab import LANGUAGES, RECORD_TYPES, REGIONS, SCOPES
from . import forms

bp = Blueprint("submit", __name__, url_prefix="/submit")

UPLOAD_SLOTS = 3
TAXON_MATCHES = 20


def _party_viewer():  # type: ignore[no-untyped-def]
    """The signed-in Party user; everyone else is told the page does not exist."""
    viewer = current_viewer()
    if viewer is None or not policy.can(viewer, "create", viewer.party_iso):
        raise NotFound("submit")
    return viewer


def _files_dir() -> Path:
    return Path(current_app.config["FILES_DIR"])


def _staging_owner() -> str:
    """The key under which the signed-in user's uploads are staged and counted against their quota."""
    return uploads.owner_key(current_viewer().id)


def _extraction_deadline() -> float:
    """When the text extraction of this request's uploads must stop: they all share one budget.

    Extraction runs here, in the view, before the request writes anything, so a file that keeps the
    parsers busy never holds a database write lock; the budget keeps it from holding the request long.
    """
    if "upload_deadline" not in g:
        seconds = current_app.config.get("UPLOAD_EXTRACT_SECONDS", uploads.EXTRACT_SECONDS)
        g.upload_deadline = time.monotonic() + seconds
    return g.upload_deadline


def _record(viewer, record_id: str) -> Record:  # type: ignore[no-untyped-def]
    """A record this viewer keeps (its own Party's, or any for the Secretariat); others are not found
    here, at the cost of a record that does not exist (another Party's record is never loaded)."""
    return read.get_record(viewer, record_id, "see_history")


@bp.route("/")
@login_required
def home():  # type: ignore[no-untyped-def]
    """The Party's start page: its drafts, returned and submitted records, revisions, and new forms."""
    viewer = _party_viewer()
    mine = list(
        session.scalars(
            policy.visible(select(Record), viewer)
            .where(Record.party_iso == viewer.party_iso)
            .where(or_(Record.status != "published", Record.revision_status.is_not(None)))
            .order_by(Record.updated_at.desc())
        )
    )
    published = list(
        session.scalars(
            policy.visible(select(Record), viewer)
            .where(Record.party_iso == viewer.party_iso, Record.status == "published")
            .where(Record.revision_status.is_(None))
            .order_by(Record.published_at.desc())
            .limit(100)
        )
    )
    return render_template("submit/home.html", mine=mine, published=published, types=RECORD_TYPES)


def _rescue_centres(viewer) -> list[Record]:  # type: ignore[no-untyped-def]
    return list(
        session.scalars(policy.visible(select(RescueCentre), viewer).order_by(RescueCentre.title).limit(300))
    )


# Each file row of the form is checked with the schema that checks an import's files.
_FILE_ENTRY = FileEntrySchema()


def _file_row(values: MultiDict, prefix: str, ref: str) -> dict[str, Any]:
    """A file row of the form as typed: its reference and the title, language and tier stated for it."""
    return {
        "ref": ref,
        "title": values.get(prefix + "title", ""),
        "language": values.get(prefix + "language", "en"),
        "tier": values.get(prefix + "tier", policy.PUBLIC),
        "remove": bool(values.get(prefix + "remove")),
    }


def _checked(row: dict[str, Any], index: int, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    """The row's title, language and tier as the schema cleans them, or None with messages by field."""
    try:
        return _FILE_ENTRY.load({key: row[key] for key in ("title", "language", "tier")})
    except ValidationError as exc:
        for key, messages in exc.messages.items():  # type: ignore[union-attr]
            errors[f"file.{index}.{key}"] = [str(m) for m in messages]
        return None


def _kept_files(
    values: MultiDict, record: Record | None
) -> tuple[list[dict[str, Any]], list[write.FileEntry], dict[str, list[str]]]:
    """The files the form lists (attached ones and uploads already accepted), for display and saving.

    Returns the rows to show, the entries to save and the messages: each file row kept is checked by
    the same schema as an import's files, and a file listed twice is kept once. An accepted upload comes
    back with the text found when it was accepted.
    """
    secret = current_app.config["SECRET_KEY"]
    attached = {f.id: f for f in record.files} if record is not None else {}
    rows: list[dict[str, Any]] = []
    entries: list[write.FileEntry] = []
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for index, ref in enumerate(values.getlist("file.ref")):
        if ref in seen:
            continue
        seen.add(ref)
        row = _file_row(values, f"file.{index}.", ref)
        staged = None
        if ref in attached:
            row["name"], row["size"] = attached[ref].original_name, attached[ref].size
        else:
            staged = uploads.unsign(ref, secret, files_dir=_files_dir(), owner=_staging_owner())
            if staged is None:
                # Expired, forged, or its file removed since: say so, and ask for the file again.
                if not row["remove"]:
                    lost = gettext("A file you added earlier could not be kept: upload it again.")
                    errors["files"] = [lost]
                continue
            row["name"], row["size"] = staged.original_name, staged.size
        rows.append(row)
        if row["remove"]:
            continue
        if staged is not None and staged.extracted is None:
            # Its text was not kept (a token from another session, or from before texts were kept):
            # extracted now, still before any write and within this request's budget.
            staged = uploads.with_text(
                staged, _files_dir(), owner=_staging_owner(), deadline=_extraction_deadline()
            )
        clean = _checked(row, len(rows) - 1, errors)
        if clean is not None:
            entries.append(
                write.FileEntry(**clean, file_id=None if staged else ref, upload=staged)  # type: ignore[arg-type]
            )
    return rows, entries, errors


def _accept_uploads(
    values: MultiDict, rows: list[dict[str, Any]], entries: list[write.FileEntry]
) -> dict[str, list[str]]:
    """Store each new upload that passes the checks and extract its text; refused ones are named with
    the reason (the user's quota of staged uploads full among them).

    An upload whose title or language is wrong is stored all the same and listed with the message,
    so the file is not asked for again.
    """
    errors: dict[str, list[str]] = {}
    secret = current_app.config["SECRET_KEY"]
    for slot in range(UPLOAD_SLOTS):
        upload = request.files.get(f"upload.{slot}")
        if upload is None or not upload.filename:
            continue
        try:
            staged = uploads.accept(
                upload,
                _files_dir(),
                current_app.config["MAX_FILE_SIZE"],
                owner=_staging_owner(),
                session=session,
                quota=current_app.config.get("MAX_STAGED_BYTES", uploads.MAX_STAGED_BYTES),
                deadline=_extraction_deadline(),
            )
        except storage.Refused as exc:
            errors[f"upload.{slot}"] = [f"{uploads.clean_name(upload.filename)}: {uploads.reason(exc)}"]
            continue
        row = _file_row(values, f"upload.{slot}.", uploads.sign(staged, secret))
        row.update({"remove": False, "name": staged.original_name, "size": staged.size})
        rows.append(row)
        clean = _checked(row, len(rows) - 1, errors)
        if clean is not None:
            entries.append(write.FileEntry(**clean, upload=staged))
    return errors


def _find_taxa(query: str) -> tuple[list[Taxon], dict[str, list[str]]]:
    """The taxa matching ``query`` (checked by the schema), or no taxa and the messages by field."""
    try:
        args = TaxonQueryArgs().load({"q": query})
    except ValidationError as exc:
        return [], {"q": [str(m) for m in exc.messages["q"]]}  # type: ignore[call-overload]
    return _taxon_matches(args["q"]), {}


def _like_pattern(text: str) -> str:
    """``text`` to be found anywhere by LIKE with ``escape="\\"``: its own % and _ match only themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _taxon_matches(query: str) -> list[Taxon]:
    """Taxa whose scientific or common name (in any of the three languages) contains ``query``."""
    if len(query) < 2:
        return []
    pattern = _like_pattern(query.lower())
    columns = (Taxon.name, Taxon.common_en, Taxon.common_fr, Taxon.common_es)
    return list(
        session.scalars(
            select(Taxon)
            .where(or_(*(func.lower(c).like(pattern, escape="\\") for c in columns)))
            .order_by(Taxon.name)
            .limit(TAXON_MATCHES)
        )
    )


def _render(  # type: ignore[no-untyped-def]
    record_type: str,
    values: MultiDict,
    rows,
    errors,
    record: Record | None,
    status: int = 200,
    taxon_matches: list[Taxon] | None = None,
):
    viewer = current_viewer()
    return (
        render_template(
            "submit/form.html",
            record_type=record_type,
            record=record,
            values=values,
            files=rows,
            errors=errors,
            widgets=forms.detail_widgets(record_type),
            justifications=forms.justification_choices(),
            tiers=forms.tier_choices(),
            floors=tiers.secretariat_tiers(record) if record is not None else {},
            sensitive=list(policy.SENSITIVE_FIELDS.get(record_type, {})),
            centres=_rescue_centres(viewer) if record_type == "network" else [],
            taxon_matches=taxon_matches,
            slots=range(UPLOAD_SLOTS),
            languages=LANGUAGES,
            file_languages=FILE_LANGUAGES,
            # Only material without a Party (the Secretariat's) says its own scope and region.
            without_party=(record.party_iso if record is not None else viewer.party_iso) is None,
            scopes=[s for s in SCOPES if s != "national"],
            regions=REGIONS,
        ),
        status,
    )


def _save(viewer, record: Record | None, data: dict[str, Any], entries, submit: bool) -> Record:  # type: ignore[no-untyped-def]
    """Create or save the record from loaded ``data`` and ``entries``, and submit it if asked.

    Raises Invalid, NotFound or Forbidden as the record services do.
    """
    # Another request may save one of these uploads meanwhile (the form sent twice at once): the
    # checks, run again on what is committed then, name the file instead of failing here.
    return retry_on_conflict(lambda: _save_once(viewer, record, data, entries, submit))


def _save_once(viewer, record: Record | None, data: dict[str, Any], entries, submit: bool) -> Record:  # type: ignore[no-untyped-def]
    if record is None:
        record = write.create(viewer, data, entries, _files_dir())
    else:
        write.save(viewer, record, data, entries, _files_dir())
    if submit:
        record_review.submit(viewer, record)
    return record


def _handle(record_type: str, record: Record | None):  # type: ignore[no-untyped-def]
    """One POST of the form: find taxa, or save (and perhaps submit); errors keep everything."""
    viewer = current_viewer()
    values = request.form.copy()
    rows, entries, errors = _kept_files(values, record)
    errors.update(_accept_uploads(values, rows, entries))
    # Accepted uploads now travel as signed references: nothing is lost on a re-render.
    values.setlist("file.ref", [r["ref"] for r in rows])
    for index, row in enumerate(rows):
        for key in ("title", "language", "tier"):
            values[f"file.{index}.{key}"] = row[key]
        values.pop(f"file.{index}.remove", None)
        if row["remove"]:
            values[f"file.{index}.remove"] = "1"
    if values.get("action") == "find_taxa":
        matches, problems = _find_taxa(values.get("taxon_query", ""))
        errors.update({"taxon_query": problems["q"]} if problems else {})
        return _render(record_type, values, rows, errors, record, 422 if problems else 200, matches)
    errors.update(forms.check_form_only(values))
    party = record.party_iso if record is not None else viewer.party_iso
    shape = forms.shape_from_form(record_type, party, values)
    try:
        # Validated once, here: every problem of the form is shown at once, and the service takes
        # the data as loaded.
        data = load_record({**shape, "status": None})
    except ValidationError as exc:
        errors.update(forms.field_errors(exc.messages, shape))
    if errors:
        return _render(record_type, values, rows, errors, record, 422)
    try:
        record = _save(viewer, record, data, entries, values.get("action") == "submit")
    except Invalid as exc:
        errors.update(forms.field_errors(exc.messages, shape))
        shown = record if record and record.id else None
        raise Rejected(_render, record_type, values, rows, errors, shown, 422) from exc
    if values.get("action") == "submit":
        flash(gettext("Submitted to the CITES Secretariat for review."))
        return redirect(url_for("submit.home"))
    flash(gettext("Saved."))
    return redirect(url_for("submit.edit", record_id=record.id))


@bp.route("/new/<record_type>", methods=["GET", "POST"])
@login_required
def new(record_type: str):  # type: ignore[no-untyped-def]
    """A form for a new record of ``record_type`` (one of the nine resource types)."""
    _party_viewer()
    if record_type not in MODEL_FOR_TYPE:
        raise NotFound(record_type)
    if request.method == "POST":
        return _handle(record_type, None)
    return _render(record_type, forms.new_form(record_type), [], {}, None)


@bp.route("/<record_id>", methods=["GET", "POST"])
@login_required
def edit(record_id: str):  # type: ignore[no-untyped-def]
    """Edit a draft or returned record, or prepare the next version of a published one."""
    viewer = current_viewer()
    record = _record(viewer, record_id)
    if not policy.can(viewer, "edit", record):
        # Under review (or withdrawn): the Party sees where it stands, and cannot change it.
        return render_template("submit/status.html", record=record, shape=record_shape.working_shape(record))
    if request.method == "POST":
        return _handle(record.type, record)
    shape = record_shape.working_shape(record)
    values = forms.form_from_shape(shape)
    files = shape.get("files", [])
    values.setlist("file.ref", [f["id"] for f in files])
    rows = []
    for index, f in enumerate(files):
        for key in ("title", "language", "tier"):
            values[f"file.{index}.{key}"] = f[key]
        rows.append({**f, "ref": f["id"], "name": f["original_name"], "remove": False})
    return _render(record.type, values, rows, {}, record)


@bp.route("/<record_id>/submit", methods=["POST"])
@login_required
def send(record_id: str):  # type: ignore[no-untyped-def]
    """Submit a draft, returned record or revision to the Secretariat."""
    viewer = current_viewer()
    record_review.submit(viewer, _record(viewer, record_id))
    flash(gettext("Submitted to the CITES Secretariat for review."))
    return redirect(url_for("submit.home"))


@bp.route("/<record_id>/withdraw", methods=["POST"])
@login_required
def withdraw(record_id: str):  # type: ignore[no-untyped-def]
    """Withdraw a record that is not published; a reason the schema refuses comes back with the message."""
    viewer = current_viewer()
    record = _record(viewer, record_id)
    if not policy.can(viewer, "withdraw", record):
        raise Forbidden("withdraw")
    try:
        data = PartyWithdrawForm().load(request.form)
    except ValidationError as exc:
        messages = [str(m) for m in exc.messages.get("reason", [])]  # type: ignore[union-attr]
        page = render_template(
            "submit/withdraw.html", record=record, reason=request.form.get("reason", ""), errors=messages
        )
        return page, 422
    record_review.withdraw(viewer, record, data["reason"])
    flash(gettext("Withdrawn."))
    return redirect(url_for("submit.home"))


@bp.route("/<record_id>/history")
@login_required
def history(record_id: str):  # type: ignore[no-untyped-def]
    """Every published version of a record, its audit trail and how often its non-public files were
    downloaded, by role and Party (its Party and the Secretariat only; only the Secretariat's trail
    names who downloaded them)."""
    viewer = current_viewer()
    record = _record(viewer, record_id)
    return render_template(
        "submit/history.html",
        record=record,
        versions=record_history.versions(viewer, record),
        trail=audit.trail(viewer, record_id=record.id, per_page=200),
        downloads=audit.download_counts(viewer, record),
    )


@bp.route("/taxa.json")
@login_required
def taxa():  # type: ignore[no-untyped-def]
    """Taxa matching ``q`` in any language, for the taxon picker's script (the checklist is public)."""
    _party_viewer()
    matches, problems = _find_taxa(request.args.get("q", ""))
    if problems:
        return jsonify({"error": gettext("The request is not valid."), "errors": problems}), 400
    return jsonify(
        [
            {
                "name": t.name,
                "rank": t.rank,
                "common": [c for c in (t.common_en, t.common_fr, t.common_es) if c],
            }
            for t in matches
        ]
    )
