"""Writes accepted while another process holds the writer lock, kept on disk until a writer applies them.

    INDEX_DIR/journal/<time_ns>-<pid>-<n>.json   one accepted write: {"op", "values", "force", "accepted_at"}

The HTTP write API appends an entry when it cannot take the writer lock in time (a full rebuild
runs, most often) and answers 202 only once the entry is fsync'd and renamed into place, so an
accepted write survives a kill -9 or a power cut. Every writer (HTTP or CLI) applies the pending
entries, oldest first, before its own work and in the same commit; a rebuild applies them to
its new generation before switching CURRENT. Entries are removed only after the commit (and,
for a rebuild, the switch) that holds them: a crash in between applies them once more, which
changes nothing, because each entry sets a slug to a value (upserts skip anything not newer
than what is stored, deletes remove what is there) and the next writer always replays them
before anything newer.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from search_service.durable import fsync_dir, replace_durably

JOURNAL_DIR = "journal"
UNREADABLE_DIR = "unreadable"
# A temporary file this old belongs to an append that was killed before it answered.
ABANDONED_TMP_S = 600

log = logging.getLogger("search_service.journal")
_counter = itertools.count()


@dataclass(frozen=True)
class Entry:
    name: str
    op: str  # "upsert": values are records as received; "delete": values are slugs
    values: list[Any]
    force: bool = False


class Journal:
    def __init__(self, index_dir: str | Path) -> None:
        self.dir = Path(index_dir) / JOURNAL_DIR

    def append(self, op: str, values: list[Any], force: bool = False) -> str:
        """Store one write durably; returns its name once it is on disk (file and directory fsync'd)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        # Names sort in arrival order: time first (one clock on one machine), then pid and a counter.
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_counter):06d}.json"
        payload = {"op": op, "values": values, "force": force, "accepted_at": datetime.now(UTC).isoformat()}
        replace_durably(self.dir / name, orjson.dumps(payload), self.dir / f".{name}.tmp")
        return name

    def names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.dir) if n.endswith(".json") and not n.startswith("."))
        except FileNotFoundError:
            return []

    def pending(self) -> list[Entry]:
        """Every entry, oldest first. One that cannot be read is moved aside (and logged), never applied half."""
        entries = []
        for name in self.names():
            path = self.dir / name
            try:
                data = orjson.loads(path.read_bytes())
                entries.append(Entry(name, data["op"], list(data["values"]), bool(data.get("force", False))))
            except FileNotFoundError:
                continue  # applied and removed by another writer meanwhile
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self._set_aside(path, exc)
        self._remove_abandoned()
        return entries

    def remove(self, names: Iterable[str]) -> None:
        removed = False
        for name in names:
            try:
                (self.dir / name).unlink()
                removed = True
            except FileNotFoundError:
                pass
        if removed:
            fsync_dir(self.dir)

    def _set_aside(self, path: Path, exc: Exception) -> None:
        aside = self.dir / UNREADABLE_DIR
        aside.mkdir(exist_ok=True)
        os.replace(path, aside / path.name)
        fields = {"entry": str(aside / path.name), "error": str(exc)}
        log.error("journal entry unreadable, moved aside", extra={"fields": fields})

    def _remove_abandoned(self) -> None:
        now = time.time()
        for tmp in self.dir.glob(".*.tmp"):
            try:
                if now - tmp.stat().st_mtime > ABANDONED_TMP_S:
                    tmp.unlink()
            except FileNotFoundError:
                pass
