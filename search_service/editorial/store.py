"""Editorial state that lives with the index: the synonym set and the curation rule set.

    INDEX_DIR/editorial/
      synonyms.json            {"version": N, "updated_at": ..., "synonyms": [...]}
      synonyms.previous.json   the set it replaced, for one-step rollback
      rules.json, rules.previous.json
      .lock                    flock held while a set is replaced

The directory sits beside `generations/`, so a full rebuild (which only replaces generations)
leaves it alone, and shipping INDEX_DIR to a replica ships it too. Each set is replaced by
writing a temporary file, fsyncing it and renaming it over the old one: a reader sees the old
set or the new one, never half of one, and a 2xx on a write means it survives a kill -9.
Versions only grow (a rollback is a new version too), so caches keyed by version never serve
results of a set that is no longer live.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import tantivy

from search_service.durable import replace_durably
from search_service.editorial.rules import RuleLimits, RuleSetIn, unknown_slugs, validate_rules
from search_service.editorial.synonyms import SynonymLimits, SynonymSetIn, validate_synonyms
from search_service.errors import EditConflictError, EditorialStateError, NotFoundError

log = logging.getLogger("search_service.editorial")
KINDS = ("synonyms", "rules")
DIRECTORY = "editorial"

T = TypeVar("T")


@dataclass(frozen=True)
class EditorialSet:
    """One stored version of a set: `items` is the list under the kind's key (plain JSON data)."""

    kind: str
    version: int
    updated_at: str | None
    items: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "updated_at": self.updated_at, self.kind: self.items}


class EditorialStore:
    """Reads and atomically replaces the editorial sets of one index directory."""

    def __init__(self, index_dir: str | Path) -> None:
        self.root = Path(index_dir) / DIRECTORY

    def path(self, kind: str, previous: bool = False) -> Path:
        return self.root / (f"{kind}.previous.json" if previous else f"{kind}.json")

    def read(self, kind: str, previous: bool = False) -> EditorialSet:
        """The stored set (version 0 and empty when there is none yet)."""
        path = self.path(kind, previous)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return EditorialSet(kind, int(data.get("version", 0)), data.get("updated_at"), list(data.get(kind, [])))
        except FileNotFoundError:
            return EditorialSet(kind, 0, None, [])
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            # Files are only ever renamed into place whole, so this is damage from outside.
            raise EditorialStateError(f"cannot read {path}: {exc}") from exc

    def stamp(self, kind: str) -> tuple[int, int]:
        """Changes whenever the live set is replaced (a rename makes a new inode): one stat for readers polling."""
        try:
            info = os.stat(self.path(kind))
        except OSError:
            return (0, 0)
        return (info.st_ino, info.st_mtime_ns)

    def replace(self, kind: str, items: list[dict[str, Any]], based_on: int | None = None) -> EditorialSet:
        """Make `items` the live set; the set it replaces becomes the previous one.

        `based_on`: the version the edit started from; if another edit came first, nothing changes."""
        with self._lock():
            try:
                current = self.read(kind)
            except EditorialStateError:
                # A live file damaged from outside is replaced, not kept. Its version is unknown: skip
                # past any version a worker may still be serving (previous + 1 at most).
                new = EditorialSet(kind, self.read(kind, previous=True).version + 2, _now(), items)
                self._write(self.path(kind), new)
                return new
            if based_on is not None and based_on != current.version:
                raise EditConflictError(
                    f"the {kind} set is at version {current.version}, this edit was based on version {based_on}: "
                    "get it again, reapply the edit, and put it back"
                )
            if current.version:
                self._write(self.path(kind, previous=True), current)
            new = EditorialSet(kind, current.version + 1, _now(), items)
            self._write(self.path(kind), new)
            return new

    def rollback(self, kind: str) -> EditorialSet:
        """Make the previous set live again (as a new version); the rolled-back one becomes previous."""
        with self._lock():
            current = self.read(kind)
            previous = self.read(kind, previous=True)
            if not current.version:
                raise NotFoundError(f"no {kind} set has been saved: there is nothing to roll back")
            if not previous.version:
                # The first set ever saved rolls back to the empty set that came before it.
                previous = EditorialSet(kind, 0, None, [])
            restored = EditorialSet(kind, current.version + 1, _now(), previous.items)
            self._write(self.path(kind, previous=True), current)
            self._write(self.path(kind), restored)
            return restored

    @contextmanager
    def _lock(self) -> Iterator[None]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.root / ".lock", "a+")  # noqa: SIM115 - held for the whole block below
        except OSError as exc:
            raise EditorialStateError(f"cannot write editorial state in {self.root}: {exc.strerror}") from exc
        with handle:
            # Writes take milliseconds: wait for another writer instead of failing.
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _write(self, path: Path, content: EditorialSet) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            replace_durably(path, json.dumps(content.as_dict(), ensure_ascii=False, indent=1).encode(), tmp)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise EditorialStateError(f"cannot write {path}: {exc.strerror}") from exc


class Followed(Generic[T]):
    """One set, compiled for serving and followed across changes.

    At most every `interval` seconds the file's mtime is compared (one stat), so every worker
    serves a new set within about `interval` plus a request, without a restart.
    """

    def __init__(
        self, store: EditorialStore, kind: str, compile: Callable[[EditorialSet], T], interval: float = 0.25
    ) -> None:
        self.store = store
        self.kind = kind
        self.compile = compile
        self.interval = interval
        self._stamp: tuple[int, int] | None = None
        self._value: T | None = None
        self._version = 0
        self._checked = float("-inf")
        self._lock = threading.Lock()

    @property
    def last_version(self) -> int:
        """The version of the set `current()` last returned."""
        return self._version

    def current(self) -> T:
        if time.monotonic() - self._checked >= self.interval or self._value is None:
            self.refresh()
        return self._value  # type: ignore[return-value]

    def refresh(self) -> None:
        with self._lock:
            self._checked = time.monotonic()
            stamp = self.store.stamp(self.kind)
            if stamp == self._stamp and self._value is not None:
                return
            try:
                loaded = self.store.read(self.kind)
            except EditorialStateError:
                if self._value is not None:
                    return  # keep serving the last good set
                loaded = EditorialSet(self.kind, 0, None, [])
            try:
                value = self.compile(loaded)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                # Only a hand-edited file gets here (writes are validated): keep serving the last good set.
                log.error("cannot use %s version %s: %r", self.store.path(self.kind), loaded.version, exc)
                value = self._value if self._value is not None else self.compile(EditorialSet(self.kind, 0, None, []))
            self._value = value
            self._version = loaded.version
            self._stamp = stamp


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def replace_synonyms(
    store: EditorialStore, payload: SynonymSetIn, limits: SynonymLimits, tokenize: Callable[[str], list[str]]
) -> dict[str, Any]:
    """Validate (a 422 changes nothing) and make `payload` the live synonym set."""
    groups = validate_synonyms(payload, limits, tokenize)
    return store.replace("synonyms", groups, payload.version).as_dict() | {"warnings": []}


def replace_rules(
    store: EditorialStore,
    payload: RuleSetIn,
    limits: RuleLimits,
    filter_params: Iterable[str],
    exists: Callable[[str], bool] | None,
) -> dict[str, Any]:
    """Validate (a 422 changes nothing) and make `payload` the live rule set; unknown slugs are warnings."""
    rules = validate_rules(payload, limits, filter_params)
    if exists is None:
        warnings = ["no index is open: pinned and hidden slugs were not checked"] if rules else []
    else:
        warnings = unknown_slugs(rules, exists)
    return store.replace("rules", rules, payload.version).as_dict() | {"warnings": warnings}


def slug_checker(searcher: Any, schema: Any, key_field: str) -> Callable[[str], bool]:
    def exists(slug: str) -> bool:
        return searcher.search(tantivy.Query.term_query(schema, key_field, slug), 1, count=True).count > 0

    return exists
