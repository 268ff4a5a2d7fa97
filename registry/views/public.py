"""Public pages: home, browse, a record, a file, the Parties. Everything goes through the services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, render_template, request, send_file
from marshmallow import Schema, ValidationError

from schemas.query import BrowseArgs, SearchArgs

from .. import pagecache, policy, storage
from ..auth import current_viewer
from ..services import audit
from ..services.records import read
from ..services.records.read import RecordFilters
from ..services.search import SearchParams, run_search

bp = Blueprint("public", __name__)


def _parse_query(schema_cls: type[Schema]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The query string loaded with ``schema_cls``; bad parameters are dropped and named, never a 500."""
    args = {k: v for k, v in request.args.items() if v != ""}
    try:
        return schema_cls().load(args), {}
    except ValidationError as exc:
        errors: dict[str, list[str]] = exc.messages  # type: ignore[assignment]
        return schema_cls().load({k: v for k, v in args.items() if k not in errors}), errors


@bp.route("/")
def home():  # type: ignore[no-untyped-def]
    """What the registry is, what it holds (counting only what the viewer may see), the latest records."""
    summary = read.home_summary(current_viewer())
    return render_template("public/home.html", summary=summary)


@bp.route("/records")
def browse():  # type: ignore[no-untyped-def]
    """Browse records with filters; invalid filters are reported and ignored, never a 500."""
    parsed, errors = _parse_query(BrowseArgs)
    page_number = parsed.pop("page")
    filters = RecordFilters(**parsed)
    viewer = current_viewer()
    page = read.list_records(viewer, filters, page_number, current_app.config["PER_PAGE"])
    facets = read.facet_counts(viewer, filters)
    return (
        render_template(
            "public/browse.html",
            page=page,
            filters=filters,
            facets=facets,
            errors=errors,
            taxa=read.list_taxa(),
            parties=read.list_parties(),
        ),
        400 if errors else 200,
    )


@bp.route("/search")
def search_page():  # type: ignore[no-untyped-def]
    """Full-text search in the index of the viewer's tier, with facets; bad parameters are named."""
    parsed, errors = _parse_query(SearchArgs)
    params = SearchParams(**parsed, per_page=current_app.config["PER_PAGE"])
    results = run_search(current_viewer(), params)
    if results.partial:
        # Cut short by the time limit: the next visitor gets a full answer if it comes in time.
        pagecache.uncacheable()
    return (
        render_template("public/search.html", params=params, results=results, errors=errors),
        400 if errors else 200,
    )


@bp.route("/records/<record_id>")
def record(record_id: str):  # type: ignore[no-untyped-def]
    """One record, as much of it as the viewer may see; 404 when missing or hidden alike."""
    projection = read.view_record(current_viewer(), record_id)
    return render_template("public/record.html", record=projection)


@bp.route("/files/<file_id>")
def download(file_id: str):  # type: ignore[no-untyped-def]
    """Download a file through the policy, always as an attachment."""
    viewer = current_viewer()
    file, path = read.get_file(viewer, file_id, Path(current_app.config["FILES_DIR"]))
    response = send_file(
        path,
        mimetype=file.media_type,
        as_attachment=True,
        download_name=storage.served_name(file.original_name, file.media_type),
        conditional=True,
        etag=file.sha256,
    )
    # Open to all is what the policy says of an anonymous visitor, never re-derived here.
    open_to_all = policy.can(policy.audience(policy.PUBLIC), "download", file)
    # Even a public file is revalidated (cheaply, by its ETag) on every use: once it is marked
    # confidential, a browser that kept a copy is told so at once.
    response.headers["Cache-Control"] = "private, no-cache" if open_to_all else "private, no-store"
    if not open_to_all:
        audit.log(viewer, "download", file=file, tier=policy.file_tier(file))
    return response


@bp.route("/parties")
def parties():  # type: ignore[no-untyped-def]
    """The Parties, by region, with how many records of each the viewer may see."""
    counts = read.facet_counts(current_viewer(), RecordFilters())["party_iso"]
    return render_template("public/parties.html", parties=read.list_parties(), counts=counts)


@bp.route("/parties/<iso>")
def party(iso: str):  # type: ignore[no-untyped-def]
    """A Party's resources that the viewer may see."""
    found = read.get_party(iso)
    page_number = request.args.get("page", "1")
    page_number = int(page_number) if page_number.isdigit() and 0 < int(page_number) < 10000 else 1
    page = read.list_records(
        current_viewer(), RecordFilters(party=found.iso), page_number, current_app.config["PER_PAGE"]
    )
    return render_template("public/party.html", party=found, page=page)


@bp.route("/about")
def about():  # type: ignore[no-untyped-def]
    """What the registry is for, who runs it and how confidentiality works."""
    return render_template("public/about.html")
