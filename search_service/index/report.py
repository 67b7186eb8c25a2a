"""What an import run reports (every count, every reject) and the knobs and hooks it runs with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search_service.index.journal import Entry


@dataclass(frozen=True)
class Reject:
    source: str
    line: int
    reason: str
    slug: str | None = None


@dataclass
class ImportReport:
    mode: str
    read: int = 0
    indexed: int = 0
    new: int = 0
    updated: int = 0
    deleted: int = 0
    rejected: int = 0
    skipped: int = 0
    # Upserts not written: older than the stored article by updated_at, or identical to it.
    stale: int = 0
    unchanged: int = 0
    warnings: int = 0
    # Writes of the journal (accepted while the lock was held) applied in this run's commit.
    journal: int = 0
    # A full rebuild and the write log (writelog.py): writes made outside rebuilds that it kept
    # because its input holds no newer version (carried), those its input holds a version as new
    # or newer of (superseded), and with --exact those it left out (dropped).
    carried: int = 0
    superseded: int = 0
    dropped: int = 0
    seconds: float = 0.0
    documents: int = 0
    generation: str | None = None
    # Semantic ranking ([semantic] enabled): vectors computed, copied from the previous
    # generation (text unchanged), and left for `search-service embed` (IndexerOptions.embed off).
    embedded: int = 0
    vectors_reused: int = 0
    vectors_missing: int = 0
    # The ANN graph (ann.py): what this run did to it (ann.GraphRun's action; "" with [semantic]
    # off), the rows it covers after the run, and the seconds that took.
    ann: str = ""
    ann_rows: int = 0
    ann_seconds: float = 0.0

    @property
    def docs_per_s(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"docs_per_s": round(self.docs_per_s, 1), "seconds": round(self.seconds, 3)}


@dataclass
class Hooks:
    """How a caller hears about progress; all optional."""

    on_reject: Callable[[Reject], None] = lambda reject: None
    on_warning: Callable[[str, int, str], None] = lambda source, line, message: None
    on_progress: Callable[[int], None] = lambda count: None
    on_missing: Callable[[str], None] = lambda slug: None  # a slug to delete that is not in the index
    # A journal entry applied (in the commit that is about to be made), with its own counts.
    on_journal: Callable[[Entry, ImportReport], None] = lambda entry, counts: None
    # A logged write that a rebuild with --exact left out: its slug, and whether it was a deletion.
    on_dropped: Callable[[str, bool], None] = lambda slug, deletion: None
    # Waiting for another writer's lock: its pid (or "unknown") and the seconds waited so far.
    on_lock_wait: Callable[[str, float], None] = lambda holder, waited: None


@dataclass
class IndexerOptions:
    heap_bytes: int = 256 * 1024 * 1024
    threads: int = 2
    # Abort, leaving the live index untouched, once more records than this are rejected.
    max_rejects: int | None = None
    # How long to wait for another writer to finish before refusing (IndexLockedError).
    lock_wait_s: float = 0.0
    # While waiting, say so (the CLI: a long run), so that HTTP writes journal instead of taking
    # the lock before it; or give way to such a run at once (HTTP writes and the journal applier).
    announce_wait: bool = False
    defer_to_waiting: bool = False
    # Refuse a write (InsufficientStorageError) when the index's file system has less free than this.
    min_free_bytes: int = 0
    # Whether an upsert may rebuild a live index made by another config into this one (the CLI
    # does; a server must not turn the index of a newer config back into its own).
    migrate: bool = True
    # Whether each run is recorded in last_run.json (for `stats` and /metrics): the CLI's imports
    # are; the HTTP API's many small writes are counted in its own metrics instead.
    record_runs: bool = True
    # With [semantic] enabled: embed new and changed articles now (else `search-service embed` does).
    embed: bool = True
