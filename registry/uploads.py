"""Uploads staged across form re-renders, so a file that passed validation is kept with the draft.

A submission form stores each upload at once (``accept``): it is checked, hashed and written under a
random name in ``FILES_DIR`` before any database row names it. When the form has errors elsewhere, the
page is rendered again carrying each accepted upload as a signed token (``sign``) in a hidden field, and
the next post reads it back (``unsign``) instead of asking for the file again. The token is signed with
the app's secret key, so the client can neither forge one nor alter what it says; it expires after a day.
Files of abandoned forms, which no ``File`` row ever came to reference, are removed by ``sweep``
(``flask --app registry sweep-files``), which must wait at least as long as a token lives.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from flask import has_request_context
from flask_babel import gettext
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage

from . import storage
from .models import File
from .vocab import MEDIA_TYPES

SALT = "registry.upload"
# How long a token stays valid, and how long an unreferenced file is kept: the sweep must never wait
# less than a token lives, or a form could carry a token whose file is gone.
TOKEN_MAX_AGE = 86400
SWEEP_AFTER = dt.timedelta(seconds=TOKEN_MAX_AGE)
MAX_NAME_LENGTH = 255
# Extensions kept whole when a long name is shortened.
_MAX_EXTENSION_LENGTH = 10
_FIELDS = ("stored_name", "original_name", "size", "sha256", "media_type")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Staged:
    """An upload that passed validation and is stored, waiting for the form that carries it to succeed."""

    stored_name: str
    original_name: str
    size: int
    sha256: str
    media_type: str


def accept(upload: FileStorage | None, files_dir: Path, max_size: int) -> Staged:
    """Store ``upload`` (checked, hashed, at most ``max_size`` bytes) and return it as staged.

    Raises storage.Refused when no file was chosen, or when the file is empty, too large or of a type
    that is not accepted (``str()`` of it says why; ``reason()`` says it in the viewer's language).
    """
    if upload is None or not (upload.filename or "").strip():
        raise storage.Refused("no_file")
    stored = storage.store(files_dir, upload.stream, max_size)
    return Staged(
        stored_name=stored.stored_name,
        original_name=clean_name(upload.filename or "", stored.media_type),
        size=stored.size,
        sha256=stored.sha256,
        media_type=stored.media_type,
    )


def clean_name(name: str, media_type: str = "") -> str:
    """``name`` fit to show and to keep: the last path part, no control or format characters, NFC.

    At most 255 characters, keeping a short extension; a name with nothing left gets ``document``
    and the usual extension of ``media_type``.
    """
    name = unicodedata.normalize("NFC", name)
    # Browsers on Windows used to send the whole path; either separator may come.
    name = re.split(r"[/\\]", name)[-1]
    # Control characters, and format characters such as U+202E, which can make "fdp.exe" read "exe.pdf".
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if name in ("", ".", ".."):
        return "document" + storage.extension_for(media_type)
    if len(name) <= MAX_NAME_LENGTH:
        return name
    stem, dot, extension = name.rpartition(".")
    if stem and len(extension) <= _MAX_EXTENSION_LENGTH:
        return stem[: MAX_NAME_LENGTH - len(extension) - 1].rstrip() + dot + extension
    return name[:MAX_NAME_LENGTH]


def reason(refused: storage.Refused) -> str:
    """Why a file was refused: in the viewer's language inside a request, in English elsewhere."""
    if not has_request_context():
        return str(refused)
    return gettext(refused.template, **refused.params)


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def sign(staged: Staged, secret_key: str) -> str:
    """A token carrying ``staged`` that the client cannot forge or alter (for a hidden form field)."""
    return _serializer(secret_key).dumps(dataclasses.asdict(staged))


def unsign(
    token: object, secret_key: str, max_age: int = TOKEN_MAX_AGE, files_dir: Path | None = None
) -> Staged | None:
    """The upload a token from ``sign`` carries, or None if it is tampered with, malformed or expired.

    With ``files_dir``, also None when the file is no longer there; a file still there is marked as
    used now, so ``sweep`` leaves it alone while the form is being worked on.
    """
    if not isinstance(token, str) or not token:
        return None
    try:
        data = _serializer(secret_key).loads(token, max_age=max_age)
    except BadSignature:
        return None
    staged = _staged_from(data)
    if staged is None or files_dir is None:
        return staged
    try:
        os.utime(storage.path_of(files_dir, staged.stored_name))
    except FileNotFoundError:
        return None
    return staged


def _staged_from(data: object) -> Staged | None:
    """A Staged from a token's payload, if it has exactly the right shape (belt and braces: it is signed)."""
    if not isinstance(data, dict) or set(data) != set(_FIELDS):
        return None
    staged = Staged(**data)
    if not (
        isinstance(staged.stored_name, str)
        and storage.is_stored_name(staged.stored_name)
        and isinstance(staged.original_name, str)
        and isinstance(staged.size, int)
        and isinstance(staged.sha256, str)
        and _SHA256.fullmatch(staged.sha256)
        and staged.media_type in MEDIA_TYPES
    ):
        return None
    return staged


def sweep(session: Session, files_dir: Path, older_than: dt.timedelta = SWEEP_AFTER) -> list[str]:
    """Delete the files in ``files_dir`` that no ``File`` row names and untouched for ``older_than``.

    Only names that ``storage.store`` gives are considered (stored files and its temporary files),
    so nothing else in the folder is ever touched; a file that a row names is never deleted. Returns
    the names removed, sorted.
    """
    if not files_dir.is_dir():
        return []
    cutoff = time.time() - older_than.total_seconds()
    # Listed before the rows are read: a file whose row commits meanwhile is then seen as referenced.
    candidates = [
        entry.name
        for entry in os.scandir(files_dir)
        if (storage.is_stored_name(entry.name) or storage.is_temporary_name(entry.name))
        and entry.is_file(follow_symlinks=False)
        and entry.stat(follow_symlinks=False).st_mtime < cutoff
    ]
    if not candidates:
        return []
    referenced = set(session.scalars(select(File.stored_name)))
    removed = []
    for name in sorted(candidates):
        if name in referenced:
            continue
        path = files_dir / name
        try:
            # Looked at again just before deleting: ``unsign`` may have just marked it as in use.
            if path.stat().st_mtime >= cutoff:
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(name)
    return removed
