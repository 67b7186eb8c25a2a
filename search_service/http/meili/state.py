"""What the Meilisearch routes share while the app runs: the task table, its runner, the schema view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from search_service.http.meili.runner import TaskRunner
from search_service.http.meili.search import Schema
from search_service.http.meili.tasks import Task, TaskStore
from search_service.search.engine import SearchEngine
from search_service.settings import Settings


def tasks_path(settings: Settings) -> Path:
    index_dir = settings.index_dir.resolve()
    return settings.meili_tasks_db or index_dir.parent / f"{index_dir.name}-tasks.sqlite3"


@dataclass
class MeiliState:
    engine: SearchEngine
    schema: Schema
    tasks: TaskStore
    runner: TaskRunner

    def enqueue(self, type_: str, payload: dict[str, Any], details: dict[str, Any]) -> Task:
        task = self.tasks.enqueue(type_, payload, details)
        self.runner.notify()
        return task


def file_time(path: Path) -> str | None:
    try:
        stamp = path.stat().st_mtime
    except OSError:
        return None
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
