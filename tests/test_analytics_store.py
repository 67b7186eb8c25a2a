"""The analytics database on its own: roll-ups that keep every figure, retention, a bounded file.

A real SQLite file written through AnalyticsStore with timestamps chosen by the test, so that days
can pass in milliseconds; reports are read back with the same functions the API and CLI use.
"""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from search_service.analytics import store
from search_service.analytics.store import AnalyticsStore, Window

DAY = 86400.0
ALL = Window(0.0, store.FOREVER)


def midnight(days_ago: int, now: datetime) -> float:
    return datetime.combine(now.date() - timedelta(days=days_ago), datetime.min.time(), UTC).timestamp()


def write_day(db: AnalyticsStore, start: float, rng: random.Random, searches: int, queries: int) -> None:
    rows, clicks = [], []
    for _ in range(searches):
        query_id = os.urandom(16).hex()
        ts = start + rng.uniform(0, DAY - 1)
        q = f"query {rng.randrange(queries)}"
        total = 0 if q.endswith("7") else rng.randint(1, 50)
        rows.append((query_id, ts, q, "{}", "relevance", 1, 10, total, "all", 2.0, 0, 0, json.dumps(["a", "b", "c"])))
        if total and rng.random() < 0.4:
            clicks.append((query_id, rng.randint(1, 3), "a", ts + 5))
    db.write(rows, clicks, [])


@pytest.fixture
def db(tmp_path: Path) -> AnalyticsStore:
    opened = AnalyticsStore(tmp_path / "analytics.sqlite3")
    yield opened
    opened.close()


def test_rolling_up_old_days_keeps_every_report_figure(db: AnalyticsStore):
    now = datetime.now(UTC)
    rng = random.Random(7)
    for days_ago in range(6):
        write_day(db, midnight(days_ago, now), rng, 300, 20)
    before = (store.top_queries(db.path, ALL, 1000), store.no_results(db.path, ALL, 1000), store.summary(db.path, ALL))
    db.maintain(now.timestamp(), retention_days=90)
    after = (store.top_queries(db.path, ALL, 1000), store.no_results(db.path, ALL, 1000), store.summary(db.path, ALL))
    assert after == before
    raw_days = {r[0] for r in db.conn.execute("SELECT DISTINCT date(ts, 'unixepoch') FROM searches")}
    assert raw_days == {now.date().isoformat(), (now.date() - timedelta(days=1)).isoformat()}
    assert db.conn.execute("SELECT count(DISTINCT day) FROM daily_queries").fetchone()[0] == 4
    # A second roll-up (another worker's, say) finds nothing left to count.
    db.maintain(now.timestamp(), retention_days=90)
    assert store.summary(db.path, ALL) == before[2]


def test_days_past_the_retention_are_deleted(db: AnalyticsStore):
    now = datetime.now(UTC)
    rng = random.Random(8)
    for days_ago in (1, 3, 10, 11):
        write_day(db, midnight(days_ago, now), rng, 50, 5)
    db.maintain(now.timestamp(), retention_days=10)
    days = [d["day"] for d in store.summary(db.path, ALL)["days"]]
    assert days == [(now.date() - timedelta(days=n)).isoformat() for n in (10, 3, 1)]


def test_since_and_until_count_rolled_up_days_that_start_inside_them(db: AnalyticsStore):
    now = datetime.now(UTC)
    rng = random.Random(9)
    for days_ago in range(2, 6):
        write_day(db, midnight(days_ago, now), rng, 40, 5)
    db.maintain(now.timestamp(), retention_days=90)
    span = Window(midnight(4, now), midnight(2, now))  # days 4 and 3 ago
    days = [d["day"] for d in store.summary(db.path, span)["days"]]
    assert days == [(now.date() - timedelta(days=n)).isoformat() for n in (4, 3)]
    inside = Window(midnight(4, now) + 3600, midnight(2, now))  # day 4 starts before since: left out
    assert [d["day"] for d in store.summary(db.path, inside)["days"]] == [(now.date() - timedelta(days=3)).isoformat()]


def test_the_file_stays_bounded_as_days_pass(tmp_path: Path):
    path = tmp_path / "bounded.sqlite3"
    db = AnalyticsStore(path)
    rng = random.Random(10)
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    sizes = []
    try:
        for day in range(12):
            write_day(db, start + day * DAY, rng, 2000, 50)
            db.maintain(start + day * DAY + DAY / 2, retention_days=4)
            db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            sizes.append(path.stat().st_size)
        kept = db.conn.execute("SELECT count(*) FROM daily_queries").fetchone()[0]
        raw = db.conn.execute("SELECT count(*) FROM searches").fetchone()[0]
    finally:
        db.close()
    assert kept <= 4 * 50
    assert raw <= 2 * 2000
    assert sizes[-1] <= sizes[4] * 1.1, f"the file kept growing: {sizes}"


def test_time_bounds_are_parsed_or_refused_with_the_parameter_named():
    now = datetime(2026, 3, 10, 15, 30, tzinfo=UTC).timestamp()
    assert store.parse_moment("since", "7d", now, 0) == datetime(2026, 3, 3, tzinfo=UTC).timestamp()
    assert store.parse_moment("since", "12h", now, 0) == now - 12 * 3600
    assert store.parse_moment("since", "2026-03-01", now, 0) == datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    assert (
        store.parse_moment("since", "2026-03-01T12:00:00+01:00", now, 0)
        == datetime(2026, 3, 1, 11, tzinfo=UTC).timestamp()
    )
    assert store.parse_moment("since", "99999d", now, 0) == 0.0  # before 1970: from the start
    for bad in ("yesterday", "7 d", "999999d", "2026-13-01", "-1d", "1e3d"):
        with pytest.raises(store.InvalidParameterError, match="since"):
            store.parse_moment("since", bad, now, 0)
