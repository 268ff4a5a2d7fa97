"""Exporting records in the JSON shape, projected for one tier."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from .. import policy, storage
from ..db import session
from ..errors import Forbidden
from ..models import File, Record
from ..policy import Viewer
from .records.shape import exported, project


def export_records(viewer: Viewer, tier: str, out_path: Path, files_dir: Path) -> int:
    """Write the published records visible at ``tier`` to ``out_path``, with their visible files.

    Files are copied into a folder beside the JSON (``<name>_files/``) and named by relative
    paths, so the export can be imported again. Returns the number of records written.
    Raises Forbidden when ``viewer`` may not export at ``tier``.
    """
    if tier not in policy.allowed_tiers(policy.CONFIDENTIAL) or not policy.can(viewer, "export", tier):
        raise Forbidden("export")
    # An export is for everyone entitled to ``tier``: a Party's own drafts never go into it.
    stmt = policy.published_at(select(Record), tier).order_by(Record.type, Record.title)
    files_folder = out_path.with_name(out_path.stem + "_files")
    records: list[dict[str, Any]] = []
    for record in session.scalars(stmt):
        projection = project(record, policy.audience(tier))
        data = exported(projection)
        for entry, view in zip(data["files"], projection.files, strict=True):
            stored = session.get(File, view.id)
            # Named as a download is: a copy opens in the program of what it is, never of its name.
            target = files_folder / storage.served_name(f"{view.id}-{view.original_name}", view.media_type)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(files_dir / stored.stored_name, target)
            entry["path"] = f"{files_folder.name}/{target.name}"
        records.append(data)
    out_path.write_text(json.dumps({"records": records}, ensure_ascii=False, indent=2, default=str) + "\n")
    return len(records)
