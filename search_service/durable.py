"""Durable file writes: a file replaced in one rename, on disk (file and directory fsync'd) when it returns.

Shared by every part that keeps state next to the index: generations, the journal, editorial
sets, vectors and the ANN graph.
"""

import os
from pathlib import Path


def replace_durably(path: Path, data: bytes, tmp: Path) -> None:
    """Make `data` the content of `path` in one rename, on disk (file and directory fsync'd) when
    this returns: a reader sees the old file or the new one, and a kill -9 after it loses nothing."""
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
