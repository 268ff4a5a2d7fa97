"""Building a tier's index from scratch, and checking one against the database.

Documents are derived here, through the policy (``documents.document_for``), a batch of records at
a time; writing the index is CPU-bound pure Python, so for a large registry each tier is written by
a worker process fed through a pipe while the next batch is derived. ``TierIndexes`` swaps the new
directories in.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, undefer

from ..models import File, IndexJob, Record
from ..vocab import TIERS
from .documents import document_for
from .writer import add_documents, open_writer

if TYPE_CHECKING:
    from .index import TierIndexes

REBUILD_BATCH = 500
# Below this many records a rebuild writes the tiers in this process (starting workers costs more).
PARALLEL_REBUILD_ABOVE = 200


class _LocalSinks:
    """Index writers in this process (small registries)."""

    def __init__(self, folders: dict[str, str], memory_mb: int) -> None:
        self.writers = {tier: open_writer(folder, memory_mb) for tier, folder in folders.items()}

    def send(self, tier: str, documents: list[dict[str, Any]]) -> None:
        add_documents(self.writers[tier], documents)

    def finish(self) -> None:
        for writer in self.writers.values():
            writer.commit()


class _WorkerSinks:
    """One writer process per tier, fed pickled batches through its standard input."""

    def __init__(self, folders: dict[str, str], memory_mb: int) -> None:
        root = Path(__file__).resolve().parent.parent.parent
        env = {**os.environ, "PYTHONPATH": str(root)}
        self.workers = {
            tier: subprocess.Popen(
                [sys.executable, "-O", "-m", "registry.search.build_worker", folder, str(memory_mb)],
                stdin=subprocess.PIPE,
                cwd=root,
                env=env,
            )
            for tier, folder in folders.items()
        }

    def send(self, tier: str, documents: list[dict[str, Any]]) -> None:
        pickle.dump(documents, self.workers[tier].stdin, protocol=pickle.HIGHEST_PROTOCOL)

    def finish(self) -> None:
        for worker in self.workers.values():
            worker.stdin.close()  # type: ignore[union-attr]
        failed = [tier for tier, worker in self.workers.items() if worker.wait() != 0]
        if failed:
            raise RuntimeError(f"the index writer of {', '.join(failed)} failed")


def load_records(session: Session, ids: list[str]) -> list[Record]:
    stmt = select(Record).where(Record.id.in_(ids))
    return list(session.scalars(stmt.options(selectinload(Record.files).options(undefer(File.text)))))


def _in_batches(session: Session, ids: list[str]) -> Iterator[list[Record]]:
    """The records ``ids`` with their files' text, a batch at a time, read in a session of their own
    that forgets each batch, so memory stays flat however large the registry."""
    with Session(bind=session.get_bind()) as reading:
        for start in range(0, len(ids), REBUILD_BATCH):
            yield load_records(reading, ids[start : start + REBUILD_BATCH])
            reading.expunge_all()


def build(session: Session, folders: dict[str, str], memory_mb: int) -> tuple[int, dict[str, int]]:
    """Write every tier of ``folders`` (tier -> new directory) from the database; return the last
    outbox job the build includes and the number of documents of each tier."""
    head = session.scalar(select(func.max(IndexJob.id))) or 0
    ids = list(session.scalars(select(Record.id).order_by(Record.id)))
    parallel = (os.cpu_count() or 1) > 1 and len(ids) > PARALLEL_REBUILD_ABOVE
    sinks = (_WorkerSinks if parallel else _LocalSinks)(folders, memory_mb)
    counts = dict.fromkeys(folders, 0)
    for records in _in_batches(session, ids):
        for tier in folders:
            documents = [d for d in (document_for(r, tier) for r in records) if d is not None]
            for document in documents:
                # The phrase field reads the body's text: sent once, restored by the writer.
                del document["pairs"]
            sinks.send(tier, documents)
            counts[tier] += len(documents)
    sinks.finish()
    return head, counts


def status(indexes: TierIndexes, session: Session) -> dict[str, dict[str, list[str]]]:
    """Per tier: records missing from the index, entries without a record, and stale entries."""
    ids = list(session.scalars(select(Record.id).order_by(Record.id)))
    expected: dict[str, dict[str, str]] = {tier: {} for tier in TIERS}
    for records in _in_batches(session, ids):
        for record in records:
            for tier in TIERS:
                document = document_for(record, tier)
                if document is not None:
                    expected[tier][record.id] = document["digest"]
    report: dict[str, dict[str, list[str]]] = {}
    for tier in TIERS:
        wanted = expected[tier]
        with indexes.index(tier).searcher() as searcher:
            actual = {fields["id"]: fields["digest"] for fields in searcher.all_stored_fields()}
        report[tier] = {
            "missing": sorted(set(wanted) - set(actual)),
            "orphaned": sorted(set(actual) - set(wanted)),
            "stale": sorted(k for k in set(wanted) & set(actual) if wanted[k] != actual[k]),
        }
    return report
