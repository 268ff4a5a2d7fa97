"""Uploaded files: kept under ``FILES_DIR`` with random names, outside any static folder.

A file is written to a temporary name, fsynced and hashed, then moved into place; its
media type is found by parsing the content, never from the name.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .vocab import MEDIA_TYPES

_CHUNK = 1 << 16
# Office documents are zip files; refuse archives that would expand absurdly (zip bombs).
MAX_UNCOMPRESSED = 200 * 1024 * 1024
MAX_RATIO = 200


class Refused(ValueError):
    """The file is not accepted; the message says why."""


@dataclass(frozen=True)
class Stored:
    """A file now in storage."""

    stored_name: str
    size: int
    sha256: str
    media_type: str


def sniff(path: Path) -> str:
    """Return the media type of the file at ``path`` by parsing it; raise Refused for anything else."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(path)
    raise Refused("Only PDF, DOCX, ODT, XLSX, JPEG and PNG files are accepted.")


def _sniff_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            total = sum(info.file_size for info in infos)
            packed = max(1, sum(info.compress_size for info in infos))
            if total > MAX_UNCOMPRESSED or total / packed > MAX_RATIO:
                raise Refused("The document expands to an unreasonable size (a possible zip bomb).")
            names = {info.filename for info in infos}
            if "word/document.xml" in names:
                return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            if "xl/workbook.xml" in names:
                return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            if (
                "mimetype" in names
                and archive.read("mimetype").strip() == b"application/vnd.oasis.opendocument.text"
            ):
                return "application/vnd.oasis.opendocument.text"
    except zipfile.BadZipFile as exc:
        raise Refused("The document is a damaged zip archive.") from exc
    raise Refused("Only PDF, DOCX, ODT, XLSX, JPEG and PNG files are accepted.")


def store(files_dir: Path, source: BinaryIO, max_size: int) -> Stored:
    """Copy ``source`` into storage under a random name; raise Refused if too large or of a refused type."""
    files_dir.mkdir(parents=True, exist_ok=True)
    stored_name = secrets.token_hex(16)
    temporary = files_dir / f".incoming-{stored_name}"
    digest = hashlib.sha256()
    size = 0
    try:
        with temporary.open("wb") as out:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                if size > max_size:
                    raise Refused(f"The file is larger than the limit of {max_size // (1024 * 1024)} MB.")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise Refused("The file is empty.")
        media_type = sniff(temporary)
        os.replace(temporary, files_dir / stored_name)
    finally:
        temporary.unlink(missing_ok=True)
    return Stored(stored_name=stored_name, size=size, sha256=digest.hexdigest(), media_type=media_type)


def path_of(files_dir: Path, stored_name: str) -> Path:
    """The path of a stored file."""
    return files_dir / stored_name


def remove(files_dir: Path, stored_name: str) -> None:
    """Delete a stored file if it is there."""
    (files_dir / stored_name).unlink(missing_ok=True)


def extension_for(media_type: str) -> str:
    """The usual extension for an accepted media type."""
    return MEDIA_TYPES.get(media_type, "")
