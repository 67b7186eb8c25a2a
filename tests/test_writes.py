"""The write API against a real `search-service serve --workers 2` process over a real index.

Round trips, rejects with the CLI's reasons, staleness, the error shapes, visibility on both
workers, kill -9 of the server (after an acknowledged batch, and in the middle of a stream of
writes), and writes that arrive while a full CLI rebuild holds the writer lock.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import BAD, CLI, REUTERS, SAMPLE, ServeProcess, build_index, cli_env, live_slugs, load_seed, read_jsonl

from search_service.config import load_config
from search_service.index.indexer import Indexer
from search_service.index.report import Hooks, Reject
from search_service.index.store import IndexStore
from search_service.settings import Settings

KEY = "test-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
NDJSON = {"Content-Type": "application/x-ndjson"}
MAX_WRITE_MB = 8
MAX_WRITE_RECORDS = 500
JSON_H = {"Content-Type": "application/json"}


class Server(ServeProcess):
    """`search-service serve --workers 2` with the write API's key and limits of these tests."""

    def __init__(self, index_dir: Path, log_path: Path, **env: str) -> None:
        env = {"SEARCH_ADMIN_KEY": KEY, "SEARCH_MAX_WRITE_MB": str(MAX_WRITE_MB)} | env
        env["SEARCH_MAX_WRITE_RECORDS"] = env.get("SEARCH_MAX_WRITE_RECORDS", str(MAX_WRITE_RECORDS))
        super().__init__(index_dir, log_path, **env)


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return build_index(tmp_path / "index", [SAMPLE]).index_dir


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that only add articles of their own (every slug is used once)."""
    work = tmp_path_factory.mktemp("write-server")
    running = Server(build_index(work / "index", [SAMPLE]).index_dir, work / "server.log").start()
    try:
        yield running
    finally:
        running.stop()


def metrics(server: Server) -> dict[str, float]:
    out = {}
    for line in httpx.get(server.url + "/metrics", timeout=30).text.splitlines():
        if line.startswith("search_write"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=AUTH, timeout=30)


def fresh_get(server: Server, path: str) -> tuple[httpx.Response, str]:
    """A GET on a new connection (so either worker may take it), tagged with a request id."""
    request_id = uuid.uuid4().hex[:16]
    response = httpx.get(server.url + path, headers={"X-Request-ID": request_id, "Connection": "close"}, timeout=30)
    return response, request_id


def wait_for_empty_journal(index_dir: Path, deadline_s: float = 15.0) -> None:
    """Queued writes left by a kill are applied by the restarted server's workers."""
    deadline = time.monotonic() + deadline_s
    while list((index_dir / "journal").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the workers' readers follow the commit that applied them


def article(slug: str, **changes: Any) -> dict[str, Any]:
    return load_seed() | {"slug": slug} | changes


def present(server: Server, slugs: list[str]) -> set[str]:
    """The slugs a new connection finds. It may reach the worker that did not take the write, whose
    reader looks for new commits every SEARCH_RELOAD_INTERVAL_S (0.25 s), as the README says. Without
    the wait, requests fast enough to all land inside that interval (they are, since FastQueryRoute)
    find the other worker's reader one commit behind."""
    time.sleep(4 * Settings.model_fields["reload_interval_s"].default)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        return {slug for slug in slugs if http.get(f"/articles/{slug}").status_code == 200}


# == round trips ================================================================================


def test_put_post_and_delete_round_trip(server: Server):
    before = metrics(server)
    with client(server) as http:
        http.event_hooks["request"] = [
            lambda request: request.headers.update({"X-Request-ID": f"rt-{uuid.uuid4().hex}"})
        ]
        created = http.put("/articles/write-one", json=article("write-one", title="Quokkas take over the newsroom"))
        again = http.put("/articles/write-one", json=article("write-one", title="Quokkas take over the newsroom"))
        no_slug = {k: v for k, v in article("write-two").items() if k != "slug"}
        by_path = http.put("/articles/write-two", json=no_slug)
        stored = http.get("/articles/write-one").json()
        as_array = http.post("/articles", json=[article(f"batch-{i}") for i in range(3)])
        lines = "".join(json.dumps(article(f"batch-{i}", title=f"Updated {i}")) + "\n" for i in range(2))
        as_lines = http.post("/articles", content=lines, headers=NDJSON)
        deleted = http.delete("/articles/write-one")
        deleted_again = http.delete("/articles/write-one")
        many = http.post("/articles/delete", json={"slugs": ["batch-0", "batch-1", "never-was"]})
        found = http.get("/search", params={"q": "quokkas", "facets": ""}).json()

    assert (created.status_code, created.json()) == (201, {"slug": "write-one", "result": "created"})
    assert (again.status_code, again.json()["result"]) == (200, "unchanged")
    assert (by_path.status_code, by_path.json()["result"]) == (201, "created")
    assert stored["title"] == "Quokkas take over the newsroom"
    assert stored["body_md"] == load_seed()["body_md"]
    assert as_array.status_code == 200
    assert as_array.json() == {
        "read": 3, "indexed": 3, "created": 3, "updated": 0, "unchanged": 0, "stale": 0, "queued": 0, "rejected": [],
    }  # fmt: skip
    assert as_lines.json() | {"rejected": None} == {
        "read": 2, "indexed": 2, "created": 0, "updated": 2, "unchanged": 0, "stale": 0, "queued": 0, "rejected": None,
    }  # fmt: skip
    assert (deleted.status_code, deleted.json()) == (200, {"slug": "write-one", "result": "deleted"})
    assert deleted_again.status_code == 404
    assert deleted_again.json()["error"]["code"] == "not_found"
    assert many.json() == {"read": 3, "deleted": 2, "queued": 0, "missing": ["never-was"]}
    assert found["total"] == 0
    assert present(server, ["write-one", "write-two", "batch-0", "batch-1", "batch-2"]) == {"write-two", "batch-2"}

    writes = [w for w in server.log_entries("write") if w["request_id"].startswith("rt-")]
    assert [w["op"] for w in writes] == ["put", "put", "put", "batch", "batch", "delete", "delete", "delete_batch"]
    assert writes[3] | {"took_ms": 0, "request_id": 0, "pid": 0, "ts": 0} == {
        "ts": 0, "level": "info", "msg": "write", "pid": 0, "request_id": 0, "op": "batch", "status": 200,
        "outcome": "committed", "read": 3, "created": 3, "updated": 0, "unchanged": 0, "stale": 0, "rejected": 0,
        "deleted": 0, "missing": 0, "queued": 0, "journal": 0, "took_ms": 0,
    }  # fmt: skip
    assert "Quokkas" not in json.dumps(writes)  # counts, never article text

    after = metrics(server)
    grown = {name: value - before.get(name, 0.0) for name, value in after.items()}
    assert grown['search_write_records_total{result="created"}'] == 5
    assert grown['search_write_records_total{result="missing"}'] == 2
    assert grown['search_write_batches_total{op="batch",outcome="committed"}'] == 2
    assert grown['search_write_commit_seconds_count{op="put"}'] == 3
    assert after["search_write_journal_pending"] == 0


def test_batch_rejects_carry_the_cli_reasons_and_the_valid_records_go_in(server: Server, tmp_path: Path):
    cli_rejects: list[Reject] = []
    expected = Indexer(IndexStore(tmp_path / "cli-index"), load_config(), hooks=Hooks(on_reject=cli_rejects.append))
    cli_report = expected.rebuild([str(BAD)])
    with client(server) as http:
        response = http.post("/articles", content=BAD.read_bytes(), headers=NDJSON)
    body = response.json()
    assert response.status_code == 200, response.text
    assert body["rejected"] == [{"line": r.line, "slug": r.slug, "reason": r.reason} for r in cli_rejects]
    assert len(body["rejected"]) == cli_report.rejected > 10
    assert body["created"] + body["updated"] == body["indexed"] == cli_report.indexed
    accepted = live_slugs(tmp_path / "cli-index")
    assert len(accepted) == cli_report.indexed
    assert present(server, sorted(accepted)) == accepted


def test_an_older_update_is_skipped_as_stale_unless_forced(server: Server):
    newer = article("stale-check", title="Newer headline", updated_at="2026-06-02T10:00:00+00:00")
    older = article("stale-check", title="Older headline", updated_at="2026-06-01T10:00:00+00:00")
    with client(server) as http:
        http.put("/articles/stale-check", json=newer)
        stale = http.put("/articles/stale-check", json=older)
        kept = http.get("/articles/stale-check").json()["title"]
        batch = http.post("/articles", json=[older, article("fresh-one")])
        forced = http.put("/articles/stale-check", params={"force": "true"}, json=older)
        now = http.get("/articles/stale-check").json()["title"]
    assert (stale.status_code, stale.json()["result"]) == (200, "stale")
    assert kept == "Newer headline"
    assert (batch.json()["stale"], batch.json()["created"]) == (1, 1)
    assert forced.json()["result"] == "updated"
    assert now == "Older headline"


# == errors =====================================================================================


def test_every_refused_write_is_counted_and_logged_once_with_its_error_code(server: Server):
    """A refusal is counted in search_write_batches_total under the error code it answered with,
    and logged once as a write: never as committed, never not at all."""
    seed = article("refusal-check")
    put, batch = "/articles/refusal-check", "/articles"
    text, keyless = {"Content-Type": "text/plain"}, {"Authorization": ""}
    strict = {"params": {"max_rejects": 0}, "json": [1]}
    refusals = {
        # name: (op, status, outcome, method, path, headers, request keyword arguments)
        "invalid": ("put", 422, "invalid_article", "PUT", put, {}, {"json": seed | {"title": ""}}),
        "other slug": ("put", 422, "invalid_article", "PUT", put, {}, {"json": seed | {"slug": "x"}}),
        "no key": ("put", 401, "unauthorized", "PUT", put, keyless, {"json": seed}),
        "malformed": ("put", 400, "invalid_json", "PUT", put, JSON_H, {"content": b"{"}),
        "text": ("put", 415, "unsupported_media_type", "PUT", put, text, {"content": b"{}"}),
        "max rejects": ("batch", 422, "too_many_rejects", "POST", batch, {}, strict),
        "bad parameter": ("batch", 422, "invalid_parameter", "POST", batch, {}, {"params": {"max_rejects": -1}}),
        "too many": ("batch", 413, "payload_too_large", "POST", batch, {}, {"json": [{}] * (MAX_WRITE_RECORDS + 1)}),
        "unknown slug": ("delete", 404, "not_found", "DELETE", "/articles/never-was-here", {}, {}),
        "bad slugs": ("delete_batch", 422, "invalid_article", "POST", "/articles/delete", {}, {"json": {"slugs": [1]}}),
    }  # fmt: skip
    before = metrics(server)
    ids = {}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for name, (_, status, outcome, method, path, headers, kwargs) in refusals.items():
            ids[name] = f"refusal-{uuid.uuid4().hex[:12]}"
            sent = {**AUTH, **headers, "X-Request-ID": ids[name]}
            response = http.request(method, path, headers={k: v for k, v in sent.items() if v}, **kwargs)
            assert response.status_code == status, (name, response.text)
            assert response.json()["error"]["code"] == outcome, (name, response.text)
    after = metrics(server)
    grown = {name: value - before.get(name, 0.0) for name, value in after.items()}
    expected: dict[str, int] = {}
    for op, _, outcome, *_ in refusals.values():
        key = f'search_write_batches_total{{op="{op}",outcome="{outcome}"}}'
        expected[key] = expected.get(key, 0) + 1
    batches = {k: v for k, v in grown.items() if k.startswith("search_write_batches_total") and v}
    assert batches == expected
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        logged = [w for w in server.log_entries("write") if w["request_id"] in ids.values()]
        if len(logged) >= len(ids):
            break
        time.sleep(0.1)
    by_id = {w["request_id"]: w for w in logged}
    assert len(logged) == len(by_id) == len(ids)
    for name, (op, status, outcome, *_) in refusals.items():
        entry = by_id[ids[name]]
        assert (entry["op"], entry["status"], entry["outcome"]) == (op, status, outcome), name


def test_errors_have_one_shape_and_say_what_to_fix(server: Server, tmp_path: Path):
    seed = article("shape-check")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        responses = {
            "no key": http.put("/articles/shape-check", json=seed),
            "wrong key": http.put("/articles/shape-check", json=seed, headers={"Authorization": "Bearer nope"}),
        }
        http.headers.update(AUTH)
        responses |= {
            "too large": http.post("/articles", content=b"[" + b" " * (MAX_WRITE_MB * 2**20) + b"]", headers=NDJSON),
            "too large, chunked": http.post(
                "/articles", content=iter([b" " * 2**20] * (MAX_WRITE_MB + 1)), headers=NDJSON
            ),
            "too many": http.post("/articles", json=[{}] * (MAX_WRITE_RECORDS + 1)),
            "form": http.post("/articles", data={"a": "b"}),
            "text": http.put("/articles/shape-check", content=b"{}", headers={"Content-Type": "text/plain"}),
            "latin-1": http.put(
                "/articles/shape-check", content=b"{}", headers={"Content-Type": "application/json; charset=latin-1"}
            ),
            "malformed": http.put(
                "/articles/shape-check", content=b'{"slug": ', headers={"Content-Type": "application/json"}
            ),
            "empty": http.post("/articles", content=b"", headers={"Content-Type": "application/json"}),
            "invalid": http.put("/articles/shape-check", json=seed | {"url": "ftp://x", "title": ""}),
            "other slug": http.put("/articles/shape-check", json=seed | {"slug": "something-else"}),
            "not an object": http.put("/articles/shape-check", json=[seed]),
            "not an array": http.post("/articles", json=seed),
            "max rejects": http.post("/articles", params={"max_rejects": 0}, json=[seed, {"slug": "x"}]),
            "bad slugs": http.post("/articles/delete", json={"slugs": [1, 2]}),
        }
    expected = {
        "no key": (401, "unauthorized", "Authorization: Bearer"),
        "wrong key": (401, "unauthorized", "Authorization: Bearer"),
        "too large": (413, "payload_too_large", "SEARCH_MAX_WRITE_MB"),
        "too large, chunked": (413, "payload_too_large", "SEARCH_MAX_WRITE_MB"),
        "too many": (413, "payload_too_large", "SEARCH_MAX_WRITE_RECORDS"),
        "form": (415, "unsupported_media_type", "application/x-ndjson"),
        "text": (415, "unsupported_media_type", "send application/json"),
        "latin-1": (415, "unsupported_media_type", "UTF-8"),
        "malformed": (400, "invalid_json", "not valid JSON"),
        "empty": (400, "invalid_json", "empty"),
        "invalid": (422, "invalid_article", "title: must not be empty; url: 'ftp://x' is not an http(s) URL"),
        "other slug": (422, "invalid_article", "the body says 'something-else' but the path says 'shape-check'"),
        "not an object": (422, "invalid_article", "got an array"),
        "not an array": (422, "invalid_article", "JSON array"),
        "max rejects": (422, "too_many_rejects", "max_rejects"),
        "bad slugs": (422, "invalid_article", "slugs[0]"),
    }
    for name, (status, code, message) in expected.items():
        response = responses[name]
        assert response.status_code == status, (name, response.text)
        error = response.json()["error"]
        assert error["code"] == code, (name, error)
        assert message in error["message"], (name, error)
    assert responses["max rejects"].json()["rejected"][0]["index"] == 1
    assert present(server, ["shape-check"]) == set()  # the refused batch wrote nothing, its valid record neither

    keyless = Server(server.index_dir, tmp_path / "keyless.log", SEARCH_ADMIN_KEY="").start()
    try:
        with httpx.Client(base_url=keyless.url, headers=AUTH, timeout=30) as http:
            disabled = [
                http.put("/articles/shape-check", json=seed),
                http.post("/articles", json=[seed]),
                http.delete("/articles/shape-check"),
                http.post("/articles/delete", json={"slugs": ["x"]}),
            ]
    finally:
        keyless.stop()
    for response in disabled:
        assert response.status_code == 404, response.text
        assert "SEARCH_ADMIN_KEY" in response.json()["error"]["message"]


# == visibility =================================================================================


def test_a_write_is_served_by_both_workers_within_a_second(server: Server):
    slug = "visible-everywhere"
    before = [fresh_get(server, f"/articles/{slug}") for _ in range(20)]
    assert {r.status_code for r, _ in before} == {404}
    with client(server) as http:
        assert http.put(f"/articles/{slug}", json=article(slug)).status_code == 201
    acknowledged = time.monotonic()
    time.sleep(1.0)
    after: list[tuple[httpx.Response, str]] = []
    pids: set[int] = set()
    while len(pids) < 2 and len(after) < 400:
        batch = [fresh_get(server, f"/articles/{slug}") for _ in range(20)]
        after.extend(batch)
        served = server.served_by()
        pids = {served[request_id] for _, request_id in after if request_id in served}
    waited = time.monotonic() - acknowledged
    assert len(pids) == 2, f"only workers {pids} answered {len(after)} fresh connections"
    assert {r.status_code for r, _ in after} == {200}, f"{waited:.2f} s after the PUT"
    served = server.served_by()
    assert len({served[request_id] for _, request_id in before if request_id in served}) >= 1


# == kill -9 ====================================================================================


def test_kill_9_right_after_an_acknowledged_batch_and_in_a_stream_of_writes_loses_nothing(
    index_dir: Path, tmp_path: Path
):
    server = Server(index_dir, tmp_path / "server.log").start()
    slugs = [f"acknowledged-{i}" for i in range(200)]
    try:
        with client(server) as http:
            response = http.post("/articles", json=[article(slug) for slug in slugs])
        server.kill9()
    finally:
        server.stop()
    assert response.status_code == 200 and response.json()["indexed"] == 200
    server = Server(index_dir, tmp_path / "restarted.log").start()
    try:
        assert present(server, slugs) == set(slugs)
    except BaseException:
        server.stop()
        raise

    # now a stream of PUTs from two clients and of batches from a third, killed in the middle
    acknowledged: list[str] = []
    batches: dict[str, list[str]] = {}  # batch id -> its slugs (sent; acknowledged or not)
    acked_batches: list[str] = []
    stop = threading.Event()

    def put_stream(worker: int) -> None:
        with client(server) as http:
            for n in range(10_000):
                if stop.is_set():
                    return
                slug = f"stream-{worker}-{n}"
                try:
                    # 202: queued in the journal when the lock stayed busy; durable all the same
                    if http.put(f"/articles/{slug}", json=article(slug)).status_code in (200, 201, 202):
                        acknowledged.append(slug)
                except httpx.HTTPError:
                    return

    def batch_stream() -> None:
        with client(server) as http:
            for n in range(10_000):
                if stop.is_set():
                    return
                batch = f"b{n}"
                batches[batch] = [f"stream-batch-{n}-{i}" for i in range(20)]
                try:
                    response = http.post("/articles", json=[article(slug) for slug in batches[batch]])
                except httpx.HTTPError:
                    return
                if response.status_code in (200, 202):
                    acked_batches.append(batch)

    threads = [threading.Thread(target=put_stream, args=(w,)) for w in range(2)]
    threads.append(threading.Thread(target=batch_stream))
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while (len(acknowledged) < 10 or len(acked_batches) < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill9()
    finally:
        stop.set()
        server.stop()
        for thread in threads:
            thread.join(timeout=30)
    assert len(acknowledged) >= 10 and len(acked_batches) >= 2, (len(acknowledged), len(acked_batches))

    restarted = Server(index_dir, tmp_path / "restarted-again.log").start()
    try:
        wait_for_empty_journal(index_dir)
        assert present(restarted, acknowledged) == set(acknowledged)
        for batch, slugs in batches.items():
            found = present(restarted, slugs)
            assert found in (set(), set(slugs)), f"batch {batch}: {len(found)} of {len(slugs)} records"
            if batch in acked_batches:
                assert found == set(slugs), batch
    finally:
        restarted.stop()


# == during a full rebuild ======================================================================


def test_writes_during_a_full_cli_rebuild_are_kept_after_the_switch(index_dir: Path, tmp_path: Path):
    server = Server(index_dir, tmp_path / "server.log", SEARCH_WRITE_LOCK_WAIT_S="0.5").start()
    reuters = read_jsonl(REUTERS)
    updated, deleted = reuters[100], reuters[200]
    try:
        rebuild = subprocess.Popen(
            [*CLI, "reindex", "--json", "--index-dir", str(index_dir), str(REUTERS)],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lock = index_dir / ".writer.lock"
        deadline = time.monotonic() + 30
        while lock.read_text().strip() != str(rebuild.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        with client(server) as http:
            responses = [
                http.put("/articles/during-rebuild", json=article("during-rebuild")),
                http.put(
                    f"/articles/{updated['slug']}",
                    json=updated | {"title": "Zanzibarquux corrected", "updated_at": "2026-01-01T00:00:00+00:00"},
                ),
                http.delete(f"/articles/{deleted['slug']}"),
                http.post("/articles", json=[article(f"during-batch-{i}") for i in range(5)]),
            ]
        still_running = rebuild.poll() is None
        output, _ = rebuild.communicate(timeout=600)
        assert rebuild.returncode == 0, output
        assert still_running, "the rebuild finished before the writes were sent: the test proves nothing"
        assert [r.status_code for r in responses] == [202, 202, 202, 202], [r.text for r in responses]
        assert responses[0].json() == {"slug": "during-rebuild", "result": "queued"}
        assert responses[3].json()["queued"] == 5

        expected = len(reuters) + 1 + 5 - 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ready = httpx.get(server.url + "/ready").json()
            if ready.get("documents") == expected:
                break
            time.sleep(0.1)
        assert ready["documents"] == expected, ready
        assert present(server, ["during-rebuild", *(f"during-batch-{i}" for i in range(5))]) == {
            "during-rebuild", *(f"during-batch-{i}" for i in range(5)),
        }  # fmt: skip
        assert httpx.get(f"{server.url}/articles/{updated['slug']}").json()["title"] == "Zanzibarquux corrected"
        assert httpx.get(f"{server.url}/articles/{deleted['slug']}").status_code == 404
        assert not list((index_dir / "journal").glob("*.json"))
        # Every queued write was applied once: by the rebuild before its switch, or by a worker after it.
        by_rebuild = json.loads(output)["journal"]
        by_server = len(server.log_entries("journal entry applied"))
        assert by_rebuild + by_server == 4, (by_rebuild, by_server)
    finally:
        server.stop()
