"""Uploads staged across form re-renders, so a file that passed validation is kept with the draft.

A submission form stores each upload at once (``accept``): it is checked, hashed and written under a
random name in ``FILES_DIR`` before any database row names it, and its text is extracted for the search
index there and then, in the view, before the request writes anything: the parsers, however slow a
crafted file makes them, never run while a write transaction is open, and all the uploads of one request
share one extraction deadline. When the form has errors elsewhere, the page is rendered again carrying
each accepted upload as a signed token (``sign``) in a hidden field, and the next post reads it back
(``unsign``) instead of asking for the file again. The token is signed with the app's secret key, so the
client can neither forge one nor alter what it says; it expires after ``TOKEN_MAX_AGE``.

Each user's staged uploads are listed in a folder of their own, ``FILES_DIR/staged/<owner>/``, by a
*sidecar* per upload named like the stored file, which holds the extracted text (or why there is none)
until a ``File`` row takes it. The folder is what the per-user quota counts: the bytes and files on disk
that no row references yet (``MAX_STAGED_BYTES``, ``MAX_STAGED_FILES``). Files of abandoned forms, which
no ``File`` row ever came to reference, are removed by ``sweep`` (``flask --app registry sweep-files``),
which must wait at least as long as a token lives; a user's own are also removed whenever that user
uploads again, so the quota frees itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flask import has_request_context
from flask_babel import gettext
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage

from . import extract, storage
from .extract import Extracted
from .models import File
from .vocab import MEDIA_TYPES

SALT = "registry.upload"
# How long a token stays valid, and how long an unreferenced file is kept: the sweep must never wait
# less than a token lives, or a form could carry a token whose file is gone. A form is worked on for
# minutes, sometimes an afternoon; a file left longer is asked for again.
TOKEN_MAX_AGE = 6 * 3600
SWEEP_AFTER = dt.timedelta(seconds=TOKEN_MAX_AGE)
# What one user may have staged (accepted, and named by no row yet) at a time: a form holds three
# uploads of at most 50 MB, so one full form always fits.
MAX_STAGED_BYTES = 200 * 1024 * 1024
MAX_STAGED_FILES = 300
# The wall-clock time that the text extraction of all the uploads of one request may take together;
# a file still being read when it runs out is saved without text, the reason shown to the Secretariat.
EXTRACT_SECONDS = 20
NOT_EXTRACTED = "the text was not extracted when the file was uploaded"
MAX_NAME_LENGTH = 255
STAGING_FOLDER = "staged"
# Extensions kept whole when a long name is shortened.
_MAX_EXTENSION_LENGTH = 10
_FIELDS = ("stored_name", "original_name", "size", "sha256", "media_type")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_OWNER = re.compile(r"[0-9A-Za-z_-]{1,64}")
_LOCK = ".lock"
# Rows are looked up this many stored names at a time.
_CHUNK = 500


@dataclass(frozen=True)
class Staged:
    """An upload that passed validation and is stored, waiting for the form that carries it to succeed."""

    stored_name: str
    original_name: str
    size: int
    sha256: str
    media_type: str
    # The text for the search index, or why there is none, found when the upload was accepted. Not part
    # of the token (it can be megabytes long): it waits in the owner's sidecar. None if not extracted.
    extracted: Extracted | None = field(default=None, compare=False, repr=False)

    @property
    def text_result(self) -> Extracted:
        """What a ``File`` row made from this upload records: its text, or why there is none."""
        return self.extracted or Extracted(text=None, error=NOT_EXTRACTED)


def accept(
    upload: FileStorage | None,
    files_dir: Path,
    max_size: int,
    *,
    owner: str | None = None,
    session: Session | None = None,
    quota: int = MAX_STAGED_BYTES,
    deadline: float | None = None,
) -> Staged:
    """Store ``upload`` (checked, hashed, at most ``max_size`` bytes), extract its text, return it staged.

    With ``owner`` (a user's key, see ``owner_key``; ``session`` is then needed to tell staged files from
    saved ones) the upload counts against that user's quota of ``quota`` bytes and ``MAX_STAGED_FILES``
    files, and its text is kept in the user's folder for the re-renders of the form. Extraction stops at
    ``deadline`` (a ``time.monotonic()`` instant shared by the uploads of one request).

    Raises storage.Refused when no file was chosen, when the file is empty, too large or of a type that is
    not accepted, or when the owner's quota is full (``str()`` of it says why; ``reason()`` says it in the
    viewer's language). Raises ValueError for an owner key of the wrong shape or one without a session.
    """
    if upload is None or not (upload.filename or "").strip():
        raise storage.Refused("no_file")
    if owner is None:
        stored = storage.store(files_dir, upload.stream, max_size)
    elif session is None:
        raise ValueError("an owner's uploads are counted with a database session")
    else:
        stored = _store_within_quota(session, files_dir, owner, upload, max_size, quota)
    staged = Staged(
        stored_name=stored.stored_name,
        original_name=clean_name(upload.filename or "", stored.media_type),
        size=stored.size,
        sha256=stored.sha256,
        media_type=stored.media_type,
    )
    return with_text(staged, files_dir, owner=owner, deadline=deadline)


def with_text(
    staged: Staged, files_dir: Path, *, owner: str | None = None, deadline: float | None = None
) -> Staged:
    """``staged`` with the text of its file extracted (by ``deadline`` at the latest) and, with ``owner``,
    kept in that user's folder, so that re-renders of the form do not extract it again."""
    result = extract.extract_many(
        [(storage.path_of(files_dir, staged.stored_name), staged.media_type)], deadline=deadline
    )[0]
    if owner is not None:
        _write_sidecar(_owner_folder(files_dir, owner), staged.stored_name, result)
    return dataclasses.replace(staged, extracted=result)


def owner_key(user_id: int) -> str:
    """The key under which the uploads of the user ``user_id`` are staged and counted."""
    return str(int(user_id))


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
    return _serializer(secret_key).dumps({name: getattr(staged, name) for name in _FIELDS})


def unsign(
    token: object,
    secret_key: str,
    max_age: int = TOKEN_MAX_AGE,
    files_dir: Path | None = None,
    owner: str | None = None,
) -> Staged | None:
    """The upload a token from ``sign`` carries, or None if it is tampered with, malformed or expired.

    With ``files_dir``, also None when the file is no longer there; a file still there is marked as
    used now, so ``sweep`` leaves it alone while the form is being worked on. With ``owner`` too, the
    text kept in that user's folder comes with it (``extracted`` stays None when there is none).
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
    if owner is None:
        return staged
    kept = _read_sidecar(_owner_path(files_dir, owner) / staged.stored_name)
    return dataclasses.replace(staged, extracted=kept)


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


# The owner's folder: sidecars, the quota, the owner's own sweep -----------------------------------


def _owner_path(files_dir: Path, owner: str) -> Path:
    """Where the sidecars of ``owner``'s staged uploads are; raises ValueError for a malformed key."""
    if not isinstance(owner, str) or not _OWNER.fullmatch(owner):
        raise ValueError("not an owner key")
    return files_dir / STAGING_FOLDER / owner


def _owner_folder(files_dir: Path, owner: str) -> Path:
    """``_owner_path``, created if need be, readable by the app's own user only (it holds texts)."""
    folder = _owner_path(files_dir, owner)
    for path in (folder.parent, folder):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the owner's lock: two requests of one user cannot both count the same free space."""
    descriptor = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _store_within_quota(
    session: Session, files_dir: Path, owner: str, upload: FileStorage, max_size: int, quota: int
) -> storage.Stored:
    """Store ``upload`` for ``owner`` if it fits in what the owner may still stage; raise Refused if not."""
    folder = _owner_folder(files_dir, owner)
    full = storage.Refused("staging_full", limit=storage.megabytes(quota), count=MAX_STAGED_FILES)
    with _locked(folder):
        used, count, _removed = _tidy(folder, files_dir, time.time() - TOKEN_MAX_AGE, _rows_of(session))
        if used >= quota or count >= MAX_STAGED_FILES:
            raise full
        stored = storage.store(files_dir, upload.stream, max_size)
        if used + stored.size > quota:
            storage.remove(files_dir, stored.stored_name)
            raise full
        # An empty sidecar at once: from now on the file counts for the owner, text or no text yet.
        _write_sidecar(folder, stored.stored_name, None)
    return stored


def _rows_of(session: Session) -> Callable[[list[str]], set[str]]:
    """A function giving which of the stored names it is passed a ``File`` row names."""

    def referenced(names: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            found.update(session.scalars(select(File.stored_name).where(File.stored_name.in_(chunk))))
        return found

    return referenced


def _tidy(
    folder: Path, files_dir: Path, cutoff: float, referenced: Callable[[list[str]], set[str]]
) -> tuple[int, int, list[str]]:
    """Tidy one owner's folder; return the bytes and the number of files still staged, and those removed.

    A sidecar whose file a row names (the row has the text) or whose file is gone is deleted; a staged
    file untouched since ``cutoff`` is deleted with its sidecar. What is left is what the owner has staged.
    """
    names = [entry.name for entry in os.scandir(folder) if storage.is_stored_name(entry.name)]
    # The files are looked at before the rows are read: a file whose row commits meanwhile is then seen
    # as referenced, never as abandoned.
    found: dict[str, os.stat_result | None] = {}
    for name in names:
        try:
            found[name] = storage.path_of(files_dir, name).stat()
        except FileNotFoundError:
            found[name] = None
    saved = referenced(names) if names else set()
    used, count, removed = 0, 0, []
    for name, state in found.items():
        if state is None or name in saved:
            (folder / name).unlink(missing_ok=True)
        elif state.st_mtime < cutoff and _remove_if_untouched(storage.path_of(files_dir, name), cutoff):
            (folder / name).unlink(missing_ok=True)
            removed.append(name)
        else:
            used += state.st_size
            count += 1
    return used, count, removed


def _remove_if_untouched(path: Path, cutoff: float) -> bool:
    """Delete ``path`` if it is still untouched since ``cutoff``; whether it was deleted."""
    try:
        # Looked at again just before deleting: ``unsign`` may have just marked it as in use.
        if path.stat().st_mtime >= cutoff:
            return False
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _write_sidecar(folder: Path, stored_name: str, result: Extracted | None) -> None:
    """Keep ``result`` (None: not extracted yet) beside the owner's upload ``stored_name``, atomically."""
    payload = {} if result is None else {"text": result.text, "error": result.error}
    temporary = folder / f"{storage.TEMPORARY_PREFIX}{secrets.token_hex(16)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(descriptor, "w", encoding="utf-8") as out:
            json.dump(payload, out, ensure_ascii=False)
        os.replace(temporary, folder / stored_name)
    finally:
        temporary.unlink(missing_ok=True)


def _read_sidecar(path: Path) -> Extracted | None:
    """The result kept in the sidecar at ``path``, or None if there is none (or it is unreadable)."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(payload, dict) or set(payload) != {"text", "error"}:
        return None
    text, error = payload["text"], payload["error"]
    if not (isinstance(text, str | None) and isinstance(error, str | None)):
        return None
    return Extracted(text=text, error=error)


# The sweep ----------------------------------------------------------------------------------------


def sweep(session: Session, files_dir: Path, older_than: dt.timedelta = SWEEP_AFTER) -> list[str]:
    """Delete the files in ``files_dir`` that no ``File`` row names and untouched for ``older_than``.

    Only names that ``storage.store`` gives are considered (stored files and its temporary files), and
    the owners' folders of sidecars, so nothing else in the folder is ever touched; a file that a row
    names is never deleted. Sidecars go with their files, and once a row has taken their text. Returns
    the names of the files removed, sorted.
    """
    if not files_dir.is_dir():
        return []
    cutoff = time.time() - older_than.total_seconds()
    removed = _sweep_owners(session, files_dir, cutoff)
    # Listed before the rows are read: a file whose row commits meanwhile is then seen as referenced.
    candidates = [
        entry.name
        for entry in os.scandir(files_dir)
        if (storage.is_stored_name(entry.name) or storage.is_temporary_name(entry.name))
        and entry.is_file(follow_symlinks=False)
        and entry.stat(follow_symlinks=False).st_mtime < cutoff
    ]
    if candidates:
        referenced = set(session.scalars(select(File.stored_name)))
        for name in candidates:
            if name not in referenced and _remove_if_untouched(files_dir / name, cutoff):
                removed.append(name)
    return sorted(removed)


def _sweep_owners(session: Session, files_dir: Path, cutoff: float) -> list[str]:
    """Tidy every owner's folder (see ``_tidy``) and drop its sidecars left half-written; return the
    staged files removed."""
    staging = files_dir / STAGING_FOLDER
    if not staging.is_dir():
        return []
    removed: list[str] = []
    for entry in os.scandir(staging):
        if not (_OWNER.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)):
            continue
        folder = Path(entry.path)
        removed.extend(_tidy(folder, files_dir, cutoff, _rows_of(session))[2])
        for leftover in os.scandir(folder):
            if storage.is_temporary_name(leftover.name) and leftover.stat().st_mtime < cutoff:
                Path(leftover.path).unlink(missing_ok=True)
    return removed
