"""Meilisearch tasks on a real `search-service serve --workers 2`: a task is `succeeded` only when
both workers find its documents, and a kill -9 right after the 202 loses neither the task nor
its documents (the restarted server runs it to `succeeded`)."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import httpx
import meilisearch
from conftest import SAMPLE, ServeProcess, build_index, load_seed

from search_service.http.meili.tasks import TaskStore

KEY = "tasks-master-key"


def articles(prefix: str, count: int) -> list[dict]:
    return [load_seed() | {"slug": f"{prefix}-{i}", "title": f"Platypus census {i}"} for i in range(count)]


def found_by_fresh_connections(url: str, slugs: list[str], tries: int = 12) -> set[int]:
    """How many of the slugs each of `tries` new connections (either worker) finds."""
    counts = set()
    for _ in range(tries):
        response = httpx.post(
            url + "/meili/indexes/articles/search",
            json={"filter": f"slug IN [{', '.join(slugs)}]", "limit": 0},
            headers={"Connection": "close", "X-Request-ID": uuid.uuid4().hex[:16]},
            timeout=30,
        )
        counts.add(response.json()["estimatedTotalHits"])
    return counts


def test_kill_9_right_after_the_202_loses_no_task_and_no_document(tmp_path: Path):
    index_dir = build_index(tmp_path / "index", [SAMPLE]).index_dir
    server = ServeProcess(index_dir, tmp_path / "server.log", SEARCH_ADMIN_KEY=KEY).start()
    try:
        client = meilisearch.Client(server.url + "/meili", KEY)
        first = articles("visible", 5)
        task = client.wait_for_task(client.index("articles").add_documents(first).task_uid, timeout_in_ms=30_000)
        assert task.status == "succeeded"
        # Succeeded means every worker finds them, at once.
        assert found_by_fresh_connections(server.url, [a["slug"] for a in first]) == {5}

        batch = articles("killed", 200)
        info = client.index("articles").add_documents(batch)
        server.kill9()
    finally:
        server.stop()
    restarted = ServeProcess(index_dir, tmp_path / "server.log", SEARCH_ADMIN_KEY=KEY).start()
    try:
        client = meilisearch.Client(restarted.url + "/meili", KEY)
        done = client.wait_for_task(info.task_uid, timeout_in_ms=60_000)
        assert done.status == "succeeded", done.error
        assert done.details == {"receivedDocuments": 200, "indexedDocuments": 200}
        assert found_by_fresh_connections(restarted.url, [a["slug"] for a in batch]) == {200}
    finally:
        restarted.stop()


def test_tasks_run_one_at_a_time_in_order_and_a_dead_owner_s_task_runs_again(tmp_path: Path):
    store = TaskStore(tmp_path / "tasks.sqlite3")
    first = store.enqueue("documentDeletion", {"ids": ["a"]}, {"providedIds": 1})
    second = store.enqueue("documentDeletion", {"ids": ["b"]}, {"providedIds": 1})
    claimed = store.claim()
    assert claimed.uid == first.uid and claimed.status == "processing" and claimed.payload == {"ids": ["a"]}
    assert store.claim() is None  # this (live) process is running one
    store.finish(first.uid, {"providedIds": 1, "deletedDocuments": 1}, None)
    assert store.get(first.uid).view()["status"] == "succeeded"
    assert store.claim().uid == second.uid
    # The process running it dies (a pid that is not running): the next claim takes it again.
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE tasks SET owner = '999999999:1' WHERE uid = ?", (second.uid,))
    again = TaskStore(store.path).claim()
    assert again.uid == second.uid and again.payload == {"ids": ["b"]}
    tasks, total, following = store.list(10, None, ["processing"], [], [])
    assert [t.uid for t in tasks] == [second.uid] and total == 1 and following is None
