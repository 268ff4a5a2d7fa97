"""One Whoosh index per tier, derived from the database through the outbox.

Layout under ``INDEX_DIR``: ``<tier>.current`` names the live directory of each tier
(``<tier>-<stamp>/``), which holds the Whoosh files and ``outbox.json``: the id of the last
outbox job applied, plus ids that were missing when it was applied (a transaction that had
taken an id but not yet committed), checked again next time.

Applying a job re-derives the record's document from the current database state, so applying
one twice is harmless: after a crash the index simply catches up again.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session
from whoosh import index as whoosh_index
from whoosh.fields import ID, STORED, TEXT, Schema
from whoosh.index import LockError
from whoosh.searching import Searcher
from whoosh.writing import NO_MERGE

from ..config import REINDEX_MEMORY_MB
from ..models import IndexJob, Record
from ..vocab import TIERS
from . import rebuild, segments
from .analysis import pair_analyzer, text_analyzer, word_analyzer
from .applier import Applier
from .documents import document_for
from .suggestions import Suggestions

# A job id still missing after this long belongs to a transaction that rolled back.
GAP_PATIENCE_S = 120.0
WRITER_TIMEOUT_S = 2.0
# How long an applier waits for another applier of the node to finish, and a search for the jobs
# that take text out of a tier (or for a missing index).
APPLY_WAIT_S = 30.0
# How long a search waits for new text committed before it began.
FRESH_WAIT_S = 1.0
REBUILD_SWAP_WAIT_S = 600.0


# Bump when the schema or the analysis changes: indexes of another version are rebuilt by themselves.
SCHEMA_VERSION = 4


def make_schema() -> Schema:
    """One catch-all body (titles twice, for their weight), word pairs for phrases, words for suggestions."""
    return Schema(
        id=ID(stored=True, unique=True),
        body=TEXT(analyzer=text_analyzer(), phrase=False),
        pairs=TEXT(analyzer=pair_analyzer(), phrase=False),
        words=TEXT(analyzer=word_analyzer(), phrase=False, spelling=True),
        facets=STORED(),
        sort=STORED(),
        digest=STORED(),
    )


@dataclass
class Meta:
    """How far a tier's index has applied the outbox."""

    through: int = 0
    gaps: dict[str, float] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    @classmethod
    def read(cls, folder: Path) -> Meta:
        """The meta of the index in ``folder`` (nothing applied if absent)."""
        try:
            data = json.loads((folder / "outbox.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return cls()
        return cls(
            through=int(data["through"]),
            gaps={str(k): float(v) for k, v in data["gaps"].items()},
            schema=int(data.get("schema", 0)),
        )

    def write(self, folder: Path) -> None:
        """Write atomically, after the index commit it describes."""
        temporary = folder / f".outbox-{secrets.token_hex(4)}.json"
        temporary.write_text(json.dumps({"through": self.through, "gaps": self.gaps, "schema": self.schema}))
        os.replace(temporary, folder / "outbox.json")


@contextmanager
def _applier_lock(path: Path, wait: float) -> Iterator[bool]:
    """Hold the node's right to apply outbox jobs, waiting up to ``wait`` seconds; yields whether held.

    An exclusive ``flock`` on one file of ``INDEX_DIR``: one applier at a time among every process and
    thread of the node (each takes it on a descriptor of its own), released by the system if its
    holder dies, so a killed worker never blocks the others.
    """
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.005)
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


# Searchers open at once per tier, of every generation: a search waits for one to come free rather
# than open another, so no number of request threads can run the process out of file descriptors.
# Searching is pure Python under the GIL, so more would not answer more searches a second.
SEARCHERS_PER_TIER = 4
# A search holds its searcher only for its index work, which its time limit cuts at 2 s: waiting
# longer than this for one means a searcher was never given back, which must fail loudly, not hang.
LEND_WAIT_S = 30.0


@dataclass(eq=False)
class _Generation:
    """One version of a tier's index (its directory's Whoosh index and table of contents number),
    with the searchers of that version that no search is using."""

    ix: Any
    number: int
    idle: list[Searcher] = field(default_factory=list)


class TierIndexes:
    """The indexes of one ``INDEX_DIR``: opening, searching, catching up, rebuilding, checking."""

    def __init__(self, root: Path, build_memory_mb: int = REINDEX_MEMORY_MB) -> None:
        self.root = root
        self.build_memory_mb = build_memory_mb
        self._applier = root / "applier.lock"
        self._lock = threading.Lock()
        self._open: dict[str, tuple[str, Any]] = {}
        # Searchers are shared by every thread of the process, but lent to one search at a time:
        # without compound files Whoosh reads each segment file through one file object, by a seek
        # then a read (``StructFile.get``, the postings' ``_goto``), so two threads using one searcher
        # at once read each other's bytes (corrupt blocks, wrong hits).
        self._pool = threading.Condition()
        self._live: dict[str, _Generation] = {}
        # Every open searcher of each tier, idle or lent, of any generation; and searchers being opened.
        self._held: dict[str, set[Searcher]] = {}
        self._opening: dict[str, int] = {}
        # Facets and sort keys per immutable segment, filled by the engine.
        self.columns: dict[str, list[tuple[Any, str, str]]] = {}
        # The application's applier thread (``search.init_app``); None for an index object of no app.
        self.applier: Applier | None = None
        # "Did you mean" words per tier and index version.
        self.suggestions = Suggestions()

    # Where each tier lives ---------------------------------------------------------------

    def _pointer(self, tier: str) -> Path:
        return self.root / f"{tier}.current"

    def folder(self, tier: str) -> Path | None:
        """The live directory of ``tier``, or None when it has never been built."""
        try:
            name = self._pointer(tier).read_text().strip()
        except FileNotFoundError:
            return None
        return self.root / name

    def _new_folder(self, tier: str) -> Path:
        folder = self.root / f"{tier}-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
        folder.mkdir(parents=True)
        whoosh_index.create_in(str(folder), make_schema())
        return folder

    def _swap(self, tier: str, folder: Path) -> None:
        temporary = self.root / f".{tier}.{secrets.token_hex(4)}"
        temporary.write_text(folder.name)
        old = self.folder(tier)
        os.replace(temporary, self._pointer(tier))
        if old is not None and old != folder:
            # Searchers still open on the old files keep working: POSIX keeps unlinked files readable.
            shutil.rmtree(old, ignore_errors=True)

    def index(self, tier: str) -> Any:
        """The live Whoosh index of ``tier`` (reopened when ``reindex`` swapped in a new one)."""
        folder = self.folder(tier)
        if folder is None:
            raise FileNotFoundError(f"no index for tier {tier}: run `flask --app registry reindex`")
        with self._lock:
            cached = self._open.get(tier)
            if cached is None or cached[0] != folder.name:
                self._open[tier] = (folder.name, whoosh_index.open_dir(str(folder)))
            return self._open[tier][1]

    @contextmanager
    def searcher(self, tier: str) -> Iterator[Searcher]:
        """Lend a searcher of the live version of ``tier`` for the ``with`` block, to this thread alone.

        A searcher of an older version is never ``refresh()``ed (that can keep deleted documents
        visible): a new one is opened, and the old ones are closed as soon as no search uses them.
        At most ``SEARCHERS_PER_TIER`` are open per tier; when all are lent, this waits for one.
        Raises OSError if the index cannot be opened, TimeoutError if none comes free in ``LEND_WAIT_S``.
        """
        generation, searcher = self._borrow(tier)
        try:
            yield searcher
        finally:
            self._give_back(tier, generation, searcher)

    def _borrow(self, tier: str) -> tuple[_Generation, Searcher]:
        ix = self.index(tier)
        latest = ix.latest_generation()
        with self._pool:
            held = self._held.setdefault(tier, set())
            generation = self._live.get(tier)
            if generation is None or generation.ix is not ix or generation.number < latest:
                generation = self._supersede(tier, _Generation(ix, latest))
            deadline = time.monotonic() + LEND_WAIT_S
            while not generation.idle and len(held) + self._opening.get(tier, 0) >= SEARCHERS_PER_TIER:
                if not self._pool.wait(deadline - time.monotonic()):
                    raise TimeoutError(f"no searcher of the {tier} index came free in {LEND_WAIT_S:.0f} s")
                # Meanwhile another search may have found a newer version (or close() dropped them all).
                generation = self._live.get(tier) or self._supersede(tier, _Generation(ix, latest))
            if generation.idle:
                return generation, generation.idle.pop()
            self._opening[tier] = self._opening.get(tier, 0) + 1
        searcher = None
        try:
            searcher = segments.open_searcher(generation.ix)
        finally:
            with self._pool:
                self._opening[tier] -= 1
                if searcher is not None:
                    self._held[tier].add(searcher)
                else:
                    self._pool.notify()
        return generation, searcher

    def _supersede(self, tier: str, generation: _Generation) -> _Generation:
        """Make ``generation`` the live one of ``tier``, closing the idle searchers of the one before.

        Searchers of older versions still lent are closed when they come back (``_give_back``).
        Called holding ``self._pool``.
        """
        old = self._live.get(tier)
        if old is not None:
            for searcher in old.idle:
                self._held[tier].discard(searcher)
                searcher.close()
            old.idle.clear()
            self._pool.notify_all()
        self._live[tier] = generation
        return generation

    def _give_back(self, tier: str, generation: _Generation, searcher: Searcher) -> None:
        with self._pool:
            held = self._held.get(tier, set())
            if searcher not in held:
                return  # close() closed it while it was lent
            live = self._live.get(tier) is generation and searcher.reader().generation() == generation.number
            if live:
                generation.idle.append(searcher)
            else:
                held.discard(searcher)
                searcher.close()
            self._pool.notify()

    def close(self) -> None:
        """Close every searcher this object opened, idle or lent, in every thread."""
        with self._pool:
            for held in self._held.values():
                for searcher in held:
                    searcher.close()
                held.clear()
            self._live.clear()
            self._pool.notify_all()
        with self._lock:
            self._open.clear()

    # Keeping up with the outbox -----------------------------------------------------------

    def behind(self, session: Session) -> bool:
        """Whether some tier has outbox jobs left to apply (one indexed query)."""
        return self._behind_of(session.scalar(select(func.max(IndexJob.id))) or 0, gaps=True)

    def before_search(self, session: Session) -> None:
        """Wait, before a search, for the node's applier to apply the jobs committed so far; never
        apply them here (a search only reads the indexes).

        New text is waited for briefly (``FRESH_WAIT_S``): past that, the search reads the index as
        it is, and the text becomes searchable when the applier is done. Two cases wait longer
        (``APPLY_WAIT_S``): an index that does not exist yet, and a pending job that takes text out
        of a tier (a tier raised, a record withdrawn; one that committed late, after a later one,
        included), so that a reclassified record never counts in anyone's results.
        """
        head = session.scalar(select(func.max(IndexJob.id))) or 0
        if not self._behind_of(head, gaps=True):
            return
        if self.applier is None:
            # An index object of no application (a command's, a benchmark's): it applies the jobs itself.
            self.catch_up(session, wait=0)
        elif self._missing() or self._hiding_pending(session):

            def ready() -> bool:
                return not self._behind_of(head) and not self._hiding_pending(session)

            self.applier.wait_for(ready, APPLY_WAIT_S)
        elif self._behind_of(head):
            self.applier.wait_for(lambda: not self._behind_of(head), FRESH_WAIT_S)

    def _behind_of(self, head: int, gaps: bool = False) -> bool:
        """Whether some tier has not applied the jobs up to ``head`` (nor, with ``gaps``, the ids it
        found missing when it applied them, which may be transactions still committing)."""
        for tier in TIERS:
            folder = self.folder(tier)
            if folder is None:
                return True
            meta = Meta.read(folder)
            if meta.through < head or meta.schema != SCHEMA_VERSION or (gaps and meta.gaps):
                return True
        return False

    def _missing(self) -> bool:
        return any(
            self.folder(tier) is None or Meta.read(self.folder(tier)).schema != SCHEMA_VERSION
            for tier in TIERS
        )

    def _hiding_pending(self, session: Session) -> bool:
        """Whether a job not yet applied by every tier takes text out of a tier."""
        metas = [Meta.read(folder) for tier in TIERS if (folder := self.folder(tier)) is not None]
        low = min(m.through for m in metas)
        gaps = sorted({int(g) for m in metas for g in m.gaps})
        pending = or_(IndexJob.id > low, IndexJob.id.in_(gaps))
        return bool(session.scalar(select(exists().where(pending, IndexJob.purge))))

    def catch_up(
        self, session: Session, wait: float = APPLY_WAIT_S, writer_timeout: float = WRITER_TIMEOUT_S
    ) -> bool:
        """Apply the outbox jobs each tier has not applied yet, as the node's one applier.

        Waits up to ``wait`` seconds for another applier to finish first. False when it did not get
        its turn, or another process held a Whoosh writer.
        """
        with _applier_lock(self._applier, wait) as held:
            return held and self._catch_up(session, writer_timeout)

    def _catch_up(self, session: Session, writer_timeout: float) -> bool:
        # The metas are read here, under the lock: another applier may have done the work meanwhile.
        if self._missing():
            self._rebuild(session, TIERS, holding=True)
            return True
        head = session.scalar(select(func.max(IndexJob.id))) or 0
        metas = {tier: Meta.read(self.folder(tier)) for tier in TIERS}  # type: ignore[arg-type]
        if all(m.through >= head and not m.gaps for m in metas.values()):
            return True
        low = min(m.through for m in metas.values())
        gap_ids = sorted({int(g) for m in metas.values() for g in m.gaps})
        rows = session.execute(
            select(IndexJob.id, IndexJob.record_id, IndexJob.purge).where(
                or_(IndexJob.id.in_(gap_ids), (IndexJob.id > low) & (IndexJob.id <= head))
            )
        ).all()
        found = {job_id for job_id, _, _ in rows}
        records = {r.id: r for r in rebuild.load_records(session, sorted({rid for _, rid, _ in rows}))}
        done = True
        applied = []
        for tier, meta in metas.items():
            wanted = [(j, rid, purge) for j, rid, purge in rows if j > meta.through or str(j) in meta.gaps]
            if not wanted and meta.through >= head and not meta.gaps:
                continue
            if not self._apply(tier, wanted, records, writer_timeout):
                done = False
                continue
            now = time.time()
            gaps = {g: t for g, t in meta.gaps.items() if int(g) not in found and now - t < GAP_PATIENCE_S}
            for missing in range(meta.through + 1, head + 1):
                if missing not in found:
                    gaps.setdefault(str(missing), now)
            Meta(through=max(meta.through, head), gaps=gaps).write(self.folder(tier))  # type: ignore[arg-type]
            applied.append(tier)
        for tier in applied:
            self._merge_if_due(tier, writer_timeout)
        return done

    def _apply(
        self, tier: str, jobs: list[tuple[int, str, bool]], records: dict[str, Record], writer_timeout: float
    ) -> bool:
        try:
            writer = self.index(tier).writer(timeout=writer_timeout, compound=False)
        except LockError:
            return False
        purge = False
        try:
            for record_id in dict.fromkeys(rid for _, rid, _ in jobs):
                removed = writer.delete_by_term("id", record_id)
                record = records.get(record_id)
                document = document_for(record, tier) if record is not None else None
                if document is not None:
                    writer.add_document(**document)
                purge = purge or bool(removed and any(p for _, rid, p in jobs if rid == record_id))
            # Text leaving a tier is rewritten away in the same commit; other merges come after it.
            writer.commit(mergetype=segments.rewrite_with_deletions if purge else NO_MERGE)
        except BaseException:
            writer.cancel()
            raise
        self._forget_dead_segments()
        return True

    def _merge_if_due(self, tier: str, writer_timeout: float) -> None:
        """Merge small segments once the change that made them is searchable (and its meta written).

        A merge of ten small segments takes up to a few seconds at 10,000 records; done in the
        commit that adds a document, it would delay that document's visibility by as much.
        """
        if not segments.small_group(self.index(tier)._segments()):
            return
        try:
            writer = self.index(tier).writer(timeout=writer_timeout, compound=False)
        except LockError:
            return
        try:
            writer.commit(mergetype=segments.merge_small)
        except BaseException:
            writer.cancel()
            raise
        self._forget_dead_segments()

    def _forget_dead_segments(self) -> None:
        """Drop cached columns of segments that merges have removed."""
        if len(self.columns) > 256:
            self.columns.clear()

    # Rebuilding and checking ---------------------------------------------------------------

    def rebuild(self, session: Session, tiers: tuple[str, ...] = TIERS) -> dict[str, int]:
        """Build ``tiers`` from scratch into new directories and swap them in; searches keep working.

        The build runs beside the live indexes, which go on applying jobs; the swap waits for the
        applier's turn, so that no applier writes the old directory's progress into the new one.
        Raises RuntimeError if that turn does not come within ten minutes.
        """
        return self._rebuild(session, tiers, holding=False)

    def _rebuild(self, session: Session, tiers: tuple[str, ...], holding: bool) -> dict[str, int]:
        folders = {tier: str(self._new_folder(tier)) for tier in tiers}
        head, counts = rebuild.build(session, folders, self.build_memory_mb)
        for folder in folders.values():
            Meta(through=head).write(Path(folder))
        if holding:
            self._swap_all(folders)
            return counts
        with _applier_lock(self._applier, REBUILD_SWAP_WAIT_S) as held:
            if not held:
                for folder in folders.values():
                    shutil.rmtree(folder, ignore_errors=True)
                raise RuntimeError("another process kept applying index jobs; the new indexes were dropped")
            self._swap_all(folders)
        return counts

    def _swap_all(self, folders: dict[str, str]) -> None:
        for tier, folder in folders.items():
            self._swap(tier, Path(folder))

    def status(self, session: Session) -> dict[str, dict[str, list[str]]]:
        """Per tier: records missing from the index, entries without a record, and stale entries."""
        return rebuild.status(self, session)
