"""Writing a fresh tier index (in this process, or in ``build_worker`` processes started by ``rebuild``)."""

from __future__ import annotations

from typing import Any

from whoosh import index as whoosh_index


def open_writer(folder: str) -> Any:
    """A writer of the fresh index in ``folder``.

    Segments stay separate files (not compound): Whoosh copies a compound segment into memory
    every time a reader opens it, which would cost each new searcher tens of milliseconds.
    """
    return whoosh_index.open_dir(folder).writer(limitmb=256, compound=False)


def add_documents(writer: Any, documents: list[dict[str, Any]]) -> None:
    """Add ``documents``; the phrase field reads the body's text."""
    for document in documents:
        writer.add_document(pairs=document["body"], **document)
