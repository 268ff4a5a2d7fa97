"""A worker that writes one fresh tier index: ``python -O -m registry.search.build_worker FOLDER MB``.

It reads the pickled batches of documents its parent derived through the policy from standard
input (the parent is the only writer of that pipe), then commits, holding up to MB megabytes of
postings in memory. ``-O`` skips Whoosh's per-posting type assertions (a tenth of the time).
"""

from __future__ import annotations

import pickle
import sys

from .writer import add_documents, open_writer


def main(folder: str, memory_mb: int) -> None:
    """Write the batches the parent pipes in, then commit."""
    writer = open_writer(folder, memory_mb)
    try:
        while True:
            try:
                batch = pickle.load(sys.stdin.buffer)  # noqa: S301 - written by our parent
            except EOFError:
                break
            add_documents(writer, batch)
        writer.commit()
    except BaseException:
        writer.cancel()
        raise


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
