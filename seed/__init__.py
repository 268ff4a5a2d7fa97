"""Reference and demo data: the CITES Parties, the taxon checklist, the demo records.

The loader goes through the services, like any other import; the demo files are real PDF
and DOCX documents generated here from the text in ``demo.json``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from .documents import write_document

SEED_DIR = Path(__file__).resolve().parent


def read_json(name: str) -> Any:
    """Read one of the seed files."""
    return json.loads((SEED_DIR / name).read_text(encoding="utf-8"))


def materialise_demo(target: Path, demo: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the demo documents into ``target`` and return the demo payload in the import shape.

    Each file entry of ``demo.json`` carries the ``text`` its document says; the text is used
    to write the document and dropped from the payload.
    """
    demo = demo if demo is not None else read_json("demo.json")
    records = []
    for record in demo["records"]:
        record = dict(record)
        files = []
        for entry in record.get("files", []):
            entry = dict(entry)
            text = entry.pop("text", "")
            write_document(target / entry["path"], entry.get("title") or record["title"], text)
            files.append(entry)
        record["files"] = files
        records.append(record)
    return {"records": records}


def demo_payload() -> tuple[dict[str, Any], tempfile.TemporaryDirectory[str]]:
    """The demo payload and the temporary folder holding its documents (clean it up when done)."""
    folder = tempfile.TemporaryDirectory(prefix="registry-demo-")
    return materialise_demo(Path(folder.name)), folder
