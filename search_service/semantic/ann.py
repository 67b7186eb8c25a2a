"""The approximate nearest-neighbour graph over a generation's vectors (HNSW, usearch).

    generations/NAME/embeddings/
      ann.json             {"rows", "file", "bytes", "keys_sha256", "params"}: which graph is live
      ann-<ROWS>.usearch   the graph over rows 0..ROWS-1 of vectors.f32 (key = row number),
                           float16, inner product (every vector is unit length: cosine)

Why this shape: the graph is derived from the vectors alone, so it never decides what is embedded
(nothing here is in the fingerprint) and it can always be dropped: a missing graph, one built
for other rows (`keys_sha256` is the sha256 of keys.bin's first ROWS rows, which name what
each row embeds), or one that will not open is logged and the search is exact. Graph files are
written once and never changed: rows appended later (incremental imports, the write API) are
the exact "tail" until there are `ann_tail_rows` of them; then the graph is loaded, extended by
the tail, saved as a new file (fsync'd) and switched in by replacing ann.json, so a worker maps
either the old graph or the new one. A full rebuild whose first rows are the previous graph's
(same keys, same order, same parameters) hard-links its file instead of building again.

Workers map the graph read-only (`Index.restore(path, view=True)`): the pages are shared through
the page cache. The graph's candidates are rescored from the float32 vectors, so the cosines
that fusion sees are exact; only which rows are looked at is approximate.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search_service.durable import fsync_dir, replace_durably
from search_service.semantic.vectors import KEY_BYTES, KEYS, VECTORS

if TYPE_CHECKING:
    import numpy as np

    from search_service.config import SemanticConfig
    from search_service.semantic.vectors import VectorReader

log = logging.getLogger("search_service.ann")

META = "ann.json"
DTYPE = "f16"
METRIC = "ip"
# Rows handed to usearch per add() call when building: the float32 copy of a chunk is all that
# is held besides the graph (1M vectors are never read into memory at once).
ADD_CHUNK = 16_384


class GraphUnavailableError(Exception):
    """The graph cannot be used (missing, for other rows, unreadable, or usearch not installed)."""


@dataclass(frozen=True)
class GraphRun:
    """What one import did to the graph: "exact" (fewer vectors than ann_min_vectors), "kept"
    (the tail is still short), "built", "linked" (the previous generation's), "extended" (the
    tail folded in), or "failed" (logged; searches are exact until a later import builds one)."""

    action: str
    rows: int = 0
    seconds: float = 0.0


def graph_name(rows: int) -> str:
    return f"ann-{rows}.usearch"


def params_of(semantic: SemanticConfig, dimension: int) -> dict[str, Any]:
    """What a graph is built with; a rebuild links the previous graph only when these are equal."""
    return {
        "dtype": DTYPE,
        "metric": METRIC,
        "dimension": dimension,
        "connectivity": semantic.ann_connectivity,
        "expansion_add": semantic.ann_expansion_add,
    }


def keys_sha256(directory: Path, rows: int) -> str:
    """The sha256 of the first `rows` keys: which text each of the graph's rows holds, in order."""
    with open(directory / KEYS, "rb") as handle:
        data = handle.read(rows * KEY_BYTES)
    if len(data) != rows * KEY_BYTES:
        raise GraphUnavailableError(f"{directory / KEYS} holds fewer than {rows} keys")
    return hashlib.sha256(data).hexdigest()


def read_meta(directory: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((directory / META).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise GraphUnavailableError(f"{directory / META} is unreadable: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("rows"), int) or not isinstance(meta.get("file"), str):
        raise GraphUnavailableError(f"{directory / META} is not a graph's description")
    return meta


def matching_meta(directory: Path, rows: int) -> dict[str, Any] | None:
    """ann.json when it describes a graph over this directory's rows as they are now; else None."""
    meta = read_meta(directory)
    if meta is None or meta["rows"] > rows or meta.get("keys_sha256") != keys_sha256(directory, meta["rows"]):
        return None
    return meta


def _usearch() -> Any:
    try:
        from usearch.index import Index
    except ImportError:
        raise GraphUnavailableError(
            "usearch is not installed: pip install 'search-service[semantic]'; searches stay exact"
        ) from None
    return Index


# -- the writer's side (the index's writer lock held, vectors synced) ---------------------------


def update_graph(
    directory: Path,
    semantic: SemanticConfig,
    dimension: int,
    rows: int,
    previous: Path | None = None,
    threads: int = 1,
) -> GraphRun:
    """Bring the graph of `directory` (vectors rows 0..rows-1 on disk) up to date: build it once
    there are ann_min_vectors rows, link the previous generation's when it covers the same rows,
    fold the tail in once it reaches ann_tail_rows."""
    started = time.perf_counter()
    params = params_of(semantic, dimension)
    try:
        meta = matching_meta(directory, rows)
    except GraphUnavailableError:
        meta = None  # an unreadable ann.json is replaced by the graph built now
    if meta is None and rows < semantic.ann_min_vectors:
        return GraphRun("exact")
    action = "kept"
    if meta is None and previous is not None:
        meta = _link_previous(previous, directory, rows, params)
        action = "linked" if meta is not None else action
    if meta is not None and rows - meta["rows"] < semantic.ann_tail_rows and _opens(directory, meta):
        return GraphRun(action, meta["rows"], time.perf_counter() - started)
    Index = _usearch()
    index = None
    if meta is not None:
        try:
            index = Index.restore(str(directory / meta["file"]), view=False)
        except (ValueError, RuntimeError, OSError) as exc:
            log.warning("ann graph not extended: built afresh", extra={"fields": {"error": str(exc)}})
    base = meta["rows"] if index is not None and len(index) == meta["rows"] else 0
    if base == 0:
        index = Index(
            ndim=dimension,
            metric=METRIC,
            dtype=DTYPE,
            connectivity=semantic.ann_connectivity,
            expansion_add=semantic.ann_expansion_add,
        )
    _add_rows(index, directory, dimension, base, rows, threads)
    _publish(directory, index, rows, params)
    return GraphRun("extended" if base else "built", rows, time.perf_counter() - started)


def _opens(directory: Path, meta: dict[str, Any]) -> bool:
    """Whether the graph ann.json names is there and maps as a graph of its rows (a cheap check:
    the file is mapped, not read)."""
    path = directory / meta["file"]
    try:
        if path.stat().st_size != meta.get("bytes"):
            return False
        index = _usearch().restore(str(path), view=True)
    except (ValueError, RuntimeError, OSError):
        return False
    return index is not None and len(index) == meta["rows"]


def _add_rows(index: Any, directory: Path, dimension: int, start: int, stop: int, threads: int) -> None:
    import numpy as np

    matrix = np.memmap(directory / VECTORS, dtype="<f4", mode="r", shape=(stop, dimension))
    for at in range(start, stop, ADD_CHUNK):
        end = min(at + ADD_CHUNK, stop)
        index.add(np.arange(at, end, dtype=np.uint64), np.asarray(matrix[at:end]), threads=threads)
    del matrix


def _publish(directory: Path, index: Any, rows: int, params: dict[str, Any]) -> None:
    """The new graph file on disk under its own name, then ann.json pointing to it (one rename)."""
    name = graph_name(rows)
    tmp = directory / f"{name}.tmp"
    index.save(str(tmp))
    _fsync(tmp)
    os.replace(tmp, directory / name)
    fsync_dir(directory)
    _write_meta(directory, name, rows, params)


def _write_meta(directory: Path, name: str, rows: int, params: dict[str, Any]) -> None:
    old = None
    with contextlib.suppress(GraphUnavailableError):
        old = (read_meta(directory) or {}).get("file")
    meta = {
        "rows": rows,
        "file": name,
        "bytes": (directory / name).stat().st_size,
        "keys_sha256": keys_sha256(directory, rows),
        "params": params,
    }
    replace_durably(directory / META, json.dumps(meta).encode(), directory / f"{META}.tmp")
    # The graph just replaced may still be opened by a worker that read the old ann.json a moment
    # ago: it is kept until the next switch; anything older goes.
    for path in directory.glob("ann-*.usearch*"):
        if path.name not in (name, old):
            path.unlink(missing_ok=True)


def _link_previous(previous: Path, directory: Path, rows: int, params: dict[str, Any]) -> dict[str, Any] | None:
    """The previous generation's graph, hard-linked (else copied), when its rows are this
    generation's first rows and it was built with the same parameters."""
    try:
        meta = read_meta(previous)
    except GraphUnavailableError:
        return None
    if meta is None or meta["rows"] > rows or meta.get("params") != params:
        return None
    if meta.get("keys_sha256") != keys_sha256(directory, meta["rows"]):
        return None
    source, target = previous / meta["file"], directory / meta["file"]
    try:
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:  # another file system, or links not allowed: a copy does the same
            shutil.copyfile(source, target)
            _fsync(target)
        fsync_dir(directory)
    except OSError as exc:
        log.warning("ann graph of the previous generation not reused", extra={"fields": {"error": str(exc)}})
        return None
    _write_meta(directory, meta["file"], meta["rows"], params)
    return read_meta(directory)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


# -- the workers' side --------------------------------------------------------------------------


class GraphView:
    """One generation's graph as a worker searches it: memory-mapped, checked against the vectors.

    refresh() costs one stat of ann.json when nothing changed. When the graph cannot be used,
    `problem` says why (logged once per ann.json) and nearest() returns None: search exactly."""

    def __init__(self, directory: Path, dimension: int, expansion_search: int) -> None:
        self.directory = directory
        self.dimension = dimension
        self.expansion_search = expansion_search
        self.rows = 0
        self.problem: str | None = None
        self._index: Any = None
        self._stamp: tuple[int, int, int] | None = None

    def refresh(self, vectors: VectorReader) -> None:
        try:
            stat = os.stat(self.directory / META)
            stamp = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
        except OSError:
            stamp = None
        if stamp == self._stamp and self._stamp is not None:
            return
        self._index, self.rows = None, 0
        try:
            self._open(vectors)
        except GraphUnavailableError as exc:
            if str(exc) != self.problem:  # once per cause, not once per search
                fields = {"directory": str(self.directory), "error": str(exc)}
                log.warning("ann graph not used: exact search", extra={"fields": fields})
            self.problem = str(exc)
        else:
            self.problem = None
        self._stamp = stamp

    def _open(self, vectors: VectorReader) -> None:
        meta = read_meta(self.directory)
        if meta is None:
            raise GraphUnavailableError(f"there is no graph in {self.directory}")
        rows = meta["rows"]
        if vectors.keys is None or rows > vectors.rows:
            raise GraphUnavailableError(f"the graph has {rows} rows, the vectors {vectors.rows}")
        if hashlib.sha256(vectors.keys[:rows].tobytes()).hexdigest() != meta.get("keys_sha256"):
            raise GraphUnavailableError("the graph was built over other rows (keys sha256 differs)")
        path = self.directory / meta["file"]
        try:
            if path.stat().st_size != meta.get("bytes"):
                raise GraphUnavailableError(f"{path} is not the size ann.json records")
            index = _usearch().restore(str(path), view=True)
        except (ValueError, RuntimeError, OSError) as exc:
            raise GraphUnavailableError(f"{path} will not open: {exc}") from exc
        if index is None or len(index) != rows or index.ndim != self.dimension:
            raise GraphUnavailableError(f"{path} is not a graph of {rows} vectors of {self.dimension} dimensions")
        index.expansion_search = self.expansion_search
        self._index, self.rows = index, rows

    def nearest(
        self, vectors: VectorReader, query: np.ndarray, k: int, skip: int = 0
    ) -> list[tuple[int, float]] | None:
        """Rows ranked skip..skip+k by exact cosine among the graph's skip+k nearest and every
        row past the graph (the tail); None when there is no usable graph."""
        import numpy as np

        index = self._index
        if index is None or vectors.matrix is None or k <= 0:
            return None
        want = skip + k
        try:
            found = index.search(query, want).keys.astype(np.int64)
        except (ValueError, RuntimeError) as exc:
            log.warning("ann search failed: exact search", extra={"fields": {"error": str(exc)}})
            return None
        found = np.sort(found[(found >= 0) & (found < self.rows)])  # sorted: mapped pages read in order
        scores = np.concatenate([vectors.matrix[found] @ query, vectors.matrix[self.rows :] @ query])
        rows = np.concatenate([found, np.arange(self.rows, vectors.rows, dtype=np.int64)])
        top = np.argsort(-scores, kind="stable")[skip:want]
        return [(int(rows[i]), float(scores[i])) for i in top]
