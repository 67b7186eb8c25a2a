"""Search analytics against the real thing: `search-service serve --workers 2` over the sample index,
httpx on fresh connections (so searches and events land on both workers), the SQLite file read back.

The admin API is the oracle for counts, and the database file itself for what is (not) stored.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CLI, SAMPLE, build_index, cli_env

from search_service.analytics.store import AnalyticsStore

ADMIN_KEY = "analytics-test-key"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
FLUSH_S = 0.5
SUGGEST_MIN = 3
# Headers a browser sends that must never reach the database.
CANARY_AGENT = "Mozilla/5.0 canary-agent-7f3a"
CANARY_COOKIE = "canary-cookie-7f3a"
CANARY_ADDRESS = "203.0.113.99"
CANARY_HEADERS = {
    "User-Agent": CANARY_AGENT,
    "Cookie": f"reader={CANARY_COOKIE}",
    "X-Forwarded-For": CANARY_ADDRESS,
    "X-Real-IP": CANARY_ADDRESS,
    "Referer": "https://canary-referrer-7f3a.example/",
}


# -- the server ---------------------------------------------------------------------------------


@dataclass
class Served:
    base: str
    db: Path
    log: Path
    metrics: Path
    process: subprocess.Popen

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", params=params, headers={"Connection": "close", **(headers or {})})

    def search(self, q: str, **params: Any) -> dict[str, Any]:
        response = self.get("/search", q=q, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def event(self, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(f"{self.base}/events", content=content, headers={"Connection": "close", **(headers or {})})

    def admin(self, report: str, **params: Any) -> dict[str, Any]:
        response = self.get(f"/admin/analytics/{report}", headers=ADMIN, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def row(self, report: str, q: str, **params: Any) -> dict[str, Any] | None:
        return next((r for r in self.admin(report, limit=1000, **params)["rows"] if r["q"] == q), None)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(root: Path, index_dir: Path, db: Path | None = None, **env: str) -> Served:
    """`search-service serve --workers 2`, its own process group, ready when /ready answers."""
    port = free_port()
    metrics = root / f"metrics-{port}"
    metrics.mkdir()
    log = root / f"server-{port}.log"
    settings = {
        "SEARCH_ADMIN_KEY": ADMIN_KEY,
        "SEARCH_ANALYTICS_FLUSH_S": str(FLUSH_S),
        "SEARCH_ANALYTICS_SUGGEST_MIN_COUNT": str(SUGGEST_MIN),
        "SEARCH_ANALYTICS_SUGGEST_REFRESH_S": "0.3",
        "SEARCH_SEARCH_BUDGET_MS": "60000",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        **({"SEARCH_ANALYTICS_DB": str(db)} if db else {}),
        **env,
    }
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*CLI, "serve", "--workers", "2", "--port", str(port), "--index-dir", str(index_dir)],
            env={**cli_env(), **settings},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(f"http://127.0.0.1:{port}", db or index_dir.with_name(f"{index_dir.name}-analytics.sqlite3"),
                    log, metrics, process)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{served.base}/ready", timeout=2).status_code == 200:
                return served
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    served.kill()
    pytest.fail("the server was not ready in 60 s")


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """check()'s value once it is truthy (the workers flush every FLUSH_S)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def settled(check: Callable[[], Any], expected: Any) -> Any:
    """Wait until check() == expected, then a few flushes more: the figure must not move past it."""
    eventually(lambda: check() == expected)
    time.sleep(3 * FLUSH_S)
    return check()


def parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda call: call(), calls))


def db_rows(path: Path, sql: str, *params: Any) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def seed(path: Path, ts: float, q: str, total: int, clicks: int = 0) -> None:
    """A search row (and clicks) written as a worker would have, at time `ts`."""
    store = AnalyticsStore(path)
    try:
        query_id = os.urandom(16).hex()
        slugs = json.dumps([f"slug-{i}" for i in range(max(clicks, 1))])
        store.write(
            [(query_id, ts, q, "{}", "relevance", 1, 10, total, "all", 1.0, 0, 0, slugs)],
            [(query_id, i + 1, f"slug-{i}", ts + 1) for i in range(clicks)],
            [],
        )
    finally:
        store.close()


# -- the shared server --------------------------------------------------------------------------

NOW = time.time()
LAST_WEEK = (datetime.now(UTC) - timedelta(days=5)).timestamp()
LONG_AGO = (datetime.now(UTC) - timedelta(days=100)).timestamp()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("analytics")
    build_index(root / "index", [SAMPLE])
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[Served]:
    db = root / "index-analytics.sqlite3"
    # What earlier days left in the file: the server rolls these up (and drops what is past retention).
    seed(db, LONG_AGO, "ancient query", total=4, clicks=1)
    for clicks in (1, 0):
        seed(db, LAST_WEEK, "last week query", total=6, clicks=clicks)
    served = serve(root, root / "index")
    yield served
    served.stop()


def test_searches_spread_over_both_workers_are_counted_exactly_with_case_and_spacing_folded(server: Served):
    spellings = ["Inflation Cools", "  inflation   cools ", "INFLATION cools", "Inflätion cools"]
    calls = [lambda s=s: server.search(s) for s in spellings * 6] + [lambda: server.search("Nuclear")] * 5
    answers = parallel(calls)
    assert all(a["total"] > 0 for a in answers)
    ids = [a["query_id"] for a in answers]
    assert len(set(ids)) == len(ids) and all(len(i) == 32 for i in ids), "each search gets its own query_id"
    assert any(a["cached"] for a in answers), "repeated searches came from the result cache (and still count)"

    assert settled(lambda: (server.row("top-queries", "inflation cools") or {}).get("count"), 24) == 24
    assert server.row("top-queries", "nuclear")["count"] == 5
    assert not any(r["q"] != r["q"].strip().lower() for r in server.admin("top-queries", limit=1000)["rows"])
    workers = {p.name.split("_")[-1] for p in server.metrics.glob("counter_*.db")}
    assert len(workers) == 2, f"both workers should have answered: {workers}"
    stored = db_rows(server.db, f"SELECT query_id, cached FROM searches WHERE query_id IN ({','.join('?' * len(ids))})",
                     *ids)  # fmt: skip
    assert {row[0] for row in stored} == set(ids)
    assert sum(row[1] for row in stored) == sum(a["cached"] for a in answers)


def test_clicks_count_once_per_result_and_give_the_click_through_rate(server: Served):
    searches = [server.search("opec output") for _ in range(4)]
    first, second = searches[0], searches[1]
    assert len(second["hits"]) >= 2
    clicks = [
        (first, 1),
        (second, 1),
        (second, 2),
        (second, 2),  # the same result opened twice: one click
    ]
    responses = parallel(
        [
            lambda s=s, p=p: server.event({"query_id": s["query_id"], "slug": s["hits"][p - 1]["slug"], "position": p})
            for s, p in clicks
        ]
    )
    assert [r.status_code for r in responses] == [202] * 4, [r.text for r in responses]

    assert settled(lambda: (server.row("top-queries", "opec output") or {}).get("clicks"), 3) == 3
    row = server.row("top-queries", "opec output")
    assert row["count"] == 4
    assert row["clicks"] == 3
    assert row["ctr"] == 0.5  # 2 of 4 searches had a result opened
    assert row["mean_click_position"] == pytest.approx(4 / 3, abs=1e-3)
    assert row["avg_total"] == searches[0]["total"]
    summary = server.admin("summary", since="0d")
    assert {p["position"]: p["clicks"] for p in summary["positions"]}.get(2, 0) >= 1


def test_a_click_on_the_next_page_counts_its_rank_over_all_pages(server: Served):
    answer = server.search("rates", page=2, per_page=3)
    assert len(answer["hits"]) >= 1
    hit = answer["hits"][0]
    assert server.event({"query_id": answer["query_id"], "slug": hit["slug"], "position": 1}).status_code == 422
    accepted = server.event({"query_id": answer["query_id"], "slug": hit["slug"], "position": 4})
    assert accepted.status_code == 202, accepted.text


def test_queries_that_found_nothing_are_listed_by_how_often(server: Served):
    for q, times in (("zyzzyva quux", 3), ("Qwxzv", 1)):
        for _ in range(times):
            assert server.search(q)["total"] == 0
    rows = settled(lambda: {r["q"]: r["count"] for r in server.admin("no-results", limit=1000)["rows"]}.get("qwxzv"), 1)
    assert rows == 1
    listed = {r["q"]: r for r in server.admin("no-results", limit=1000)["rows"]}
    assert listed["zyzzyva quux"]["count"] == 3 and listed["zyzzyva quux"]["avg_total"] == 0
    assert "inflation cools" not in listed
    summary = server.admin("summary", since="0d")
    assert summary["zero_results"] >= 4 and 0 < summary["zero_result_rate"] < 1


def test_since_and_until_bound_every_report(server: Served):
    server.search("bounded window")
    eventually(lambda: server.row("top-queries", "bounded window"))
    today = datetime.now(UTC).date()
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert server.row("top-queries", "bounded window", since=today.isoformat())["count"] == 1
    assert server.row("top-queries", "bounded window", since="1h")["count"] == 1
    assert server.row("top-queries", "bounded window", since=tomorrow) is None
    assert server.row("top-queries", "bounded window", until=today.isoformat()) is None
    assert server.admin("summary", since=tomorrow)["searches"] == 0
    day = server.admin("summary", since="0d", until=tomorrow)["days"]
    assert [d["day"] for d in day] == [today.isoformat()]
    for bad in ({"since": "yesterday"}, {"since": "7d", "until": "8d"}, {"limit": "0"}):
        response = server.get("/admin/analytics/top-queries", headers=ADMIN, **bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["code"] == "invalid_parameter"


def test_reports_without_bounds_say_null_never_a_sentinel_date(server: Served):
    for report in ("top-queries", "no-results", "summary"):
        unbounded = server.admin(report)
        assert (unbounded["since"], unbounded["until"]) == (None, None), report
    bounded = server.admin("summary", since="2026-01-01", until="2026-02-01")
    assert (bounded["since"], bounded["until"]) == ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")


def test_the_no_results_report_marks_queries_that_now_find_articles(server: Served):
    assert server.search("zorbexquill")["total"] == 0
    assert server.search("flurbnactic")["total"] == 0
    eventually(lambda: server.row("no-results", "zorbexquill") and server.row("no-results", "flurbnactic"))
    response = httpx.put(
        f"{server.base}/admin/synonyms", json={"synonyms": [{"words": ["zorbexquill", "oil"]}]}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    oil = server.search("oil")["total"]

    def marked() -> bool:
        return server.row("no-results", "zorbexquill")["finds_now"] == oil

    eventually(marked)
    assert server.row("no-results", "flurbnactic")["finds_now"] == 0
    assert "finds_now" not in server.row("top-queries", "flurbnactic")


def test_days_past_retention_are_pruned_and_older_days_rolled_up(server: Served):
    assert server.row("top-queries", "ancient query", since="365d") is None
    row = server.row("top-queries", "last week query", since="30d")
    assert (row["count"], row["clicks"], row["avg_total"]) == (2, 1, 6)
    assert server.row("top-queries", "last week query", since="1d") is None
    assert db_rows(server.db, "SELECT count(*) FROM searches WHERE ts < ?", NOW - 2 * 86400) == [(0,)]
    day = datetime.fromtimestamp(LAST_WEEK, UTC).date().isoformat()
    assert db_rows(server.db, "SELECT day, searches, clicks FROM daily_queries WHERE q = 'last week query'") == [
        (day, 2, 1)
    ]
    assert db_rows(server.db, "SELECT count(*) FROM daily_queries WHERE q = 'ancient query'") == [(0,)]


MALFORMED: list[tuple[str, bytes | dict, int]] = [
    ("not json", b"{oops", 422),
    ("a list", b"[1, 2]", 422),
    ("empty body", b"", 422),
    ("not utf-8", b'{"query_id": "\xff\xfe"}', 422),
    ("no query_id", {"slug": "a", "position": 1}, 422),
    ("query_id not hex", {"query_id": "Z" * 32, "slug": "a", "position": 1}, 422),
    ("query_id too short", {"query_id": "ab", "slug": "a", "position": 1}, 422),
    ("click without position", {"query_id": "a" * 32, "slug": "a"}, 422),
    ("position zero", {"query_id": "a" * 32, "slug": "a", "position": 0}, 422),
    ("position a string", {"query_id": "a" * 32, "slug": "a", "position": "first"}, 422),
    ("unknown field", {"query_id": "a" * 32, "slug": "a", "position": 1, "ip": "1.2.3.4"}, 422),
    ("unknown type", {"query_id": "a" * 32, "type": "purchase"}, 422),
    ("settle with a slug", {"query_id": "a" * 32, "type": "settle", "slug": "a"}, 422),
    ("too large", {"query_id": "a" * 32, "slug": "a" * 5000, "position": 1}, 413),
    ("unknown query_id", {"query_id": "0123456789abcdef" * 2, "slug": "a", "position": 1}, 404),
]


@pytest.mark.parametrize(("case", "body", "status"), MALFORMED, ids=[case for case, _, _ in MALFORMED])
def test_malformed_or_unknown_events_are_refused_with_a_4xx(server: Served, case: str, body: Any, status: int):
    response = server.event(body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_a_forged_query_id_of_this_second_is_waited_for_then_refused(server: Served):
    forged = f"{int(time.time()):08x}{os.urandom(12).hex()}"
    response = server.event({"query_id": forged, "type": "settle"})
    assert response.status_code == 404, response.text
    assert "unknown query_id" in response.json()["error"]["message"]


def test_an_event_must_name_a_result_the_search_showed(server: Served):
    answer = server.search("election")
    hits = answer["hits"]
    wrong_slug = server.event({"query_id": answer["query_id"], "slug": "not-shown", "position": 1})
    past_the_page = server.event({"query_id": answer["query_id"], "slug": hits[0]["slug"], "position": len(hits) + 1})
    assert (wrong_slug.status_code, past_the_page.status_code) == (422, 422)


def test_a_flood_of_events_for_one_search_is_cut_off(server: Served):
    answer = server.search("climate")
    hit = answer["hits"][0]
    body = {"query_id": answer["query_id"], "slug": hit["slug"], "position": 1}
    statuses = [server.event(body).status_code for _ in range(80)]
    assert 202 in statuses and 429 in statuses, statuses
    # Two workers count separately: each lets at most 32 through.
    assert statuses.count(202) <= 64
    eventually(lambda: db_rows(server.db, "SELECT count(*) FROM clicks WHERE query_id = ?", answer["query_id"]))
    time.sleep(3 * FLUSH_S)
    assert db_rows(server.db, "SELECT count(*) FROM clicks WHERE query_id = ?", answer["query_id"]) == [(1,)]


def test_the_database_holds_no_address_user_agent_cookie_or_referrer(server: Served):
    answer = server.get("/search", headers=CANARY_HEADERS, q="privacy canary query").json()
    if answer["hits"]:
        hit = answer["hits"][0]
        event = {"query_id": answer["query_id"], "slug": hit["slug"], "position": 1}
        assert server.event(event, headers=CANARY_HEADERS).status_code == 202
    eventually(lambda: server.row("top-queries", "privacy canary query"))
    time.sleep(3 * FLUSH_S)
    stored = b"".join(p.read_bytes() for p in server.db.parent.glob(f"{server.db.name}*"))
    assert b"privacy canary query" in stored, "the query itself is stored (else this check proves nothing)"
    for needle in (CANARY_AGENT, "canary-agent", CANARY_COOKIE, CANARY_ADDRESS, "127.0.0.1", "canary-referrer"):
        assert needle.encode() not in stored, f"{needle!r} found in the analytics database"
    columns = {row[1] for table in ("searches", "clicks") for row in db_rows(server.db, f"PRAGMA table_info({table})")}
    assert not columns & {"ip", "address", "user_agent", "agent", "cookie", "session", "user_id", "referer"}


def test_popular_queries_with_results_are_suggested_once_searched_often_enough(server: Served):
    def suggested(typed: str) -> list[str]:
        found = server.get("/suggest", q=typed).json()["suggestions"]
        return [s["text"] for s in found if s["kind"] == "query"]

    for _ in range(SUGGEST_MIN - 1):
        server.search("Solar Installations")
        server.search("solarpunk zyzzyva")  # finds nothing: never offered
    time.sleep(6 * FLUSH_S)
    assert suggested("sol") == [], "offered before enough searches"
    server.search("solar installations")
    for _ in range(SUGGEST_MIN):
        server.search("solarpunk zyzzyva")
    # Both workers must offer it (each reloads the popular queries itself).
    assert eventually(lambda: all(suggested("Sol") == ["solar installations"] for _ in range(6)))
    assert suggested("solar installations") == [], "what is typed in full is not offered back"


def test_typed_ahead_searches_count_only_where_the_reader_stopped(server: Served):
    keystrokes = [server.search(q, prefix="true") for q in ("ga", "gas st", "gas storage")]
    assert server.event({"query_id": keystrokes[-1]["query_id"], "type": "settle"}).status_code == 202
    assert settled(lambda: (server.row("top-queries", "gas storage") or {}).get("count"), 1) == 1
    assert server.row("top-queries", "ga") is None and server.row("top-queries", "gas st") is None


def test_a_follow_up_request_marked_skip_is_answered_but_not_counted(server: Served):
    answer = server.get("/search", headers={"X-Search-Analytics": "skip"}, q="skipped follow up").json()
    assert answer["query_id"] is None and "total" in answer
    server.search("counted marker")
    eventually(lambda: server.row("top-queries", "counted marker"))
    time.sleep(2 * FLUSH_S)
    assert server.row("top-queries", "skipped follow up") is None


def test_reports_need_the_admin_key(server: Served):
    for path in ("/admin/analytics/top-queries", "/admin/analytics/no-results", "/admin/analytics/summary"):
        assert server.get(path).status_code == 401
        assert server.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert server.get("/admin/analytics").headers["content-security-policy"].startswith("default-src 'self'")


def test_the_cli_reads_the_same_figures(server: Served, root: Path):
    server.search("cli figures")
    eventually(lambda: server.row("top-queries", "cli figures"))
    env = {**cli_env(), "SEARCH_INDEX_DIR": str(root / "index")}
    top = subprocess.run([*CLI, "analytics", "top", "--since", "1d", "--json", "--limit", "1000"], env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    rows = {r["q"]: r for r in json.loads(top.stdout)["rows"]}
    assert rows["cli figures"]["count"] == server.row("top-queries", "cli figures")["count"]
    text = subprocess.run([*CLI, "analytics", "summary"], env=env, capture_output=True, text=True, check=True)
    assert datetime.now(UTC).date().isoformat() in text.stdout
    none = subprocess.run([*CLI, "analytics", "no-results", "--since", "soon"], env=env, capture_output=True, text=True)
    assert none.returncode != 0 and "since" in none.stderr


# -- servers of their own -----------------------------------------------------------------------


def test_a_kill_9_loses_at_most_the_last_second(root: Path, tmp_path: Path):
    db = tmp_path / "killed.sqlite3"
    served = serve(root, root / "index", db=db, SEARCH_RESULT_CACHE_SIZE="0")
    answered: list[tuple[float, str]] = []
    stop = threading.Event()

    def load() -> None:
        words = ["oil", "rates", "election", "energy", "china", "health", "space", "trade"]
        with httpx.Client(base_url=served.base) as client:
            i = 0
            while not stop.is_set():
                try:
                    response = client.get("/search", params={"q": f"{words[i % len(words)]} {i % 7}"})
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    answered.append((time.monotonic(), response.json()["query_id"]))
                i += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(4)
        killed_at = time.monotonic()
        served.kill()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        served.kill()
    stored = {row[0] for row in db_rows(db, "SELECT query_id FROM searches")}
    older = [query_id for at, query_id in answered if at < killed_at - 1.0]
    assert len(older) > 50, f"too little traffic to judge: {len(answered)} searches"
    missing = [query_id for query_id in older if query_id not in stored]
    assert missing == [], f"{len(missing)} of {len(older)} searches answered over 1 s before the kill were lost"


def test_analytics_off_records_nothing_and_creates_no_file(root: Path, tmp_path: Path):
    db = tmp_path / "off.sqlite3"
    served = serve(root, root / "index", db=db, SEARCH_ANALYTICS="false")
    try:
        answer = served.search("oil")
        assert answer["total"] > 0 and answer["query_id"] is None
        assert served.event({"query_id": "a" * 32, "type": "settle"}).status_code == 404
        assert served.get("/admin/analytics/summary", headers=ADMIN).status_code == 404
        assert served.get("/suggest", q="oi").status_code == 200
        time.sleep(3 * FLUSH_S)
    finally:
        served.stop()
    assert list(tmp_path.glob("off.sqlite3*")) == []


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs holding an analytics database, remounted read-only (root only; skipped elsewhere)."""
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(target)],
                                           capture_output=True).returncode != 0:  # fmt: skip
        pytest.skip("mounting a tmpfs needs root")
    try:
        seed(target / "analytics.sqlite3", NOW, "written before", total=1)
        subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True, capture_output=True)
        yield target / "analytics.sqlite3"
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)


def _corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.sqlite3"
    path.write_bytes(b"this is not a database " * 500)
    return path


def _unopenable(tmp_path: Path) -> Path:
    (tmp_path / "a-file").write_text("x")
    return tmp_path / "a-file" / "analytics.sqlite3"


@pytest.mark.parametrize("kind", ["corrupt", "unopenable", "read-only"])
def test_an_unusable_database_is_logged_and_never_fails_a_search(
    root: Path, tmp_path: Path, kind: str, request: pytest.FixtureRequest
):
    makers = {"corrupt": _corrupt, "unopenable": _unopenable}
    db = request.getfixturevalue("read_only_dir") if kind == "read-only" else makers[kind](tmp_path)
    before = db.read_bytes() if db.is_file() else None
    served = serve(root, root / "index", db=db)
    try:
        queries = ["oil", "rates", "election", "zyzzyva"] * 5
        answers = parallel([lambda q=q: served.get("/search", q=q) for q in queries])
        assert [a.status_code for a in answers] == [200] * 20
        time.sleep(4 * FLUSH_S)
        again = served.get("/search", q="oil")
        assert again.status_code == 200 and again.json()["query_id"] is None
        assert served.get("/admin/analytics/summary", headers=ADMIN).status_code == 503
        first = answers[0].json()
        if first["query_id"]:
            event = {"query_id": first["query_id"], "type": "settle"}
            assert served.event(event).status_code in (404, 503)
    finally:
        served.stop()
    assert "search analytics are off for this worker" in served.log.read_text(errors="replace")
    if before is not None and kind == "corrupt":
        assert db.read_bytes() == before, "the unusable file was left as it was"
