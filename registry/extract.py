"""Plain text from uploaded documents, for the search index, parsed in a child process under limits.

PDF and office parsers are a large attack surface: a crafted upload can make them loop, eat memory or crash.
So the parsing never runs in the web process. ``extract_many`` starts this file as a script (a *worker*)
with CPU-time, address-space and wall-clock limits, a minimal environment and no secrets, and hands it a
batch of files as a JSON list on standard input. The worker answers one JSON line per file, flushed as soon
as that file is done, so when it dies the files it did answer keep their results. The file it was working
on is then run again alone under the per-file limits, which tells why it failed; the files it never
reached go back into a fresh batch.

Besides the per-file limits, a call may be given a ``deadline`` for all its files together: a web request
that accepts several uploads gives them one budget, so no form can make its request run for the sum of the
per-file limits. A file still being read when the deadline comes, and every file after it, is reported with
``OUT_OF_TIME``.

The worker is started as ``python -P registry/extract.py`` rather than ``python -m registry.extract``: the
``-m`` form would first run ``registry/__init__.py``, which imports Flask, and the worker must import
nothing it does not need (``-P`` keeps ``registry/`` itself off ``sys.path``, so no module there can
shadow one of the standard library's).
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import zipfile

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})

MAX_CHARS = 2_000_000
MAX_PART_BYTES = 100 * 1024 * 1024

# Collecting stops at twice the cap: whitespace collapsing shrinks the raw text, and stopping early keeps a
# huge document from costing time and memory for text that would be thrown away.
_RAW_LIMIT = 2 * MAX_CHARS
_CHUNK = 1 << 16
_EXIT_NO_MEMORY = 3
_HOOKS = "REGISTRY_EXTRACT_TEST_HOOKS"
_ROOT = Path(__file__).resolve().parent.parent
_DTD_REFUSED = "the document contains a DTD, which is refused"
# NUL and other control characters (PostgreSQL refuses NUL in text) and lone surrogates (not encodable).
_UNPRINTABLE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# The reason given for a file whose turn came (or went on) after the deadline of its call.
OUT_OF_TIME = "the time allowed for extracting the text of the files sent together ran out"


@dataclass(frozen=True)
class Extracted:
    """The outcome for one file: ``text`` on success, else ``error`` saying why in a few words."""

    text: str | None
    error: str | None


def extract_one(path: Path, media_type: str, **limits: int) -> Extracted:
    """Extract the text of one file; ``limits`` are those of ``extract_many``."""
    return extract_many([(path, media_type)], **limits)[0]


def extract_many(
    items: list[tuple[Path, str]],
    *,
    cpu_seconds: int = 20,
    memory_mb: int = 512,
    wall_seconds: int = 30,
    deadline: float | None = None,
) -> list[Extracted]:
    """Extract the text of each ``(path, media_type)`` in ``items``; return one Extracted each, same order.

    The limits are per file. A batch shares one worker whose CPU and wall-clock budgets are the per-file
    ones times the number of files, and within which each file still gets only its own share. ``deadline``
    (a ``time.monotonic()`` instant) bounds the whole call: the file being read when it passes, and those
    after it, fail with ``OUT_OF_TIME``. A file that fails is reported in its own Extracted, never raised.
    Raises ValueError if a limit is not positive.
    """
    if min(cpu_seconds, memory_mb, wall_seconds) <= 0:
        raise ValueError("extraction limits must be positive")
    limits = _Limits(cpu_seconds, memory_mb, wall_seconds, deadline)
    results: list[Extracted | None] = []
    pending: list[int] = []
    for index, (_path, media_type) in enumerate(items):
        if media_type in IMAGE_TYPES:
            results.append(Extracted(text="", error=None))
        elif media_type in _LABELS:
            results.append(None)
            pending.append(index)
        else:
            results.append(Extracted(text=None, error="no text extraction for this type"))
    while pending:
        if limits.left() == 0:
            for index in pending:
                results[index] = Extracted(text=None, error=OUT_OF_TIME)
            break
        batch, pending = pending, []
        answers, reason = _run_worker([items[index] for index in batch], limits)
        unanswered = []
        for position, index in enumerate(batch):
            if position in answers:
                results[index] = answers[position]
            else:
                unanswered.append(index)
        if not unanswered:
            break
        if reason == OUT_OF_TIME:
            for index in unanswered:
                results[index] = Extracted(text=None, error=OUT_OF_TIME)
            break
        # The worker takes files in order, so the first unanswered one is the file it died on. Alone, under
        # the per-file limits, it fails for its own reason; the files it never reached go in a fresh batch.
        culprit, pending = unanswered[0], unanswered[1:]
        if len(batch) > 1:
            alone, reason = _run_worker([items[culprit]], limits)
            if 0 in alone:
                results[culprit] = alone[0]
                continue
        results[culprit] = Extracted(text=None, error=reason)
    # Every slot is filled: at once, from a worker's answer, or with the reason its worker died.
    return cast("list[Extracted]", results)


@dataclass(frozen=True)
class _Limits:
    """The per-file limits of one extract_many call."""

    cpu_seconds: int
    memory_mb: int
    wall_seconds: int
    deadline: float | None = None

    def left(self) -> float | None:
        """Seconds left before the call's deadline (0 once it has passed), or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())


def _run_worker(items: list[tuple[Path, str]], limits: _Limits) -> tuple[dict[int, Extracted], str]:
    """Run one worker over ``items``; return its answers by position and why it answered no more."""
    # Imported here, not at the top, because the worker runs this file too and has no use for it.
    import subprocess

    jobs = [{"path": str(Path(path).absolute()), "media_type": media_type} for path, media_type in items]
    script = str(Path(__file__).resolve())
    command = [sys.executable, "-P", script, str(limits.cpu_seconds), str(limits.wall_seconds)]
    timeout = limits.wall_seconds * len(items)
    left = limits.left()
    # The call's deadline, when it comes first, is what stops the worker.
    cut_by_deadline = left is not None and left < timeout
    try:
        done = subprocess.run(
            command,
            input=json.dumps(jobs).encode(),
            capture_output=True,
            timeout=left if cut_by_deadline else timeout,
            env=_child_env(),
            cwd=_ROOT,
            preexec_fn=_limiter(limits.cpu_seconds * len(items), limits.memory_mb),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        reason = OUT_OF_TIME if cut_by_deadline else f"took longer than {limits.wall_seconds} s"
        return _answers(exc.stdout or b""), reason
    return _answers(done.stdout), _death_reason(done.returncode, done.stderr, limits)


def _child_env() -> dict[str, str]:
    """The worker's whole environment: nothing of ours (keys, database URLs) reaches the parsers."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    if os.environ.get(_HOOKS) == "1":
        env[_HOOKS] = "1"
    return env


def _limiter(cpu_seconds: int, memory_mb: int) -> Callable[[], None]:
    """Return the function the child runs before exec to limit itself (values computed here, not there)."""
    settings = [
        # The hard limit a second later makes the kernel send SIGXCPU first, which names the cause.
        _capped(resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1),
        _capped(resource.RLIMIT_AS, memory_mb * 1024 * 1024, memory_mb * 1024 * 1024),
        # SIGXCPU would dump core into the project tree; the worker never needs to write a file.
        _capped(resource.RLIMIT_CORE, 0, 0),
        _capped(resource.RLIMIT_FSIZE, 0, 0),
    ]

    def apply() -> None:
        for kind, soft, hard in settings:
            resource.setrlimit(kind, (soft, hard))

    return apply


def _capped(kind: int, soft: int, hard: int) -> tuple[int, int, int]:
    """Clamp a wanted limit to the hard limit we already have, which an unprivileged child cannot raise."""
    current = resource.getrlimit(kind)[1]
    if current != resource.RLIM_INFINITY:
        soft, hard = min(soft, current), min(hard, current)
    return kind, soft, hard


def _answers(stdout: bytes) -> dict[int, Extracted]:
    """Parse the worker's answer lines; a line cut short when the worker was killed is skipped."""
    answers = {}
    for line in stdout.splitlines():
        try:
            answer = json.loads(line)
            index, text, error = answer["index"], answer["text"], answer["error"]
        except (ValueError, TypeError, KeyError):
            continue
        if isinstance(index, int) and isinstance(text, str | None) and isinstance(error, str | None):
            answers[index] = Extracted(text=text, error=error)
    return answers


def _death_reason(returncode: int, stderr: bytes, limits: _Limits) -> str:
    """Say in a few words why a worker stopped before answering for every file."""
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"took more than {limits.cpu_seconds} s of CPU time"
    if returncode == -signal.SIGALRM:
        return f"took longer than {limits.wall_seconds} s"
    if returncode == _EXIT_NO_MEMORY or b"MemoryError" in stderr or b"Cannot allocate memory" in stderr:
        return f"used more than {limits.memory_mb} MB of memory"
    return f"the extractor failed (exit code {returncode})"


# ---- The worker: everything below runs in the child process. ----


class _Refused(Exception):
    """The document is readable but refused; the message is shown as is."""


class _Full(Exception):
    """Enough text has been collected; parsing stops here."""


class _Text:
    """Raw text pieces as they are found, refusing more once past the raw limit."""

    def __init__(self, limit: int = _RAW_LIMIT) -> None:
        self.pieces: list[str] = []
        self.size = 0
        self.limit = limit

    def add(self, piece: str) -> None:
        """Append ``piece``; raise _Full once the limit is passed."""
        self.pieces.append(piece)
        self.size += len(piece)
        if self.size > self.limit:
            raise _Full


def _worker(argv: list[str]) -> int:
    """Answer a JSON batch from standard input, one JSON line per file, each flushed when done."""
    cpu_seconds = int(argv[0]) if argv else 0
    wall_seconds = int(argv[1]) if len(argv) > 1 else 0
    hooks = os.environ.get(_HOOKS) == "1"
    ceiling = resource.getrlimit(resource.RLIMIT_CPU)
    jobs = json.load(sys.stdin.buffer)
    out = sys.stdout.buffer
    for index, job in enumerate(jobs):
        _arm(cpu_seconds, wall_seconds, ceiling)
        try:
            text, error = _extract(job["path"], job["media_type"], hooks), None
        except MemoryError:
            # Past a MemoryError nothing is reliable; the parent reads this exit code.
            os._exit(_EXIT_NO_MEMORY)
        except _Refused as exc:
            text, error = None, str(exc)
        except Exception as exc:
            text, error = None, f"not a valid {_LABELS.get(job['media_type'], 'file')}: {_describe(exc)}"
        signal.alarm(0)
        try:
            line = json.dumps({"index": index, "text": text, "error": error}, ensure_ascii=False) + "\n"
            out.write(line.encode("utf-8", "replace"))
            out.flush()
        except MemoryError:
            os._exit(_EXIT_NO_MEMORY)
    return 0


def _arm(cpu_seconds: int, wall_seconds: int, ceiling: tuple[int, int]) -> None:
    """Give the next file its own CPU and wall-clock allowance, within what the batch was granted.

    Without this one looping file would spin through the CPU time of the whole batch before dying.
    """
    if cpu_seconds:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime) + cpu_seconds
        if ceiling[0] != resource.RLIM_INFINITY:
            soft = min(soft, ceiling[0])
        resource.setrlimit(resource.RLIMIT_CPU, (soft, ceiling[1]))
    if wall_seconds:
        # No handler is installed: SIGALRM ends the worker, which a stuck C call cannot ignore.
        signal.alarm(wall_seconds)


def _describe(exc: Exception) -> str:
    """A short, single-line reason that does not reveal where files are stored."""
    if isinstance(exc, OSError):
        return "the file could not be read"
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return detail[:200]


def _extract(path: str, media_type: str, hooks: bool) -> str:
    """Return the tidied text of the file at ``path``."""
    if hooks:
        _test_hook(path)
    text = _Text()
    try:
        _EXTRACTORS[media_type](path, text)
    except _Full:
        pass
    return _tidy("".join(text.pieces))


def _test_hook(path: str) -> None:
    """Misbehave on purpose for the tests, which must see one bad file fail alone and quickly."""
    if path.endswith(".loop.pdf"):
        while True:
            pass
    if path.endswith(".hog.pdf"):
        hoard = []
        while True:
            hoard.append(bytearray(16 << 20))
    if path.endswith(".sleep.pdf"):
        import time

        time.sleep(3600)


def _tidy(raw: str) -> str:
    """NFC-normalise, collapse whitespace within lines, drop empty lines and cap at MAX_CHARS."""
    import unicodedata

    clean = _UNPRINTABLE.sub("", unicodedata.normalize("NFC", raw))
    lines = (" ".join(line.split()) for line in clean.splitlines())
    return "\n".join(line for line in lines if line)[:MAX_CHARS]


def _pdf_text(path: str, text: _Text) -> None:
    """Collect the text of every page of a PDF."""
    import logging

    import pypdf

    # pypdf logs every oddity of a damaged file; that noise would only fill the captured stderr.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = pypdf.PdfReader(path)
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except Exception:
            opened = 0
        if not opened:
            raise _Refused("the PDF is protected by a password")
    for page in reader.pages:
        text.add(page.extract_text())
        text.add("\n")


def _docx_text(path: str, text: _Text) -> None:
    """Collect the body, then headers, footers, notes and comments of a Word document."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if "word/document.xml" not in names:
            raise ValueError("there is no word/document.xml")
        extras = ("word/header", "word/footer", "word/footnotes", "word/endnotes", "word/comments")
        parts = sorted(n for n in names if n.startswith(extras) and n.endswith(".xml") and n.count("/") == 1)
        for name in ["word/document.xml", *parts]:
            _parse_part(archive, name, _WordHandler(text))
            text.add("\n")


def _odt_text(path: str, text: _Text) -> None:
    """Collect the headings and paragraphs of an OpenDocument text."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        if "content.xml" not in archive.namelist():
            raise ValueError("there is no content.xml")
        _parse_part(archive, "content.xml", _OdtHandler(text))


def _xlsx_text(path: str, text: _Text) -> None:
    """Collect the cells of every worksheet of a workbook, a line per row, shared strings resolved."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        shared = _Text()
        if "xl/sharedStrings.xml" in names:
            try:
                _parse_part(archive, "xl/sharedStrings.xml", _SharedStringsHandler(shared))
            except _Full:
                pass  # cells pointing past what was kept come out empty
        sheets = [n for n in names if re.fullmatch(r"xl/worksheets/[^/]+\.xml", n)]
        if not sheets and "xl/workbook.xml" not in names:
            raise ValueError("there is no xl/workbook.xml")
        # Length first puts sheet2.xml before sheet10.xml.
        for name in sorted(sheets, key=lambda n: (len(n), n)):
            _parse_part(archive, name, _SheetHandler(shared.pieces, text))
            text.add("\n")


_EXTRACTORS: dict[str, Callable[[str, _Text], None]] = {
    PDF: _pdf_text,
    DOCX: _docx_text,
    ODT: _odt_text,
    XLSX: _xlsx_text,
}
_LABELS = {PDF: "PDF", DOCX: "Word document", ODT: "OpenDocument text", XLSX: "Excel workbook"}


def _parse_part(archive: zipfile.ZipFile, name: str, handler: _Handler) -> None:
    """Stream one XML part of ``archive`` through ``handler``, refusing DTDs and oversized parts.

    A DTD is what entity-expansion attacks (billion laughs, external entities) need, and office files
    never have one, so any is refused: in the raw bytes before they reach the parser, and again by the
    parser itself, which also catches a DOCTYPE in an encoding (UTF-16) that the byte check cannot see.
    """
    import xml.parsers.expat

    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.StartElementHandler = lambda name, attrs: handler.start(name.rpartition(" ")[2], attrs)
    parser.EndElementHandler = lambda name: handler.end(name.rpartition(" ")[2])
    parser.CharacterDataHandler = handler.data
    size, tail = 0, b""
    with archive.open(name) as member:
        while chunk := member.read(_CHUNK):
            size += len(chunk)
            if size > MAX_PART_BYTES:
                raise _Refused(f"a part of the document expands to more than {MAX_PART_BYTES >> 20} MB")
            # The tail of the previous chunk catches a DOCTYPE split across two chunks.
            if b"<!doctype" in (tail + chunk).lower():
                raise _Refused(_DTD_REFUSED)
            tail = chunk[-8:]
            parser.Parse(chunk, False)
    parser.Parse(b"", True)


def _refuse_dtd(*_args: Any) -> None:
    """Expat callback: stop at any DOCTYPE or entity declaration."""
    raise _Refused(_DTD_REFUSED)


class _Handler:
    """Streaming callbacks for one XML part; names arrive without their namespace."""

    def __init__(self, text: _Text) -> None:
        self.text = text
        self.capture = 0
        self.skip = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        """An element opens."""

    def end(self, name: str) -> None:
        """An element closes."""

    def data(self, data: str) -> None:
        """Character data: kept only inside an element that holds text and outside skipped ones."""
        if self.capture and not self.skip:
            self.text.add(data)


class _WordHandler(_Handler):
    """WordprocessingML: text of <w:t> (and DrawingML <a:t>), a line per paragraph."""

    def start(self, name: str, attrs: dict[str, str]) -> None:
        """Open a text run, or write a tab or line break."""
        if name == "Fallback":
            # Text boxes come twice, as DrawingML and as a VML fallback; keep one.
            self.skip += 1
        elif name == "t":
            self.capture += 1
        elif self.skip:
            return
        elif name == "tab":
            self.text.add("\t")
        elif name in ("br", "cr"):
            self.text.add("\n")

    def end(self, name: str) -> None:
        """Close a text run or a paragraph."""
        if name == "Fallback":
            self.skip -= 1
        elif name == "t":
            self.capture -= 1
        elif name == "p" and not self.skip:
            self.text.add("\n")


class _OdtHandler(_Handler):
    """OpenDocument: text of <text:p> and <text:h>, a line each, notes and frames included."""

    def start(self, name: str, attrs: dict[str, str]) -> None:
        """Open a paragraph (a nested one, as in a note, starts a line) or write a tab, space or break."""
        if name in ("p", "h"):
            self.capture += 1
            self.text.add("\n")
        elif not self.capture:
            return
        elif name in ("tab", "s"):
            self.text.add(" ")
        elif name == "line-break":
            self.text.add("\n")

    def end(self, name: str) -> None:
        """Close a paragraph."""
        if name in ("p", "h"):
            self.capture -= 1
            self.text.add("\n")


class _SharedStringsHandler(_Handler):
    """SpreadsheetML shared strings: one piece per <si>, phonetic guides (<rPh>) left out."""

    def __init__(self, text: _Text) -> None:
        super().__init__(text)
        self.current: list[str] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        """Open a string item, a text element or a phonetic guide."""
        if name == "si":
            self.current = []
        elif name == "t":
            self.capture += 1
        elif name == "rPh":
            self.skip += 1

    def end(self, name: str) -> None:
        """Close one; a closed string item becomes the next shared string."""
        if name == "si":
            self.text.add("".join(self.current))
        elif name == "t":
            self.capture -= 1
        elif name == "rPh":
            self.skip -= 1

    def data(self, data: str) -> None:
        """Text of the current string item."""
        if self.capture and not self.skip:
            self.current.append(data)


class _SheetHandler(_Handler):
    """SpreadsheetML worksheet: a line per row, its non-empty cells separated by tabs."""

    def __init__(self, shared: list[str], text: _Text) -> None:
        super().__init__(text)
        self.shared = shared
        self.row: list[str] = []
        self.cell: list[str] = []
        self.kind = "n"

    def start(self, name: str, attrs: dict[str, str]) -> None:
        """Open a row, a cell, or a cell's value or inline text."""
        if name == "row":
            self.row = []
        elif name == "c":
            self.kind, self.cell = attrs.get("t", "n"), []
        elif name in ("v", "t"):
            self.capture += 1
        elif name == "rPh":
            self.skip += 1

    def end(self, name: str) -> None:
        """Close a cell (resolving a shared string) or a row (writing its line)."""
        if name in ("v", "t"):
            self.capture -= 1
        elif name == "rPh":
            self.skip -= 1
        elif name == "c":
            value = self._value("".join(self.cell).strip())
            if value:
                self.row.append(value)
        elif name == "row":
            self.text.add("\t".join(self.row) + "\n")

    def data(self, data: str) -> None:
        """Text of the current cell."""
        if self.capture and not self.skip:
            self.cell.append(data)

    def _value(self, raw: str) -> str:
        if self.kind == "s":
            index = int(raw) if raw.isdigit() else -1
            return self.shared[index] if 0 <= index < len(self.shared) else ""
        if self.kind == "b":
            return {"1": "TRUE", "0": "FALSE"}.get(raw, "")
        if self.kind == "e":
            return ""  # an error such as #DIV/0! says nothing about the document
        return raw


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
