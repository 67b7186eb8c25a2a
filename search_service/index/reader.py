"""The serving side of the index: the live generation, opened once and followed as it changes."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import tantivy

from search_service.config import IndexConfig
from search_service.errors import IndexNotReadyError
from search_service.index.schema import build_schema
from search_service.index.store import Generation, IndexStore
from search_service.index.warm import warm
from search_service.index.writelog import WriteLog, carried_count

log = logging.getLogger("search_service.reader")
# A damaged live generation is tried again this often (a copy put back, a transient failure).
DAMAGE_RECHECK_S = 5.0
OPEN_ATTEMPTS = 3
# Tantivy's open error names the file it could not read: `filepath: "<segment>.store"`.
_FILE_IN_ERROR = re.compile(r'filepath: \\?"([^"\\]+)')


@dataclass(frozen=True)
class Damage:
    generation: str
    file: str | None  # the file Tantivy named, when it did
    key: tuple[str, tuple[int, int]]  # the generation and its meta.json as they were when found damaged
    found: float  # time.monotonic() of the last attempt


@dataclass(frozen=True)
class OpenIndex:
    generation: Generation
    index: tantivy.Index


class IndexReader:
    """Hands out searchers on the live generation.

    At most every `interval` seconds it checks CURRENT (a full rebuild switched generations) and
    the generation's meta.json (an incremental commit) so every worker sees a commit within
    about `interval` plus a request, without a restart. A generation built by another index
    config is never served: the reader keeps the one it has and reports why.
    """

    def __init__(self, store: IndexStore, config: IndexConfig, interval: float = 0.25, warm: bool = False) -> None:
        self.store = store
        self.config = config
        self.interval = interval
        # Warm a generation (index/warm.py) before serving it: the server does; one-off readers need not.
        self.warm = warm
        self.warmed: dict[str, Any] = {}  # what the last warm-up did, and how long it took
        self.schema = build_schema(config)
        self.problem: str | None = None
        # The live generation, when it cannot be opened: what /ready, /metrics and the log report.
        self.damage: Damage | None = None
        self._open: OpenIndex | None = None
        self._meta_mtime = (0, 0)
        self._checked = float("-inf")
        self._lock = threading.Lock()

    @property
    def version(self) -> tuple[str, int] | None:
        """Changes whenever the served index does: a key for caches of derived data."""
        return (self._open.generation.name, self._meta_mtime) if self._open else None

    def searcher(self) -> tantivy.Searcher:
        return self.current().index.searcher()

    def current(self) -> OpenIndex:
        if time.monotonic() - self._checked >= self.interval:
            # While another thread opens and warms a generation, serve the one that is open.
            self.refresh(wait=self._open is None)
        if self._open is None:
            raise IndexNotReadyError(
                self.problem
                or f"there is no index in {self.store.root} (--index-dir, else $SEARCH_INDEX_DIR, else ./data/index): "
                "run `search-service reindex`"
            )
        return self._open

    def refresh(self, wait: bool = True) -> None:
        """Follow CURRENT and commits. `wait=False`: return at once if another thread is at it."""
        if not self._lock.acquire(blocking=wait):
            return
        try:
            self._checked = time.monotonic()
            name = self.store.current_name()
            if self._open is None or name != self._open.generation.name:
                self._switch()
            elif self._open is not None:
                self._reload_if_committed()
        finally:
            self._lock.release()

    def _switch(self) -> None:
        generation = self.store.current()
        if generation is None:
            return
        if generation.fingerprint != self.config.fingerprint:
            self.problem = (
                f"the index {generation.name} was built by another index config "
                f"({generation.fingerprint}, this service runs {self.config.fingerprint}): run `search-service reindex`"
            )
            return
        damage = self.damage
        known = damage is not None and damage.key == (generation.name, _mtime(generation))
        if known and time.monotonic() - damage.found < DAMAGE_RECHECK_S:
            return  # known damaged, unchanged since: keep what is served (or not) and its reason
        try:
            index = _open_settled(generation, self.config)
        except IndexNotReadyError as exc:
            self._damaged(generation, exc.message)
            return
        mtime = _mtime(generation)
        if self.warm:
            started = time.perf_counter()
            self.warmed = warm(index, self.config) | {"generation": generation.name}
            self.warmed["ms"] = round((time.perf_counter() - started) * 1000, 1)
        self._open = OpenIndex(generation, index)
        self._meta_mtime = mtime
        self.problem = None
        self.damage = None

    def _damaged(self, generation: Generation, reason: str) -> None:
        """The live generation cannot be opened (a truncated or unreadable file): serve the previous
        one while it is kept, else nothing (503 with the reason); log and report the file once."""
        found = _FILE_IN_ERROR.search(reason)
        first = self.damage is None or self.damage.generation != generation.name
        key = (generation.name, _mtime(generation))
        self.damage = Damage(generation.name, found.group(1) if found else None, key, time.monotonic())
        previous = self.store.previous()
        fallback = None
        if previous is not None and previous.fingerprint == self.config.fingerprint:
            try:
                fallback = OpenIndex(previous, previous.open(self.config))
            except IndexNotReadyError:
                fallback = None
        served = f"serving the previous generation {previous.name}" if fallback else "no generation to serve"
        self.problem = f"{reason}; {served}: run `search-service reindex` to build a sound one"
        fields = {
            "generation": generation.name,
            "file": self.damage.file,
            "error": reason,
            "fallback": fallback and previous.name,
        }
        if first:  # once per damaged generation, not at every recheck
            log.error("index generation damaged", extra={"fields": fields})
        if fallback is not None:
            self._open = fallback
            self._meta_mtime = _mtime(fallback.generation)
        elif self._open is not None and self._open.generation.name == generation.name:
            self._open = None

    def _reload_if_committed(self) -> None:
        mtime = _mtime(self._open.generation)
        if mtime != self._meta_mtime:
            self._meta_mtime = mtime
            self._open.index.reload()


def _open_settled(generation: Generation, config: IndexConfig) -> tantivy.Index:
    """Open `generation`, trying again briefly: a commit that lands while the files are being opened
    (its merge removing a segment just listed) is not damage."""
    for _ in range(OPEN_ATTEMPTS - 1):
        try:
            return generation.open(config)
        except IndexNotReadyError:
            time.sleep(0.05)
    return generation.open(config)


def _mtime(generation: Generation) -> tuple[int, int]:
    # Tantivy replaces meta.json by a rename at each commit: the inode tells two commits apart even
    # when they land within one tick of the file system's clock (HTTP writes come that fast).
    try:
        stat = os.stat(generation.path / "meta.json")
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_ino)


def index_stats(store: IndexStore, config: IndexConfig) -> dict[str, Any]:
    reader = IndexReader(store, config)
    opened = reader.current()
    searcher = opened.index.searcher()
    last = opened.generation.last_commit()
    return {
        "documents": searcher.num_docs,
        "segments": searcher.num_segments,
        "size_bytes": opened.generation.size_bytes(),
        "config_version": opened.generation.fingerprint,
        "last_commit": last.isoformat() if last else None,
        "generation": opened.generation.name,
        "index_dir": str(store.root),
        # Writes made outside full rebuilds that the next one keeps unless its input holds them newer.
        "carried_writes": carried_count(opened.generation.path),
        "write_log_files": len(WriteLog(store.root).names()),
    } | (_vector_stats(opened, searcher, config) if config.semantic.enabled else {})


def _vector_stats(opened: OpenIndex, searcher: tantivy.Searcher, config: IndexConfig) -> dict[str, Any]:
    from search_service.semantic.registry import MODELS
    from search_service.semantic.vectors import VectorReader, coverage, embeddings_dir

    spec = MODELS[config.semantic.model]
    vectors = VectorReader(embeddings_dir(opened.generation.path), spec.name, spec.dimension)
    embedded = coverage(searcher, opened.index.schema, vectors)
    return {
        "embedded": embedded,
        "embedding_coverage": round(embedded / searcher.num_docs, 4) if searcher.num_docs else 1.0,
        "vector_rows": vectors.rows,
        "ann_rows": _graph_rows(vectors, config),
    }


def _graph_rows(vectors: Any, config: IndexConfig) -> int:
    """Rows the live graph covers (0: none, or one that cannot be used); those past it, and every
    row below [semantic] ann_min_vectors, are searched exactly."""
    from search_service.semantic.ann import GraphView

    if vectors.rows < config.semantic.ann_min_vectors:
        return 0
    graph = GraphView(vectors.directory, vectors.dimension, config.semantic.ann_expansion_search)
    graph.refresh(vectors)
    return graph.rows
