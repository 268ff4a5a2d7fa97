"""Writing a fresh tier index (in this process, or in ``build_worker`` processes started by ``rebuild``)."""

from __future__ import annotations

from typing import Any

from whoosh import index as whoosh_index

from ..config import REINDEX_MEMORY_MB


def open_writer(folder: str, memory_mb: int = REINDEX_MEMORY_MB) -> Any:
    """A writer of the fresh index in ``folder``.

    Up to ``memory_mb`` of postings (by Whoosh's estimate, about 190 bytes each; the process
    grows by about as much) are held in memory. Beyond it Whoosh sorts them, pickles them to a
    run file one by one and merges the runs back at commit: a tier of 10,000 records (6.6
    million postings) takes half as long again when it spills.
    Segments stay separate files (not compound): Whoosh copies a compound segment into memory
    every time a reader opens it, which would cost each new searcher tens of milliseconds.
    """
    return whoosh_index.open_dir(folder).writer(limitmb=memory_mb, compound=False)


def add_documents(writer: Any, documents: list[dict[str, Any]]) -> None:
    """Add ``documents``; the phrase field reads the body's text."""
    for document in documents:
        writer.add_document(pairs=document["body"], **document)
