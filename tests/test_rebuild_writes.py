"""Nothing acknowledged is lost to a full rebuild: the write log against a real 2-worker server and the CLI.

A writer thread PUTs through a full CLI rebuild from an older file, deletions outlast rebuilds
from files holding the same or an older version, `reindex --exact` drops the writes and lists
them, the CLI waits its turn for the lock, and `scripts/serve-sample` keeps what was pushed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    CLI,
    REPO,
    REUTERS,
    SAMPLE,
    build_index,
    cli_env,
    free_port,
    live_slugs,
    read_jsonl,
    stored_by_slug,
    write_jsonl,
)
from test_writes import AUTH, KEY, Server, article, client, present, wait_for_empty_journal

from search_service.config import load_config
from search_service.index.indexer import Indexer
from search_service.index.store import IndexStore
from search_service.index.writelog import CARRIED, WriteLog
from search_service.ingest.sources import Item

RECORDS = 3000  # a rebuild long enough (a second or more) for writes to land before, during and after it


def now_iso(ahead_s: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=ahead_s)).isoformat()


def reindex(index_dir: Path, *args: str) -> subprocess.CompletedProcess:
    argv = [*CLI, "reindex", "--json", "--index-dir", str(index_dir), *args]
    return subprocess.run(argv, env=cli_env(), capture_output=True, text=True, timeout=600, check=False)


def carried_slugs(path: Path) -> list[str]:
    return [json.loads(line)["slug"] for line in path.read_text().splitlines()[1:]]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "older.jsonl", read_jsonl(REUTERS)[:RECORDS])


@pytest.fixture
def sample_server(tmp_path: Path) -> Iterator[Server]:
    running = Server(build_index(tmp_path / "index", [SAMPLE]).index_dir, tmp_path / "server.log").start()
    try:
        yield running
    finally:
        running.stop()


# == a CMS pushing through a nightly rebuild ====================================================


class Pusher(threading.Thread):
    """PUTs every ~30 ms: new articles, and newer versions of articles the rebuild's file holds."""

    def __init__(self, server: Server, updates: list[dict[str, Any]]) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.updates = updates
        self.stop = threading.Event()
        self.acknowledged: dict[str, str] = {}  # slug -> title of the last acknowledged version
        self.statuses: list[int] = []
        self.during: int = 0  # acknowledged while `rebuilding` was set
        self.rebuilding = threading.Event()

    def run(self) -> None:
        with client(self.server) as http:
            number = 0
            while not self.stop.is_set():
                if number % 2:
                    record = self.updates[number % len(self.updates)]
                    body = record | {"title": f"Update {number} of {record['slug']}", "updated_at": now_iso()}
                else:
                    body = article(f"pushed-{number}", title=f"Pushed {number}")
                response = http.put(f"/articles/{body['slug']}", json=body)
                self.statuses.append(response.status_code)
                if response.status_code in (200, 201, 202):
                    self.acknowledged[body["slug"]] = body["title"]
                    self.during += self.rebuilding.is_set()
                number += 1
                time.sleep(0.03)


def test_writes_before_during_and_after_a_full_rebuild_from_an_older_file_are_all_served(tmp_path: Path, corpus: Path):
    index_dir = build_index(tmp_path / "index", [corpus]).index_dir
    server = Server(index_dir, tmp_path / "server.log").start()
    pusher = Pusher(server, read_jsonl(corpus)[:50])
    try:
        pusher.start()
        time.sleep(1.0)
        before = len(pusher.acknowledged)
        pusher.rebuilding.set()
        rebuild = reindex(index_dir, str(corpus))
        pusher.rebuilding.clear()
        time.sleep(1.0)
        pusher.stop.set()
        pusher.join(timeout=60)

        assert rebuild.returncode == 0, rebuild.stderr
        assert set(pusher.statuses) <= {200, 201, 202}, sorted(set(pusher.statuses))
        assert pusher.during >= 3, f"only {pusher.during} writes acknowledged during the rebuild: it proves little"
        summary = json.loads(rebuild.stdout)
        # Every write committed before it took the lock (those before it started, at least) is carried over.
        assert before >= 3 and summary["carried"] >= before, (before, summary)
        wait_for_empty_journal(index_dir)
        time.sleep(0.5)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            served = {slug: http.get(f"/articles/{slug}") for slug in pusher.acknowledged}
        lost = {slug for slug, response in served.items() if response.status_code != 200}
        assert not lost, f"{len(lost)} of {len(served)} acknowledged articles missing: {sorted(lost)[:10]}"
        wrong = {s: r.json()["title"] for s, r in served.items() if r.json()["title"] != pusher.acknowledged[s]}
        assert not wrong, wrong
    finally:
        pusher.stop.set()
        server.stop()


# == deletions, --exact ==========================================================================


def test_a_deletion_outlasts_a_rebuild_from_an_older_version_and_yields_to_a_newer_one(
    sample_server: Server, tmp_path: Path
):
    records = read_jsonl(SAMPLE)
    taken_down = records[5]
    with client(sample_server) as http:
        assert http.delete(f"/articles/{taken_down['slug']}").status_code == 200

    same = reindex(sample_server.index_dir, str(SAMPLE))
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["carried"] == 1
    assert present(sample_server, [taken_down["slug"]]) == set()

    republished = taken_down | {"title": "Republished after review", "updated_at": now_iso(60)}
    newer = write_jsonl(tmp_path / "newer.jsonl", [*records[:5], republished, *records[6:]])
    result = reindex(sample_server.index_dir, str(newer))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["carried"], summary["superseded"]) == (0, 1), summary
    assert present(sample_server, [taken_down["slug"]]) == {taken_down["slug"]}
    assert httpx.get(f"{sample_server.url}/articles/{taken_down['slug']}").json()["title"] == republished["title"]
    # The log kept nothing of it: the file's newer version is what counts from now on.
    assert carried_slugs(IndexStore(sample_server.index_dir).current().path / CARRIED) == []


def test_an_update_over_http_outlasts_a_rebuild_from_an_older_file_but_not_from_a_newer_one(
    sample_server: Server, tmp_path: Path
):
    records = read_jsonl(SAMPLE)
    target = records[7]
    with client(sample_server) as http:
        body = target | {"title": "Corrected over HTTP", "updated_at": now_iso()}
        assert http.put(f"/articles/{target['slug']}", json=body).status_code == 200
    assert reindex(sample_server.index_dir, str(SAMPLE)).returncode == 0
    time.sleep(0.5)
    assert httpx.get(f"{sample_server.url}/articles/{target['slug']}").json()["title"] == "Corrected over HTTP"

    newest = target | {"title": "Corrected in the CMS export", "updated_at": now_iso(60)}
    export = write_jsonl(tmp_path / "export.jsonl", [r if r is not target else newest for r in records])
    summary = json.loads(reindex(sample_server.index_dir, str(export)).stdout)
    assert (summary["carried"], summary["superseded"]) == (0, 1), summary
    time.sleep(0.5)
    assert httpx.get(f"{sample_server.url}/articles/{target['slug']}").json()["title"] == newest["title"]


def test_reindex_exact_drops_the_writes_made_over_http_and_lists_them(sample_server: Server):
    taken_down = read_jsonl(SAMPLE)[2]["slug"]
    with client(sample_server) as http:
        assert http.put("/articles/exact-new", json=article("exact-new")).status_code == 201
        assert http.delete(f"/articles/{taken_down}").status_code == 200

    result = reindex(sample_server.index_dir, "--exact", str(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["dropped"] == 2
    assert "dropped write of exact-new" in result.stderr, result.stderr
    assert f"dropped deletion of {taken_down}" in result.stderr, result.stderr
    assert present(sample_server, ["exact-new", taken_down]) == {taken_down}
    # Dropped for good: the next plain rebuild has nothing left to carry.
    assert json.loads(reindex(sample_server.index_dir, str(SAMPLE)).stdout)["carried"] == 0


def test_the_plain_summary_counts_carried_and_superseded_writes(sample_index: Any):
    Indexer(sample_index.store, sample_index.config).upsert_records([Item("<r>", 1, article("summary-new"))])
    result = subprocess.run(
        [*CLI, "reindex", "--index-dir", str(sample_index.index_dir), str(SAMPLE)],
        env=cli_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "writes since the last rebuild: 1 carried over, 0 superseded by this input" in result.stdout


# == the log stays small =========================================================================


def test_the_write_log_keeps_one_line_per_slug_and_the_entries_a_rebuild_covers_are_removed(sample_index: Any):
    indexer = Indexer(sample_index.store, sample_index.config)
    for version in range(5):
        record = article("rewritten", title=f"Version {version}", updated_at=now_iso(version))
        indexer.upsert_records([Item("<r>", 1, record)])
    indexer.delete(["rewritten"])
    log = WriteLog(sample_index.index_dir)
    assert len(log.names()) == 6

    report = indexer.rebuild([str(SAMPLE)])
    assert (report.carried, report.superseded) == (0, 1)  # a deletion of what the input never held
    assert log.names() == []
    lines = (sample_index.store.current().path / CARRIED).read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["through"]  # only the header


def test_many_writes_between_rebuilds_are_folded_into_one_file_with_the_last_state_of_each_slug(
    sample_index: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(WriteLog, "compact_at", 4)
    indexer = Indexer(sample_index.store, sample_index.config)
    log = WriteLog(sample_index.index_dir)
    for version in range(6):
        for slug in ("folded-a", "folded-b"):
            record = article(slug, title=f"{slug} version {version}", updated_at=now_iso(version))
            indexer.upsert_records([Item("<r>", 1, record)])
        assert len(log.names()) < 4
    indexer.delete(["folded-b"])
    latest, _ = log.latest(sample_index.store.current().path)
    assert set(latest) == {"folded-a", "folded-b"}
    assert log.read(latest["folded-a"])["article"]["title"] == "folded-a version 5"
    assert "deleted_at" in log.read(latest["folded-b"])

    report = indexer.rebuild([str(SAMPLE)])
    assert (report.carried, report.superseded) == (1, 1)
    docs = stored_by_slug(sample_index.open(), sample_index.config)
    assert docs["folded-a"]["title"] == "folded-a version 5" and "folded-b" not in docs


def test_a_write_whose_commit_fails_is_not_carried_over(sample_index: Any, monkeypatch: pytest.MonkeyPatch):
    import tantivy

    def failing_commit(self: Any) -> None:
        raise ValueError("simulated: No space left on device")

    indexer = Indexer(sample_index.store, sample_index.config)
    with monkeypatch.context() as patch:
        patch.setattr(tantivy.IndexWriter, "commit", failing_commit)
        with pytest.raises(Exception, match="full"):
            indexer.upsert_records([Item("<r>", 1, article("never-acknowledged"))])
    assert WriteLog(sample_index.index_dir).names() == []
    indexer.rebuild([str(SAMPLE)])
    assert "never-acknowledged" not in live_slugs(sample_index.index_dir)


# == the lock, shared fairly =====================================================================


def test_a_cli_rebuild_waits_for_the_lock_says_so_and_goes_before_later_http_writes(sample_server: Server):
    store = IndexStore(sample_server.index_dir)
    holder = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with store.writer_lock():
            holder.set()
            release.wait(30)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert holder.wait(10)
    rebuild = subprocess.Popen(
        [*CLI, "reindex", "--json", "--index-dir", str(sample_server.index_dir), str(SAMPLE)],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not store.someone_waiting() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.someone_waiting(), "the rebuild never announced that it waits"
    with client(sample_server) as http:
        started = time.monotonic()
        queued = http.put("/articles/while-waiting", json=article("while-waiting"))
        took = time.monotonic() - started
    assert queued.status_code == 202 and took < 1.5, (queued.status_code, took)  # journaled, not waiting
    release.set()
    output, errors = rebuild.communicate(timeout=120)
    assert rebuild.returncode == 0, errors
    assert "waiting for the writer lock" in errors, errors
    assert json.loads(output)["journal"] == 1
    assert present(sample_server, ["while-waiting"]) == {"while-waiting"}


def test_a_cli_rebuild_still_busy_after_its_wait_exits_4_saying_how_long_it_waited(sample_index: Any):
    with sample_index.store.writer_lock():
        result = subprocess.run(
            [*CLI, "reindex", "--lock-wait", "1", "--index-dir", str(sample_index.index_dir), str(SAMPLE)],
            env=cli_env(),
            capture_output=True,
            text=True,
            check=False,
        )
    assert result.returncode == 4, result.stderr
    assert "after waiting 1 s" in result.stderr and "waiting for the writer lock" in result.stderr, result.stderr


def test_a_cli_delete_waits_for_the_lock_too(sample_index: Any):
    slug = read_jsonl(SAMPLE)[0]["slug"]
    with sample_index.store.writer_lock():
        delete = subprocess.Popen(
            [*CLI, "delete", "--index-dir", str(sample_index.index_dir), slug],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)
        assert delete.poll() is None, delete.communicate()  # still waiting, not refused
    _, errors = delete.communicate(timeout=60)
    assert delete.returncode == 0, errors
    assert slug not in live_slugs(sample_index.index_dir)


# == scripts/serve-sample ========================================================================


def _serve_sample(index_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = cli_env() | {"SEARCH_INDEX_DIR": str(index_dir), "SEARCH_ADMIN_KEY": KEY}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [str(REPO / "scripts" / "serve-sample"), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + 300  # the first run may set up .venv
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(log.read_text()[-3000:])


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def _assert_serves_beside_the_sample(index_dir: Path, port: int, log: Path, slug: str) -> None:
    """serve-sample, started over `index_dir`, serves the article `slug` beside the 40 sample ones."""
    process = _serve_sample(index_dir, port, log)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/articles/{slug}").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/ready").json()["documents"] == 41
    finally:
        _stop(process)


def test_restarting_serve_sample_keeps_a_pushed_article_and_says_where_its_index_is(tmp_path: Path):
    index_dir, port, log = tmp_path / "sample-index", free_port(), tmp_path / "serve-sample.log"
    process = _serve_sample(index_dir, port, log)
    try:
        response = httpx.put(
            f"http://127.0.0.1:{port}/articles/pushed-story", json=article("pushed-story"), headers=AUTH
        )
        assert response.status_code == 201, response.text
    finally:
        _stop(process)
    _assert_serves_beside_the_sample(index_dir, port, log, "pushed-story")
    assert f"serving the index in {index_dir}" in log.read_text()


def test_serve_sample_migrates_an_index_an_older_version_built_keeping_pushed_articles(tmp_path: Path):
    """An index of another layout (here: another config's fingerprint, as an older version gives)
    is refused by this version's server; serve-sample migrates it instead of serving that refusal."""
    index_dir, port, log = tmp_path / "old-index", free_port(), tmp_path / "serve-sample.log"
    older = tmp_path / "older.toml"
    text = Path(load_config().path).read_text()
    older.write_text(text.replace('"stemmer:english"]', '"stemmer:english", "remove_long:30"]', 1))
    pushed = tmp_path / "pushed.jsonl"
    pushed.write_text(json.dumps(article("pushed-before-upgrade")) + "\n")
    for args in ([str(SAMPLE)], ["--incremental", str(pushed)]):
        command = [*CLI, "reindex", "--config", str(older), "--index-dir", str(index_dir), *args]
        done = subprocess.run(command, env=cli_env(), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    refused = subprocess.run([*CLI, "stats", "--index-dir", str(index_dir)], env=cli_env(), capture_output=True)
    assert refused.returncode == 5
    _assert_serves_beside_the_sample(index_dir, port, log, "pushed-before-upgrade")
    assert "migrating it" in log.read_text()


def test_the_cli_says_where_it_looked_for_an_index(tmp_path: Path):
    result = subprocess.run(
        [*CLI, "stats", "--index-dir", str(tmp_path / "nowhere")], env=cli_env(), capture_output=True, text=True
    )
    assert result.returncode == 5
    assert str(tmp_path / "nowhere") in result.stderr and "SEARCH_INDEX_DIR" in result.stderr, result.stderr


def test_an_incremental_run_under_another_config_keeps_the_writes_carried_so_far(sample_index: Any, tmp_path: Path):
    Indexer(sample_index.store, sample_index.config).upsert_records([Item("<r>", 1, article("before-migration"))])
    Indexer(sample_index.store, sample_index.config).rebuild([str(SAMPLE)])
    carried = sample_index.store.current().path / CARRIED
    assert carried_slugs(carried) == ["before-migration"]
    other = tmp_path / "other.toml"
    text = Path(sample_index.config.path).read_text()
    other.write_text(text.replace('"stemmer:english"]', '"stemmer:english", "remove_long:30"]', 1))
    config = load_config(other)
    assert config.fingerprint != sample_index.config.fingerprint

    Indexer(sample_index.store, config).upsert([str(SAMPLE)])  # migrates: a new generation by `config`

    migrated = sample_index.store.current()
    assert migrated.fingerprint == config.fingerprint
    assert carried_slugs(migrated.path / CARRIED) == ["before-migration"]
    assert json.dumps(Indexer(sample_index.store, config).rebuild([str(SAMPLE)]).carried) == "1"
    assert "before-migration" in live_slugs(sample_index.index_dir, config)
