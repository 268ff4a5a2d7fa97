"""Uploaded files: kept under ``FILES_DIR`` with random names, outside any static folder.

``store`` streams a file to a temporary name in the same folder, hashing it and enforcing the size
limit as it goes (never holding it in memory), fsyncs it, finds its media type by parsing the content
(never from the name), then renames it into place and fsyncs the folder: a file is either complete
under its final name or absent. Callers store the file before the database row that names it commits.

A PDF must be nothing but PDF: between its objects, cross-reference tables, trailers and ``startxref``
lines there may be only whitespace and comments (``_check_pdf_layout``), so no web page or script can sit
in the gaps of a file that readers still open as a PDF. Files are served under a name whose extension is
that of their parsed type (``served_name``), whatever name they were uploaded with.

Refusals are shown to users, in their language, and also printed by the CLI, where there is no request
and so no language. Flask-Babel's lazy strings cannot serve both: inside an app context without a
request (the CLI) turning one into text fails, because the app's locale selector reads the request. So
``Refused`` carries a stable ``code``, the ``params`` of its message, and the plain English sentence as
``str()``; the sentences are marked with ``N_`` for the catalog, and ``uploads.reason()`` translates
them for the viewer inside a request.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import secrets
import shutil
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .vocab import MEDIA_TYPES

_CHUNK = 1 << 16
_MB = 1024 * 1024

# Office documents are zip files; refuse archives that would expand absurdly (zip bombs), judged from
# the archive's directory alone, before anything is decompressed.
MAX_UNCOMPRESSED = 200 * _MB
MAX_RATIO = 200
MAX_MEMBERS = 10_000
# A document embedded in a document (a chart's workbook inside a DOCX) is a zip inside a zip; deeper
# nesting than this is refused.
MAX_NESTING = 2
# Small members compress far beyond MAX_RATIO when repetitive (XML) and are harmless: a ratio, of one
# member or of the whole archive, is judged only above this expanded size.
_RATIO_FLOOR = _MB
# The central directory is read whole by zipfile; real documents need far less than this per member.
_DIRECTORY_BYTES_PER_MEMBER = 512
# Office programs write only stored and deflated members; other methods (bzip2 can expand a few
# kilobytes into gigabytes in one call) are refused rather than decompressed.
_COMPRESSION_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
# A PDF ends with %%EOF; readers look for it in the last kilobyte, this allows for trailing padding.
_PDF_TAIL = 4096
# The layout of a PDF (ISO 32000-1, 7.2 and 7.5): between its top-level parts (indirect objects, cross-
# reference tables with their trailers, trailers alone, "startxref" lines) only whitespace and comments.
_PDF_WS = rb"\x00\t\n\x0c\r "
_PDF_DELIMITERS = frozenset(b"\x00\t\n\x0c\r ()<>[]{}/%")
_W = rb"[%s]" % _PDF_WS
_REGULAR = rb"[^%s()<>\[\]{}/%%]" % _PDF_WS
# A keyword starts after whitespace or a delimiter, but not after "/" (that is a name) or "%" (a comment).
_KEYWORD_START = rb"(?<=[%s()<>\[\]{}])" % _PDF_WS
_GAP = rb"(?:%s++|%%[^\r\n]*+)*+" % _W
_HEX = rb"<[0-9A-Fa-f%s]*+>" % _PDF_WS


def _nested(opening: bytes, closing: bytes, plain: bytes, others: bytes, depth: int) -> bytes:
    """A pattern for ``opening ... closing`` holding ``plain`` runs, ``others``, and itself nested
    ``depth`` levels deep (regular expressions cannot nest without limit: deeper goes the slow way)."""
    pattern = rb"%s(?:%s|%s)*+%s" % (opening, plain, others, closing)
    for _ in range(depth):
        pattern = rb"%s(?:%s|%s|%s)*+%s" % (opening, plain, others, pattern, closing)
    return pattern


_STRING = _nested(rb"\(", rb"\)", rb"[^()\\]++", rb"\\.", 3)
_DICTIONARY = _nested(b"<<", b">>", rb"[^()<>%]++", rb"%s|%s|%%[^\r\n]*+" % (_STRING, _HEX), 3)
# An object's body: anything but a string, a hex string, a comment, "stream" and "endobj" is stepped over.
_BODY = rb"(?:[^()<%%es]++|%s|<<|%s|%%[^\r\n]*+|e(?!ndobj)|s(?!tream))*+" % (_STRING, _HEX)
# Stream data end at the first "endstream" here; a stream holding that word is measured by its /Length
# on the slow path.
_STREAM = rb"%sstream(?>.*?endstream)(?!%s)" % (_KEYWORD_START, _REGULAR)
_OBJECT = rb"(?>\d{1,10}%s++\d{1,5}%s++obj(?!%s)%s(?:%s%s)?%sendobj(?!%s))" % (
    _W, _W, _REGULAR, _BODY, _STREAM, _BODY, _KEYWORD_START, _REGULAR
)
_XREF = rb"(?>xref[0-9fn%s]*+trailer%s%s)" % (_PDF_WS, _GAP, _DICTIONARY)
_TRAILER = rb"(?>trailer%s%s)" % (_GAP, _DICTIONARY)
_STARTXREF = rb"startxref%s++\d{1,20}" % _W
# Every well-formed part in one go, without a step in Python; the first part it cannot read is read the
# slow way (``_pdf_part_end``), which allows what regular expressions cannot express.
_PDF_PARTS = re.compile(
    rb"(?:%s(?:%s|%s|%s|%s))*+%s" % (_GAP, _OBJECT, _XREF, _TRAILER, _STARTXREF, _GAP), re.S
)
_PDF_GAP = re.compile(_GAP)
_PDF_BODY = re.compile(_BODY, re.S)
_PDF_STRING = re.compile(_STRING, re.S)
_PDF_HEX = re.compile(_HEX)
_PDF_OBJECT_HEAD = re.compile(rb"\d{1,10}%s++\d{1,5}%s++obj(?!%s)" % (_W, _W, _REGULAR))
_PDF_XREF_HEAD = re.compile(rb"xref[0-9fn%s]*+trailer" % _PDF_WS)
_PDF_STARTXREF = re.compile(_STARTXREF)
_PDF_DICT_MARK = re.compile(rb"<<|>>|[(<%]")
_PDF_STRING_MARK = re.compile(rb"[()\\]")
# A stream's length: direct ("/Length 42"), or indirect ("/Length 7 0 R"), which is not followed here.
_PDF_LENGTH = re.compile(rb"/Length%s++(\d{1,20})(?:%s++\d{1,5}%s++(R))?" % (_W, _W, _W))
_PDF_ENDSTREAM = re.compile(rb"%s*+endstream" % _W)
# Steps of the slow way allowed in one file: real files need a handful, a crafted one would need millions.
_PDF_SLOW_STEPS = 100_000

TEMPORARY_PREFIX = ".incoming-"

# JPEG markers: start of scan, and the frame headers (SOF0-SOF15 but for DHT, JPG and DAC) one of which
# must come before it. Real files have a dozen segments before the scan and no fill bytes.
_JPEG_SOS = 0xDA
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_MAX_SEGMENTS = 1000
_JPEG_MAX_FILL = 64

# What carries macros in an office document: part names, folders, and declared content types.
_MACRO_PARTS = frozenset({"vbaproject.bin", "vbadata.xml"})
_MACRO_FOLDERS = ("xl/macrosheets/", "basic/", "scripts/")
_MACRO_CONTENT_TYPES = (b"macroenabled", b"vbaproject", b"macrosheet")
_CONTENT_TYPES_LIMIT = 1 << 20

# What zipfile and zlib raise on a malformed archive (bad offsets surface as OSError, bad UTF-8 names as
# UnicodeDecodeError, exotic methods as NotImplementedError). Refused, a ValueError, is not among them.
_MALFORMED = (zipfile.BadZipFile, zlib.error, UnicodeDecodeError, NotImplementedError, EOFError, OSError)


def N_(message: str) -> str:
    """Mark ``message`` for the translation catalog (pybabel's default keyword) without translating it."""
    return message


# The sentences users see, by code. Their wording is part of the interface: the CLI prints them.
MESSAGES: dict[str, str] = {
    "no_file": N_("No file was included: choose a file to upload."),
    "empty": N_("The file is empty."),
    "too_large": N_("The file is larger than the limit of %(limit)s MB."),
    "unsupported": N_("Only PDF, DOCX, ODT, XLSX, JPEG and PNG files are accepted."),
    "legacy_office": N_(
        "Older Word and Excel files (.doc, .xls) and password-protected documents are not accepted. "
        "Save the document as PDF, DOCX, ODT or XLSX without a password and upload it again."
    ),
    "damaged_pdf": N_(
        "The PDF file is damaged or incomplete (its end is missing). Save or export it again and upload "
        "the new copy."
    ),
    "malformed_pdf": N_(
        "The PDF file cannot be checked: it holds data outside its structure (such as a web page hidden "
        "in it), or its structure is broken. Save or export it again as PDF and upload the new copy."
    ),
    "damaged_image": N_("The image is damaged or incomplete."),
    "macros": N_(
        "Documents with macros (such as .docm and .xlsm files) are not accepted. Save the document "
        "without macros, as DOCX, XLSX, ODT or PDF, and upload it again."
    ),
    "damaged_document": N_(
        "The document is damaged or is not a genuine DOCX, ODT or XLSX file. Save it again and upload "
        "the new copy."
    ),
    "encrypted": N_("The document is protected by a password. Remove the password and upload it again."),
    "zip_bomb": N_(
        "The document would expand to an unreasonable size when opened (a possible zip bomb), so it is "
        "refused."
    ),
    "too_many_parts": N_("The document is made of too many parts (more than %(limit)s)."),
    "nested_too_deep": N_("The document contains files nested too deeply inside one another."),
    "staging_full": N_(
        "The files you uploaded to forms that are not saved yet already reach the limit (%(limit)s MB or "
        "%(count)s files). Save the form you are working on, or upload again in a few hours, once the "
        "files of forms left unsaved have been removed."
    ),
}


class Refused(ValueError):
    """The file is not accepted.

    ``code`` names the reason (a key of ``MESSAGES``, stable for callers that branch on it),
    ``params`` fill its message, and ``str()`` is the plain English sentence, usable anywhere.
    ``uploads.reason()`` gives it in the viewer's language.
    """

    def __init__(self, code: str, **params: object) -> None:
        self.code = code
        self.params = params
        super().__init__(MESSAGES[code] % params)

    @property
    def template(self) -> str:
        """The untranslated message, with ``%(name)s`` placeholders for ``params``."""
        return MESSAGES[self.code]


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
        head = handle.read(16)
        handle.seek(max(0, path.stat().st_size - _PDF_TAIL))
        tail = handle.read()
    if head.startswith(b"%PDF-"):
        if b"%%EOF" not in tail:
            raise Refused("damaged_pdf")
        _check_pdf_layout(path)
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        # The first chunk of every PNG is its 13-byte header.
        if head[8:16] != b"\x00\x00\x00\x0dIHDR":
            raise Refused("damaged_image")
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        _check_jpeg(path)
        return "image/jpeg"
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(path)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        # The old compound-file format: .doc, .xls, and the envelope of any password-protected DOCX/XLSX.
        raise Refused("legacy_office")
    raise Refused("unsupported")


def _check_pdf_layout(path: Path) -> None:
    """Refuse a PDF with anything but whitespace and comments between its top-level parts.

    Top-level parts are indirect objects (``N G obj ... endobj``, streams included), cross-reference
    tables with their trailer, trailers alone and ``startxref`` lines; incremental updates,
    cross-reference and object streams, and linearized files are made of the same parts. Inside an
    object, strings, hex strings and comments are stepped over as such, so that an ``endobj`` in a string
    cannot end it; a hex string must be hex, which no HTML tag is. Raises Refused (``malformed_pdf``).
    """
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        steps = _Steps()
        position = 0
        while True:
            position = _PDF_PARTS.match(data, position).end()  # type: ignore[union-attr]
            if position >= len(data):
                return
            position = _pdf_part_end(data, position, steps)


class _Steps:
    """Counts the steps of the slow way through one PDF, and refuses the file past the allowance."""

    def __init__(self) -> None:
        self.left = _PDF_SLOW_STEPS

    def take(self) -> None:
        """Count one step; raise Refused when none is left."""
        self.left -= 1
        if self.left < 0:
            raise Refused("malformed_pdf")


def _pdf_part_end(data: mmap.mmap, position: int, steps: _Steps) -> int:
    """The end of the top-level part at ``position``, read step by step; raise Refused if it is none."""
    steps.take()
    if match := _PDF_OBJECT_HEAD.match(data, position):
        return _pdf_object_end(data, match.end(), steps)
    if match := _PDF_XREF_HEAD.match(data, position):
        return _pdf_dictionary_end(data, match.end(), steps)
    if data[position : position + 7] == b"trailer":
        return _pdf_dictionary_end(data, position + 7, steps)
    if match := _PDF_STARTXREF.match(data, position):
        return match.end()
    raise Refused("malformed_pdf")


def _is_keyword_at(data: mmap.mmap, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` is a whole keyword: delimited on both sides, and not part of a /Name."""
    before = data[start - 1] if start > 0 else 0x20
    after = data[end] if end < len(data) else 0x20
    return before in _PDF_DELIMITERS and before not in b"/%" and after in _PDF_DELIMITERS


def _pdf_object_end(data: mmap.mmap, position: int, steps: _Steps) -> int:
    """The position just after the ``endobj`` of the object whose body starts at ``position``."""
    start = position
    while True:
        steps.take()
        position = _PDF_BODY.match(data, position).end()  # type: ignore[union-attr]
        if position >= len(data):
            raise Refused("malformed_pdf")
        if data[position] == ord("("):
            position = _pdf_string_end(data, position, steps)
        elif data[position] == ord("<"):
            # Neither "<<" nor a hex string, which the body's pattern would have stepped over.
            raise Refused("malformed_pdf")
        elif data[position : position + 6] == b"endobj":
            if _is_keyword_at(data, position, position + 6):
                return position + 6
            position += 1
        elif _is_keyword_at(data, position, position + 6):
            position = _pdf_stream_end(data, start, position, steps)
        else:
            position += 1


def _pdf_stream_end(data: mmap.mmap, body: int, keyword: int, steps: _Steps) -> int:
    """The position after the ``endstream`` of the stream whose keyword ``stream`` is at ``keyword``.

    The data start after the end of line that follows the keyword and are as long as the last direct
    ``/Length`` of the object's dictionary says; with an indirect or a wrong length, the stream ends at
    the first ``endstream`` after its start.
    """
    steps.take()
    position = keyword + 6
    if data[position : position + 2] == b"\r\n":
        position += 2
    elif data[position : position + 1] in (b"\n", b"\r"):
        position += 1
    lengths = list(_PDF_LENGTH.finditer(data, body, keyword))
    if lengths and lengths[-1].group(2) is None:
        declared = _PDF_ENDSTREAM.match(data, position + int(lengths[-1].group(1)))
        if declared:
            return declared.end()
    found = data.find(b"endstream", position)
    if found < 0:
        raise Refused("malformed_pdf")
    return found + len(b"endstream")


def _pdf_string_end(data: mmap.mmap, position: int, steps: _Steps) -> int:
    """The position after the literal string that opens at ``position`` (nested parentheses and
    backslash escapes included, however deep)."""
    if match := _PDF_STRING.match(data, position):
        return match.end()
    depth = 0
    while match := _PDF_STRING_MARK.search(data, position):
        steps.take()
        mark = match.group()
        if mark == b"\\":
            position = match.end() + 1
            continue
        position = match.end()
        depth += 1 if mark == b"(" else -1
        if depth == 0:
            return position
    raise Refused("malformed_pdf")


def _pdf_dictionary_end(data: mmap.mmap, position: int, steps: _Steps) -> int:
    """The position after the dictionary that follows ``position`` (a trailer's), nested ones included."""
    position = _PDF_GAP.match(data, position).end()  # type: ignore[union-attr]
    if data[position : position + 2] != b"<<":
        raise Refused("malformed_pdf")
    depth = 0
    while match := _PDF_DICT_MARK.search(data, position):
        steps.take()
        mark = match.group()
        if mark == b"(":
            position = _pdf_string_end(data, match.start(), steps)
        elif mark == b"<":
            hex_string = _PDF_HEX.match(data, match.start())
            if hex_string is None:
                raise Refused("malformed_pdf")
            position = hex_string.end()
        elif mark == b"%":
            position = _PDF_GAP.match(data, match.start()).end()  # type: ignore[union-attr]
        else:
            position = match.end()
            depth += 1 if mark == b"<<" else -1
            if depth == 0:
                return position
    raise Refused("malformed_pdf")


def _check_jpeg(path: Path) -> None:
    """Refuse a file that starts like a JPEG but is not one.

    After the start-of-image marker, a JPEG is a chain of segments, each a marker and its length, that
    must lead through a frame header (the image's size and components) to the start of the scan, where
    the compressed image begins. Three bytes alone say nothing: any file can begin with them.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(2)
        framed = False
        for _ in range(_JPEG_MAX_SEGMENTS):
            marker = handle.read(2)
            if len(marker) < 2 or marker[0] != 0xFF:
                raise Refused("damaged_image")
            kind = marker[1]
            for _ in range(_JPEG_MAX_FILL):
                if kind != 0xFF:
                    break
                kind = (handle.read(1) or b"\x00")[0]
            # Before the scan only marker segments with a length may come (no RSTn, SOI, EOI, TEM).
            if kind in (0x00, 0x01, 0xFF) or 0xD0 <= kind <= 0xD9:
                raise Refused("damaged_image")
            length = int.from_bytes(handle.read(2).rjust(2, b"\x00"), "big")
            if length < 2 or handle.tell() + length - 2 > size:
                raise Refused("damaged_image")
            if kind == _JPEG_SOS:
                if not framed:
                    raise Refused("damaged_image")
                return
            framed = framed or kind in _JPEG_FRAMES
            handle.seek(length - 2, os.SEEK_CUR)
    raise Refused("damaged_image")


def _check_macros(archive: zipfile.ZipFile) -> None:
    """Refuse an office document that carries macros, which could run when it is opened.

    Word and Excel keep VBA in a ``vbaProject.bin`` part and declare a macro-enabled content type
    (.docm, .xlsm); Excel 4 macros live in macro sheets; LibreOffice keeps Basic and scripts in
    folders of their own.
    """
    for info in archive.infolist():
        name = info.filename.lower()
        if name.rsplit("/", 1)[-1] in _MACRO_PARTS or name.startswith(_MACRO_FOLDERS):
            raise Refused("macros")
    try:
        types = archive.getinfo("[Content_Types].xml")
    except KeyError:
        return
    with archive.open(types) as member:
        declared = member.read(_CONTENT_TYPES_LIMIT).lower()
    if any(word in declared for word in _MACRO_CONTENT_TYPES):
        raise Refused("macros")


def _sniff_zip(path: Path) -> str:
    """The office media type of the zip at ``path``, after the zip-bomb checks; raise Refused otherwise."""
    try:
        with path.open("rb") as handle:
            _check_directory(handle)
            with zipfile.ZipFile(handle) as archive:
                _check_archive(archive, path.stat().st_size, 0, _Budget())
                names = set(archive.namelist())
                if "word/document.xml" in names:
                    return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
                if "xl/workbook.xml" in names:
                    return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                if "mimetype" in names:
                    with archive.open("mimetype") as member:
                        if member.read(100).strip() == b"application/vnd.oasis.opendocument.text":
                            return "application/vnd.oasis.opendocument.text"
    except _MALFORMED as exc:
        raise Refused("damaged_document") from exc
    raise Refused("unsupported")


def _check_directory(handle: BinaryIO) -> None:
    """Refuse a zip whose end record announces too many members or too large a central directory.

    zipfile reads the whole central directory into memory and makes an object per entry before anyone
    can count them, so the announced sizes are checked first, from the end record (or its ZIP64 form).
    """
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    start = max(0, size - (22 + 0xFFFF))
    handle.seek(start)
    tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise zipfile.BadZipFile("no end of central directory record")
    entries, directory_size = struct.unpack("<HI", tail[at + 10 : at + 16])
    zip64 = at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07"
    if zip64 and (entries == 0xFFFF or directory_size == 0xFFFFFFFF):
        # ZIP64: the real figures are in the record just before the locator, as zipfile reads them.
        record_at = start + at - 20 - 56
        if record_at >= 0:
            handle.seek(record_at)
            record = handle.read(56)
            if record[:4] == b"PK\x06\x06":
                entries, directory_size = struct.unpack("<QQ", record[32:48])
    if entries > MAX_MEMBERS or directory_size > MAX_MEMBERS * _DIRECTORY_BYTES_PER_MEMBER:
        raise Refused("too_many_parts", limit=MAX_MEMBERS)
    handle.seek(0)


@dataclass
class _Budget:
    """What an archive and the archives nested in it may still hold, in members and expanded bytes."""

    members: int = MAX_MEMBERS
    expanded: int = MAX_UNCOMPRESSED


def _check_archive(archive: zipfile.ZipFile, packed: int, depth: int, budget: _Budget) -> None:
    """Refuse a zip bomb from the sizes the directory declares (zipfile never expands a member past them).

    ``packed`` is the archive's own size; ``budget`` holds the members and the expanded bytes still
    allowed, shared with archives nested inside this one, which are checked the same way.
    """
    infos = archive.infolist()
    budget.members -= len(infos)
    if budget.members < 0:
        raise Refused("too_many_parts", limit=MAX_MEMBERS)
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise Refused("encrypted")
        if info.compress_type not in _COMPRESSION_METHODS:
            raise Refused("damaged_document")
        total += info.file_size
        if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(1, info.compress_size):
            raise Refused("zip_bomb")
    budget.expanded -= total
    if budget.expanded < 0 or (total > _RATIO_FLOOR and total > MAX_RATIO * max(1, packed)):
        raise Refused("zip_bomb")
    # Every archive, embedded ones too: a macro workbook inside a Word document still runs.
    _check_macros(archive)
    for info in infos:
        if info.file_size < 22 or info.is_dir():
            continue
        with archive.open(info) as member:
            if member.read(4) != b"PK\x03\x04":
                continue
        if depth >= MAX_NESTING:
            raise Refused("nested_too_deep")
        with tempfile.TemporaryFile() as copy:
            with archive.open(info) as member:
                shutil.copyfileobj(member, copy, _CHUNK)
            _check_directory(copy)
            with zipfile.ZipFile(copy) as inner:
                _check_archive(inner, info.file_size, depth + 1, budget)


def megabytes(size: int) -> str:
    """``size`` in megabytes as a short number: 50, 2.5, 0.001."""
    return f"{round(size / _MB, 1 if size >= _MB else 3):g}"


def store(files_dir: Path, source: BinaryIO, max_size: int) -> Stored:
    """Copy ``source`` into storage under a random name and return what was stored.

    Raises Refused when the file is empty, larger than ``max_size`` bytes (found while streaming, so
    an oversized upload is never read whole) or not of an accepted type; nothing is left behind then.
    """
    files_dir.mkdir(parents=True, exist_ok=True)
    stored_name = secrets.token_hex(16)
    temporary = files_dir / f"{TEMPORARY_PREFIX}{stored_name}"
    digest = hashlib.sha256()
    size = 0
    # Exclusive and private: never write through an existing name, never readable by other users.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(descriptor, "wb") as out:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                if size > max_size:
                    raise Refused("too_large", limit=megabytes(max_size))
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise Refused("empty")
        media_type = sniff(temporary)
        os.replace(temporary, files_dir / stored_name)
        _fsync_directory(files_dir)
    finally:
        temporary.unlink(missing_ok=True)
    return Stored(stored_name=stored_name, size=size, sha256=digest.hexdigest(), media_type=media_type)


def _fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable: the new name survives a crash once this returns."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def is_stored_name(name: str) -> bool:
    """Whether ``name`` has the shape of a name that ``store`` gives (32 lowercase hex digits)."""
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


def is_temporary_name(name: str) -> bool:
    """Whether ``name`` is that of a file ``store`` is still writing (or left by a crash)."""
    return name.startswith(TEMPORARY_PREFIX) and is_stored_name(name.removeprefix(TEMPORARY_PREFIX))


def path_of(files_dir: Path, stored_name: str) -> Path:
    """The path of a stored file."""
    return files_dir / stored_name


def remove(files_dir: Path, stored_name: str) -> None:
    """Delete a stored file if it is there."""
    (files_dir / stored_name).unlink(missing_ok=True)


def extension_for(media_type: str) -> str:
    """The usual extension for an accepted media type."""
    return MEDIA_TYPES.get(media_type, "")


# Other extensions that programs give files of these types (the usual one is MEDIA_TYPES').
_OTHER_EXTENSIONS = {"image/jpeg": (".jpeg", ".jpe")}
_MAX_SERVED_NAME = 255


def served_name(name: str, media_type: str) -> str:
    """``name`` as a file of ``media_type`` is served: ending in an extension of that type.

    A name that already ends so is kept; any other gets the usual extension appended (``report.html``
    of a PDF is served as ``report.html.pdf``), so that the program that opens the download is chosen
    by what the file is, never by what its uploader called it. At most 255 characters; a type that is
    not accepted gets ``.bin``.
    """
    # A type that is not accepted (no row should have one) opens in nothing.
    usual = extension_for(media_type) or ".bin"
    if name.lower().endswith((usual, *_OTHER_EXTENSIONS.get(media_type, ()))):
        return name
    return name[: _MAX_SERVED_NAME - len(usual)] + usual
