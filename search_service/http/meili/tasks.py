"""Meilisearch's tasks, durable in a SQLite table beside the index, shared by every worker.

A write is a row (its documents in `payload`) committed with synchronous=FULL before the 202,
so a kill -9 after the answer loses neither the task nor its documents. Workers claim the oldest
enqueued task one at a time (a write transaction decides), so tasks run in order, as
Meilisearch's do. A task left `processing` by a process that is gone is enqueued again on the
next claim: writes are upserts and deletions by slug, so running one again is harmless.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from search_service.errors import storage_error

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    uid INTEGER PRIMARY KEY,
    index_uid TEXT,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    payload BLOB NOT NULL,
    details TEXT NOT NULL,
    error TEXT,
    enqueued_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, uid);
"""
STATUSES = ("enqueued", "processing", "succeeded", "failed", "canceled")


def now_text() -> str:
    """Meilisearch's date format: RFC 3339 in UTC with microseconds (YYYY-MM-DDTHH:MM:SS.ffffffZ)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def process_id(pid: int | None = None) -> str:
    """This process, told apart from a later one given the same pid (its start time, on Linux)."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_time(pid)}"


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[19]


def _alive(owner: str | None) -> bool:
    if not owner:
        return False
    pid_text, _, started = owner.partition(":")
    try:
        os.kill(int(pid_text), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return process_id(int(pid_text)) == owner or not started


@dataclass(frozen=True)
class Task:
    uid: int
    index_uid: str | None
    type: str
    status: str
    payload: dict[str, Any]
    details: dict[str, Any]
    error: dict[str, Any] | None
    enqueued_at: str
    started_at: str | None
    finished_at: str | None

    def summary(self) -> dict[str, Any]:
        """What a write answers with its 202."""
        return {
            "taskUid": self.uid,
            "indexUid": self.index_uid,
            "status": self.status,
            "type": self.type,
            "enqueuedAt": self.enqueued_at,
        }

    def view(self) -> dict[str, Any]:
        """Meilisearch's task object."""
        duration = None
        if self.started_at and self.finished_at:
            seconds = (_parse(self.finished_at) - _parse(self.started_at)).total_seconds()
            duration = f"PT{seconds:.6f}S"
        return {
            "uid": self.uid,
            "batchUid": self.uid if self.started_at else None,
            "indexUid": self.index_uid,
            "status": self.status,
            "type": self.type,
            "canceledBy": None,
            "details": self.details,
            "error": self.error,
            "duration": duration,
            "enqueuedAt": self.enqueued_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }


class TaskStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        # Created on first use, not here: a worker starting on a full or failing disk still serves
        # searches, and each task call answers with the storage error until the disk is back.
        self._ready = False

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
        finally:
            db.close()
        self._ready = True

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if not self._ready:
                self._create()
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (sqlite3.OperationalError, OSError) as exc:
            raise storage_error(f"cannot open the task table {self.path}", self.path.parent, exc) from exc
        try:
            # FULL: a committed task (and its documents) survives a crash of the process or machine.
            db.execute("PRAGMA synchronous=FULL")
            yield db
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise
            raise storage_error(f"cannot write the task table {self.path}", self.path.parent, exc) from exc
        finally:
            db.close()

    def enqueue(self, type_: str, payload: dict[str, Any], details: dict[str, Any]) -> Task:
        enqueued = now_text()
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO tasks (index_uid, type, status, payload, details, enqueued_at) VALUES (?, ?, ?, ?, ?, ?)",
                ("articles", type_, "enqueued", orjson.dumps(payload), orjson.dumps(details).decode(), enqueued),
            )
            uid = cursor.lastrowid
        return Task(uid, "articles", type_, "enqueued", payload, details, None, enqueued, None, None)

    def get(self, uid: int) -> Task | None:
        with self._connect() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE uid = ?", (uid,)).fetchone()
        return _task(row) if row else None

    def claim(self) -> Task | None:
        """The oldest enqueued task, now `processing` and owned by this process; None when there is
        none, or another live process is running one (tasks run one at a time, in order)."""
        if not self.pending():  # the common case, answered without taking the write lock
            return None
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for uid, owner in db.execute("SELECT uid, owner FROM tasks WHERE status = 'processing'").fetchall():
                    if _alive(owner):
                        db.execute("ROLLBACK")
                        return None
                    db.execute("UPDATE tasks SET status = 'enqueued', owner = NULL WHERE uid = ?", (uid,))
                row = db.execute(
                    f"SELECT {_COLUMNS} FROM tasks WHERE status = 'enqueued' ORDER BY uid LIMIT 1"
                ).fetchone()
                if row is None:
                    db.execute("COMMIT")
                    return None
                started = now_text()
                db.execute(
                    "UPDATE tasks SET status = 'processing', started_at = ?, owner = ? WHERE uid = ?",
                    (started, process_id(), row[0]),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        task = _task(row)
        return Task(**{**task.__dict__, "status": "processing", "started_at": started})

    def finish(self, uid: int, details: dict[str, Any], error: dict[str, Any] | None) -> None:
        status = "failed" if error else "succeeded"
        with self._connect() as db:
            db.execute(
                "UPDATE tasks SET status = ?, details = ?, error = ?, finished_at = ?, payload = ? WHERE uid = ?",
                (status, orjson.dumps(details).decode(), orjson.dumps(error).decode() if error else None,
                 now_text(), b"{}", uid),
            )  # fmt: skip

    def pending(self) -> bool:
        with self._connect() as db:
            return (
                db.execute("SELECT 1 FROM tasks WHERE status IN ('enqueued', 'processing') LIMIT 1").fetchone()
                is not None
            )

    def list(
        self, limit: int, start: int | None, statuses: list[str], types: list[str], uids: list[int]
    ) -> tuple[list[Task], int, int | None]:
        """Newest first from `start`; also the total matching and the `next` uid."""
        where, args = ["1 = 1"], []
        for column, values in (("status", statuses), ("type", types), ("uid", uids)):
            if values:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                args.extend(values)
        condition = " AND ".join(where)
        with self._connect() as db:
            total = db.execute(f"SELECT count(*) FROM tasks WHERE {condition}", args).fetchone()[0]
            page_where = condition + (" AND uid <= ?" if start is not None else "")
            page_args = [*args, start] if start is not None else args
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM tasks WHERE {page_where} ORDER BY uid DESC LIMIT ?", [*page_args, limit + 1]
            ).fetchall()
        tasks = [_task(r) for r in rows[:limit]]
        following = rows[limit][0] if len(rows) > limit else None
        return tasks, total, following


_COLUMNS = "uid, index_uid, type, status, payload, details, error, enqueued_at, started_at, finished_at"


def _task(row: tuple) -> Task:
    uid, index_uid, type_, status, payload, details, error, enqueued, started, finished = row
    return Task(
        uid, index_uid, type_, status, orjson.loads(payload), orjson.loads(details),
        orjson.loads(error) if error else None, enqueued, started, finished,
    )  # fmt: skip
