"""Creating records from the JSON shape: the ``import`` command and the demo seed.

An import is all or nothing: every record is checked first (shape, Party, taxa, references,
files); if anything is wrong nothing is written and every problem is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select

from schemas import load_record

from .. import extract, policy, storage
from ..db import session
from ..errors import Forbidden, Invalid
from ..models import Party, Record, RescueCentre, Taxon
from ..policy import Viewer
from ..uploads import Staged
from .records import review, write

# Keys an export writes that the server manages: ignored when the same file is imported again.
_SERVER_MANAGED = ("id", "published_at", "updated_at")
_SERVER_MANAGED_FILE = ("id", "size", "sha256", "media_type", "original_name")


@dataclass
class ImportReport:
    """What an import created, or every problem that stopped it."""

    created: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _prepare(raw: Any) -> Any:
    """Drop the server-managed keys of an export, keeping its id as the local reference."""
    if not isinstance(raw, dict):
        return raw
    raw = dict(raw)
    if "id" in raw and "ref" not in raw:
        raw["ref"] = raw["id"]
    for key in _SERVER_MANAGED:
        raw.pop(key, None)
    if isinstance(raw.get("files"), list):
        raw["files"] = [
            {k: v for k, v in f.items() if k not in _SERVER_MANAGED_FILE} if isinstance(f, dict) else f
            for f in raw["files"]
        ]
    return raw


def _flatten(messages: Any, prefix: str = "") -> list[str]:
    """Turn marshmallow's nested messages into 'field.path: message' lines."""
    if isinstance(messages, dict):
        lines: list[str] = []
        for key, value in messages.items():
            name = prefix if key == "_schema" else (f"{prefix}.{key}" if prefix else str(key))
            lines.extend(_flatten(value, name))
        return lines
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{prefix}: {m}" if prefix else m for m in messages]
    if isinstance(messages, list):
        return [line for m in messages for line in _flatten(m, prefix)]
    return [f"{prefix}: {messages}" if prefix else str(messages)]


def _resolve_file(base_dir: Path, relative: str) -> Path | str:
    """The file named by ``relative`` inside ``base_dir``, or the reason it cannot be used."""
    candidate = Path(relative)
    if candidate.is_absolute() or ".." in candidate.parts:
        return "must be a path relative to the JSON file, inside its folder"
    path = (base_dir / candidate).resolve()
    if not path.is_file():
        return "file not found"
    try:
        storage.sniff(path)
    except storage.Refused as exc:
        return str(exc)
    return path


def _check(viewer: Viewer, payload: Any, base_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Validate every record; return the clean data and the list of problems."""
    if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
        return [], ['The file must be a JSON object with a "records" list.']
    unknown_top = sorted(set(payload) - {"records"})
    problems = [f"Unknown top-level field: {name}." for name in unknown_top]
    parties = set(session.scalars(select(Party.iso)))
    taxa = set(session.scalars(select(Taxon.name)))
    cleaned: list[dict[str, Any]] = []
    refs: dict[str, str] = {}
    for index, raw in enumerate(payload["records"], start=1):
        label = f"record {index}"
        if isinstance(raw, dict) and isinstance(raw.get("title"), str):
            label += f" ({raw['title'][:60]})"
        try:
            data = load_record(_prepare(raw))
        except ValidationError as exc:
            problems.extend(f"{label}: {line}" for line in _flatten(exc.messages))
            continue
        if data["party"] and data["party"] not in parties:
            problems.append(f"{label}: party: {data['party']} is not a CITES Party in the registry.")
        if not policy.can(viewer, "create", data["party"]):
            problems.append(f"{label}: party: you may not create records for this Party.")
        if data["status"] not in (None, "draft") and not policy.can(viewer, "review_desk"):
            problems.append(f"{label}: status: only the Secretariat imports records that are not drafts.")
        for name in data["taxa"]:
            if name not in taxa:
                problems.append(f"{label}: taxa: {name} is not in the taxon checklist.")
        ref = data.get("ref")
        if ref:
            if ref in refs:
                problems.append(f"{label}: ref: {ref} is used twice.")
            refs[ref] = data["type"]
        for number, entry in enumerate(data["files"], start=1):
            resolved = _resolve_file(base_dir, entry["path"])
            if isinstance(resolved, str):
                problems.append(f"{label}: files.{number}.path: {entry['path']}: {resolved.rstrip('.')}.")
            else:
                entry["resolved"] = resolved
        cleaned.append(data)
    for data in cleaned:
        for member in data["details"].get("members", []):
            if refs.get(member) == "rescue_centre":
                continue
            existing = session.get(Record, member)
            if not isinstance(existing, RescueCentre) or not policy.can(viewer, "view", existing):
                problems.append(f"{data['title'][:60]}: details.members: {member} is not a rescue centre.")
    return cleaned, problems


def import_records(
    viewer: Viewer, payload: Any, base_dir: Path, files_dir: Path, max_size: int
) -> ImportReport:
    """Create every record of ``payload`` (the JSON shape), or none.

    Each record is created as a form creates one (``records.write``) and brought to the status its
    file states through the review (``records.review.take_in``): a published record has its kept
    version and its trail, as one published on the desk does. Centres come before the networks that
    list them, so a network may name a centre of the same file by its ``ref``.

    Raises Invalid with ``messages["problems"]`` listing every problem when anything is wrong;
    raises Forbidden when ``viewer`` may not create records at all.
    """
    if not (policy.can(viewer, "create", None) or policy.can(viewer, "create", viewer.party_iso)):
        raise Forbidden("create")
    cleaned, problems = _check(viewer, payload, base_dir)
    if problems:
        raise Invalid({"problems": problems})
    stored: list[str] = []
    report = ImportReport()
    try:
        kept_files = _store_files(cleaned, files_dir, max_size, stored)
        by_ref: dict[str, str] = {}
        created: dict[int, Record] = {}
        # Records that list others of this file come after them (a network after its centres).
        order = sorted(range(len(cleaned)), key=lambda i: bool(cleaned[i]["details"].get("members")))
        for index in order:
            data = cleaned[index]
            members = data["details"].get("members")
            if members is not None:
                data["details"]["members"] = [by_ref.get(member, member) for member in members]
            entries = [
                write.FileEntry(
                    language=entry["language"],
                    tier=entry["tier"],
                    title=entry["title"],
                    upload=Staged(
                        stored_name=file.stored_name,
                        original_name=entry["resolved"].name,
                        size=file.size,
                        sha256=file.sha256,
                        media_type=file.media_type,
                        extracted=result,
                    ),
                )
                for entry, (file, result) in zip(data["files"], kept_files[index], strict=True)
            ]
            record = write.create(viewer, data, entries, files_dir)
            default = "published" if policy.can(viewer, "review_desk") else "draft"
            review.take_in(viewer, record, data["status"] or default, files_dir)
            if data.get("ref"):
                by_ref[data["ref"]] = record.id
            created[index] = record
        report.created = [created[index].id for index in range(len(cleaned))]
        session.flush()
    except Exception:
        for name in stored:
            storage.remove(files_dir, name)
        raise
    return report


def _store_files(
    cleaned: list[dict[str, Any]], files_dir: Path, max_size: int, stored: list[str]
) -> list[list[tuple[storage.Stored, extract.Extracted]]]:
    """Store the files of every record (their names added to ``stored``) and extract their texts.

    This comes before the first row is added, so the parsers, however long a file keeps them busy, never
    run while the import's transaction holds the database's write lock. Returns, per record, each file
    stored with its text (or why there is none), in the order of ``cleaned``.
    """
    per_record: list[list[storage.Stored]] = []
    for data in cleaned:
        files = []
        for entry in data["files"]:
            with entry["resolved"].open("rb") as source:
                files.append(storage.store(files_dir, source, max_size))
            stored.append(files[-1].stored_name)
        per_record.append(files)
    every = [file for files in per_record for file in files]
    results = iter(extract.extract_many([(files_dir / f.stored_name, f.media_type) for f in every]))
    return [[(file, next(results)) for file in files] for files in per_record]


def load_reference(parties: list[dict[str, Any]], taxa: list[dict[str, Any]]) -> tuple[int, int]:
    """Insert or update the Parties and the taxon checklist; return how many of each there are."""
    existing_parties = {p.iso: p for p in session.scalars(select(Party))}
    for item in parties:
        party = existing_parties.get(item["iso"]) or Party(iso=item["iso"])
        party.region, party.name_en, party.name_fr, party.name_es = (
            item["region"],
            item["name_en"],
            item["name_fr"],
            item["name_es"],
        )
        session.add(party)
    existing_taxa = {t.name: t for t in session.scalars(select(Taxon))}
    for item in taxa:
        taxon = existing_taxa.get(item["name"]) or Taxon(name=item["name"])
        taxon.rank, taxon.genus, taxon.family = item["rank"], item.get("genus"), item.get("family")
        taxon.order_name, taxon.class_name, taxon.appendix = (
            item.get("order"),
            item.get("class"),
            item.get("appendix"),
        )
        taxon.common_en, taxon.common_fr, taxon.common_es = (
            item["common_en"],
            item["common_fr"],
            item["common_es"],
        )
        session.add(taxon)
    session.flush()
    return len(parties), len(taxa)
