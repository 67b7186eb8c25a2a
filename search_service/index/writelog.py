"""The write log: what writes outside a full rebuild made of each slug, kept until a rebuild's input includes it.

    INDEX_DIR/writelog/<time_ns>-<pid>-<n>.jsonl   one commit's writes (HTTP, reindex --incremental, delete)
    generations/NAME/carried.jsonl                 what the rebuild that made NAME carried over

Each line is one slug's state after that commit: {"slug", "article": record as received} or
{"slug", "deleted_at": ISO time} (a tombstone). A live writer seals its entry (fsync'd, renamed
into place) before its Tantivy commit, so anything a 2xx acknowledged is in the log. A full
rebuild reads the live generation's carried.jsonl plus every entry after the last one it
covers (its `through` line), last write per slug winning, and replays that over its input:
the newest updated_at wins, and a tombstone wins over a version not newer than it. What the
input did not supersede goes into the new generation's carried.jsonl, so the log shrinks back
to what the CMS wrote that no rebuild input holds yet (one line per slug at most); entries it
covers are removed after the switch. A generation and the log it carries switch together.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from search_service.durable import fsync_dir

WRITELOG_DIR = "writelog"
CARRIED = "carried.jsonl"
_counter = itertools.count()


@dataclass(frozen=True)
class Where:
    """Where a slug's latest state sits: a file and the byte offset of its line."""

    path: Path
    offset: int


class LogFile:
    """One log file being written a line at a time; durable only once `seal()` returns."""

    def __init__(self, path: Path, header: dict[str, Any] | None = None) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.lines = 0
        self._handle: IO[bytes] | None = None
        self._header = header

    def article(self, slug: str, record: Any) -> None:
        self._write({"slug": slug, "article": record})

    def tombstone(self, slug: str, deleted_at: datetime) -> None:
        self._write({"slug": slug, "deleted_at": deleted_at.isoformat()})

    def raw(self, line: bytes) -> None:
        self._open().write(line if line.endswith(b"\n") else line + b"\n")
        self.lines += 1

    def _write(self, state: dict[str, Any]) -> None:
        self.raw(orjson.dumps(state))

    def _open(self) -> IO[bytes]:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.tmp, "wb")  # noqa: SIM115 - kept open across calls, closed in seal/discard
            if self._header is not None:
                self._handle.write(orjson.dumps(self._header) + b"\n")
        return self._handle

    def seal(self, always: bool = False) -> bool:
        """fsync and rename into place (the directory fsync'd too); False when nothing was written."""
        if self._handle is None and not always:
            return False
        handle = self._open()
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(self.tmp, self.path)
        fsync_dir(self.path.parent)
        return True

    def discard(self) -> None:
        """Forget this file: before its seal (a failed run), or after it when the commit it preceded failed."""
        if self._handle is not None and not self._handle.closed:
            with suppress(OSError):  # what is still buffered cannot be written (a full disk): dropped with it
                self._handle.close()
        for path in (self.tmp, self.path):
            path.unlink(missing_ok=True)


class WriteLog:
    # Entries after the live generation's carried.jsonl that make the next live writer fold them.
    compact_at = 1000

    def __init__(self, index_dir: str | Path) -> None:
        self.dir = Path(index_dir) / WRITELOG_DIR

    def entry(self, generation_path: Path | None) -> LogFile:
        """A new entry for one commit, by the writer holding the lock; names sort in commit order:
        the clock, but always after the newest entry and after what the live generation covers
        (a clock stepped back must not hide an entry behind `through`)."""
        newest = max([*self.names()[-1:], _through(generation_path)], default="")
        stamp = max(time.time_ns(), int(newest[:20]) + 1 if newest[:20].isdigit() else 0)
        return LogFile(self.dir / f"{stamp:020d}-{os.getpid()}-{next(_counter):06d}.jsonl")

    def names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.dir) if n.endswith(".jsonl") and not n.startswith("."))
        except FileNotFoundError:
            return []

    def latest(self, generation_path: Path | None) -> tuple[dict[str, Where], str]:
        """Each slug's latest logged state (where to read it), and the last entry name covered."""
        found: dict[str, Where] = {}
        through = ""
        if generation_path is not None and (generation_path / CARRIED).is_file():
            through = _through(generation_path)
            lines = _lines(generation_path / CARRIED)
            next(lines, None)  # the header
            for offset, line in lines:
                found[_slug(line)] = Where(generation_path / CARRIED, offset)
        last = through
        for name in self.names():
            if name <= through:
                continue  # covered by the generation's carried.jsonl (left by a run killed after its switch)
            for offset, line in _lines(self.dir / name):
                found[_slug(line)] = Where(self.dir / name, offset)
            last = name
        return found, last

    @staticmethod
    def read(where: Where) -> dict[str, Any]:
        return orjson.loads(_raw(where))

    def carried(self, generation_path: Path, through: str) -> LogFile:
        """The carried.jsonl of a new generation, covering the entries up to `through`."""
        return LogFile(generation_path / CARRIED, header={"through": through})

    def compact(self, generation_path: Path | None) -> bool:
        """Fold the entries after the live generation's carried.jsonl into one file (the last state
        of each slug) once there are `compact_at` of them, so many small writes between rebuilds
        keep the directory small. Crash-safe: the folded file replaces the newest entry in one
        rename (it holds every later state, so reading it after the older ones changes nothing),
        then the older ones are removed. Call while holding the writer lock."""
        through = _through(generation_path)
        pending = [name for name in self.names() if name > through]
        if len(pending) < self.compact_at:
            return False
        found: dict[str, Where] = {}
        for name in pending:
            for offset, line in _lines(self.dir / name):
                found[_slug(line)] = Where(self.dir / name, offset)
        folded = LogFile(self.dir / pending[-1])
        try:
            for where in found.values():
                folded.raw(_raw(where))
            folded.seal(always=True)
        except OSError:
            with suppress(OSError):
                folded.tmp.unlink(missing_ok=True)
            return False  # no room to fold now (a full disk): the entries stay as they are
        for name in pending[:-1]:
            (self.dir / name).unlink(missing_ok=True)
        fsync_dir(self.dir)
        return True

    def remove_through(self, through: str) -> None:
        """Remove the entries a live generation's carried.jsonl covers."""
        removed = False
        for name in self.names():
            if name <= through:
                (self.dir / name).unlink(missing_ok=True)
                removed = True
        if removed:
            fsync_dir(self.dir)


def carried_count(generation_path: Path) -> int:
    """Writes a generation carries over from before its rebuild (its carried.jsonl, less the header)."""
    try:
        with open(generation_path / CARRIED, "rb") as handle:
            return max(sum(1 for _ in handle) - 1, 0)
    except OSError:
        return 0


def deleted_at(stored_updated_at: datetime | None) -> datetime:
    """A tombstone's time: now, or the deleted version's updated_at when that lies ahead of the clock,
    so that the very version taken down never counts as newer than its deletion."""
    now = datetime.now(UTC)
    return max(now, stored_updated_at) if stored_updated_at is not None else now


def _through(generation_path: Path | None) -> str:
    if generation_path is None:
        return ""
    try:
        with open(generation_path / CARRIED, "rb") as handle:
            return str(orjson.loads(handle.readline()).get("through", ""))
    except (OSError, ValueError):
        return ""


def _raw(where: Where) -> bytes:
    with open(where.path, "rb") as handle:
        handle.seek(where.offset)
        return handle.readline()


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as handle:
        offset = 0
        for line in handle:
            if line.strip():
                yield offset, line
            offset += len(line)


def _slug(line: bytes) -> str:
    return str(orjson.loads(line)["slug"])
