"""Runs the Meilisearch API's tasks: each worker claims the oldest enqueued one and applies it
through the same write path as PUT /articles (`ArticleWriter`: validation, staleness, the
journal during rebuilds, the writer lock, durable commits).

A task becomes `succeeded` only once every worker can find its documents: after the commit (or,
when a rebuild held the lock, after the journal entry is applied) the runner waits out the
readers' reload interval, within which every worker's reader picks up a new commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import anyio
import tantivy

from search_service.editorial.store import EditorialStore
from search_service.errors import IndexLockedError, ServiceError
from search_service.http.meili.errors import error_object
from search_service.http.meili.filter_parser import parse_filter_param
from search_service.http.meili.filter_query import FilterBuilder
from search_service.http.meili.tasks import Task, TaskStore
from search_service.http.routes.writes import ArticleWriter, RejectedBatch
from search_service.ingest.sources import Item
from search_service.search.engine import SearchEngine

log = logging.getLogger("search_service.meili")
SOURCE = "<meilisearch task>"
# How long the runner waits before trying the task table again after a storage error.
STORAGE_RETRY_S = 5.0


@dataclass
class Outcome:
    details: dict[str, Any]
    error: dict[str, Any] | None = None
    queued: bool = False  # journaled behind a rebuild: succeeded once the journal is applied


class TaskRunner:
    def __init__(self, store: TaskStore, writer: ArticleWriter, engine: SearchEngine, poll_s: float) -> None:
        self.store = store
        self.writer = writer
        self.engine = engine
        self.poll_s = poll_s
        self.wake = anyio.Event()
        self._storage_failed = False

    def notify(self) -> None:
        """A task was enqueued in this worker: look now rather than at the next poll."""
        self.wake.set()

    async def run_forever(self) -> None:
        while True:
            try:
                ran = await self.run_one()
            except ServiceError as exc:  # the task table's disk is full or failing: wait, say so once
                if not self._storage_failed:
                    log.error("meilisearch tasks wait for storage: %s", exc.message)
                self._storage_failed = True
                with anyio.move_on_after(STORAGE_RETRY_S):
                    await anyio.sleep_forever()
                continue
            except Exception:  # a bug: keep the loop (and the durable tasks) alive, tell the operator
                log.exception("meilisearch task runner failed")
                ran = False
            self._storage_failed = False
            if not ran:
                with anyio.move_on_after(self.poll_s):
                    await self.wake.wait()
                self.wake = anyio.Event()

    async def run_one(self) -> bool:
        task = await anyio.to_thread.run_sync(self.store.claim)
        if task is None:
            return False
        try:
            outcome = await anyio.to_thread.run_sync(self.apply, task)
        except ServiceError as exc:
            outcome = Outcome(task.details, error_object(exc.message, "internal", "internal"))
        if outcome.error is None:
            await self._visible(outcome.queued)
        await anyio.to_thread.run_sync(self.store.finish, task.uid, outcome.details, outcome.error)
        return True

    async def _visible(self, queued: bool) -> None:
        while queued and self.writer.journal.names():
            try:
                await anyio.to_thread.run_sync(self.writer.apply_journal)
            except IndexLockedError:
                await anyio.sleep(self.poll_s)
            queued = bool(self.writer.journal.names())
        await anyio.sleep(self.engine.reader.interval * 1.5)

    # -- applying one task (in a worker thread) ----------------------------------------------------

    def apply(self, task: Task) -> Outcome:
        payload = task.payload
        if task.type == "documentAdditionOrUpdate":
            return self._add(task, payload)
        if task.type in ("documentDeletion", "indexDeletion"):
            return self._delete(task, payload)
        if task.type == "settingsUpdate":
            return self._settings(task, payload)
        if "fail" in payload:  # refused when enqueued (index creation): Meilisearch reports it in the task
            return Outcome(task.details, error_object(payload["fail"]["message"], payload["fail"]["code"]))
        return Outcome(task.details)

    def _add(self, task: Task, payload: dict[str, Any]) -> Outcome:
        documents = payload["documents"]
        details = {"receivedDocuments": len(documents), "indexedDocuments": 0}
        if payload.get("merge"):
            documents = [self._merged(doc) for doc in documents]
        items = [Item(SOURCE, index, doc) for index, doc in enumerate(documents)]
        try:
            run = self.writer.upsert("meili_documents", items, False, 0)
        except RejectedBatch as exc:
            reasons = "; ".join(f"document {r.line} ({r.slug or 'no slug'}): {r.reason}" for r in exc.rejects[:20])
            message = (
                f"{len(exc.rejects)} document(s) do not fit the article import format, nothing was stored: {reasons}"
            )
            return Outcome(details, error_object(message, "invalid_document_fields"))
        # Unchanged ones are in the index as sent (a task run again after a crash finds them so).
        details["indexedDocuments"] = run.queued or run.report.indexed + run.report.unchanged
        return Outcome(details, queued=bool(run.queued))

    def _merged(self, document: Any) -> Any:
        """A partial update (PUT): the stored article's attributes under the given ones."""
        if not isinstance(document, dict) or not isinstance(document.get("slug"), str):
            return document
        stored = self.engine.article(document["slug"])
        return document if stored is None else {**stored, **document}

    def _delete(self, task: Task, payload: dict[str, Any]) -> Outcome:
        details = dict(task.details)
        ids = payload.get("ids")
        slugs = [str(s) for s in ids] if ids is not None else self._matching(payload.get("filter"))
        run = self.writer.delete("meili_delete", slugs) if slugs else None
        details["deletedDocuments"] = (run.queued or run.report.deleted) if run else 0
        return Outcome(details, queued=bool(run and run.queued))

    def _matching(self, filter_value: Any) -> list[str]:
        """Every slug the filter matches (all articles without one)."""
        searcher = self.engine.reader.searcher()
        node = parse_filter_param(filter_value)
        query = FilterBuilder(self.engine.config, self.engine.schema).query(node) if node else tantivy.Query.all_query()
        key = self.engine.config.key_field.name
        total = searcher.num_docs
        if not total:
            return []
        hits = searcher.search(query, total, count=False).hits
        return [searcher.doc(address).get_first(key) for _, address in hits]

    def _settings(self, task: Task, payload: dict[str, Any]) -> Outcome:
        if "synonyms" in payload:
            editorial = self.engine.editorial
            store: EditorialStore = editorial.store
            store.replace("synonyms", payload["synonyms"])
            editorial.synonyms.refresh()
        return Outcome(task.details)
