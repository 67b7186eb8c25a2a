"""The analytics database: one SQLite file (WAL) shared by every worker, its roll-ups and its reports.

Raw rows (one per search, one per opened result) are kept for today and yesterday only: older days
are rolled up into one row per day and query (and per day and click position) in the same
transaction that deletes them, so two workers rolling up at once cannot count a day twice, and the
file grows with the number of distinct queries a day, not with traffic. Roll-ups older than the
retention are deleted. Nothing here knows who searched: there is no column that could hold it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from search_service.errors import InvalidParameterError

SCHEMA = """
CREATE TABLE IF NOT EXISTS searches (
    query_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    q TEXT NOT NULL,
    filters TEXT NOT NULL,
    sort TEXT NOT NULL,
    page INTEGER NOT NULL,
    per_page INTEGER NOT NULL,
    total INTEGER NOT NULL,
    matched TEXT NOT NULL,
    took_ms REAL NOT NULL,
    cached INTEGER NOT NULL,
    typing INTEGER NOT NULL,
    settled INTEGER NOT NULL DEFAULT 0,
    hits TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS searches_by_time ON searches (ts);
CREATE TABLE IF NOT EXISTS clicks (
    query_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    slug TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (query_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS daily_queries (
    day TEXT NOT NULL,
    q TEXT NOT NULL,
    searches INTEGER NOT NULL,
    zero_results INTEGER NOT NULL,
    sum_total INTEGER NOT NULL,
    clicked INTEGER NOT NULL,
    clicks INTEGER NOT NULL,
    sum_position INTEGER NOT NULL,
    PRIMARY KEY (day, q)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS daily_positions (
    day TEXT NOT NULL,
    position INTEGER NOT NULL,
    clicks INTEGER NOT NULL,
    PRIMARY KEY (day, position)
) WITHOUT ROWID;
"""

# A search counts once the reader settled on it: typed-ahead (prefix) searches only when the page said
# the reader stopped typing there, or a result of it was opened; searches without words are browsing.
_CLICKS_BY_SEARCH = "SELECT query_id, count(*) AS n, sum(position) AS positions FROM clicks GROUP BY query_id"
_COUNTED = "s.q != '' AND (s.typing = 0 OR s.settled = 1 OR c.n > 0)"
_RAW_ROWS = f"""
    SELECT date(s.ts, 'unixepoch') AS day, s.q AS q, 1 AS searches, s.total = 0 AS zero_results,
           s.total AS sum_total, coalesce(c.n, 0) > 0 AS clicked, coalesce(c.n, 0) AS clicks,
           coalesce(c.positions, 0) AS sum_position
    FROM searches AS s LEFT JOIN ({_CLICKS_BY_SEARCH}) AS c ON c.query_id = s.query_id
    WHERE {_COUNTED}"""
_ROWS = f"""
WITH rows AS (
    {_RAW_ROWS} AND s.ts >= :since AND s.ts < :until
    UNION ALL
    SELECT day, q, searches, zero_results, sum_total, clicked, clicks, sum_position FROM daily_queries
    WHERE day >= :since_day AND day < :until_day
)"""
_TOTALS = """sum(searches) AS searches, sum(zero_results) AS zero_results, sum(sum_total) AS sum_total,
    sum(clicked) AS clicked, sum(clicks) AS clicks, sum(sum_position) AS sum_position"""

BUSY_TIMEOUT_MS = 5000
FOREVER = 32503680000.0  # 3000-01-01T00:00:00Z: "no end"
_RELATIVE = re.compile(r"(\d{1,5})([dhm])")


class AnalyticsUnavailableError(Exception):
    """The database cannot be opened, read or written (corrupt, read-only, missing directory)."""


@dataclass(frozen=True)
class Window:
    """[since, until) in Unix seconds; roll-ups (whole days) count when their day starts inside it."""

    since: float
    until: float

    @property
    def params(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "since_day": _ceil_day(self.since),
            "until_day": _ceil_day(self.until),
        }

    def describe(self) -> dict[str, str | None]:
        # No bound asked: null, never a sentinel date.
        return {
            "since": _iso(self.since) if self.since > 0 else None,
            "until": _iso(self.until) if self.until < FOREVER else None,
        }


def _ceil_day(ts: float) -> str:
    """The first UTC day starting at or after `ts`."""
    moment = datetime.fromtimestamp(min(max(ts, 0), FOREVER), UTC)
    day = moment.date()
    if moment.time() != time():
        day += timedelta(days=1)
    return day.isoformat()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(min(ts, FOREVER), UTC).isoformat().replace("+00:00", "Z")


def parse_moment(name: str, text: str | None, now: float, default: float) -> float:
    """`7d` (midnight UTC seven days ago), `12h`, `30m` (that long ago), an ISO date (midnight UTC) or datetime."""
    if text is None or not text.strip():
        return default
    value = text.strip()
    try:
        relative = _RELATIVE.fullmatch(value)
        if relative:
            amount, unit = int(relative.group(1)), relative.group(2)
            if unit == "d":
                today = datetime.fromtimestamp(now, UTC).date()
                return max(datetime.combine(today - timedelta(days=amount), time(), UTC).timestamp(), 0.0)
            return max(now - amount * (3600 if unit == "h" else 60), 0.0)
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(), UTC)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        return min(max(moment.timestamp(), 0.0), FOREVER)
    except (ValueError, OverflowError):
        raise InvalidParameterError(
            name, f"{value[:40]!r} is not a duration (7d, 12h, 30m) or an ISO date or datetime (2026-03-01)"
        ) from None


def window(since: str | None, until: str | None, now: float) -> Window:
    start = parse_moment("since", since, now, 0.0)
    end = parse_moment("until", until, now, FOREVER)
    if end <= start:
        raise InvalidParameterError("until", "must be later than since")
    return Window(start, end)


def connect(path: Path, read_only: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), waiting out other workers' writes."""
    try:
        if read_only:
            if not path.is_file():
                raise AnalyticsUnavailableError(f"no analytics database at {path}")
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        else:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except sqlite3.Error as exc:
        raise AnalyticsUnavailableError(f"cannot open {path}: {exc}") from exc
    return conn


class AnalyticsStore:
    """The writer side: schema, batched inserts, roll-ups and retention. One per worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        try:
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise sqlite3.OperationalError(f"journal mode is {mode}, not wal")
            # WAL with NORMAL sync: a commit survives the process being killed (not a power cut).
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.executescript(SCHEMA)
            # A read-only file opens and reads fine: find out now, not at the first flush.
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.conn.close()
            raise AnalyticsUnavailableError(f"cannot use {path}: {exc}") from exc

    def close(self) -> None:
        self.conn.close()

    def write(self, searches: list[tuple], clicks: list[tuple], settled: list[str]) -> None:
        """One transaction: searches first, so events that refer to them land with them."""
        with self._transaction():
            self.conn.executemany(
                "INSERT OR IGNORE INTO searches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)", searches
            )
            self.conn.executemany("INSERT OR IGNORE INTO clicks VALUES (?, ?, ?, ?)", clicks)
            self.conn.executemany("UPDATE searches SET settled = 1 WHERE query_id = ?", [(q,) for q in settled])

    def maintain(self, now: float, retention_days: int) -> None:
        """Roll up every day before yesterday (UTC) and drop roll-ups older than the retention."""
        today = datetime.fromtimestamp(now, UTC).date()
        cutoff = datetime.combine(today - timedelta(days=1), time(), UTC).timestamp()
        oldest = (today - timedelta(days=retention_days)).isoformat()
        with self._transaction():
            self.conn.execute(
                f"""INSERT INTO daily_queries
                SELECT day, q, {_TOTALS} FROM ({_RAW_ROWS} AND s.ts < :cutoff) WHERE true GROUP BY day, q
                ON CONFLICT (day, q) DO UPDATE SET searches = searches + excluded.searches,
                    zero_results = zero_results + excluded.zero_results, sum_total = sum_total + excluded.sum_total,
                    clicked = clicked + excluded.clicked, clicks = clicks + excluded.clicks,
                    sum_position = sum_position + excluded.sum_position""",
                {"cutoff": cutoff},
            )
            self.conn.execute(
                """INSERT INTO daily_positions
                SELECT date(s.ts, 'unixepoch'), k.position, count(*) FROM clicks AS k
                JOIN searches AS s ON s.query_id = k.query_id WHERE s.ts < :cutoff AND s.q != ''
                GROUP BY 1, 2
                ON CONFLICT (day, position) DO UPDATE SET clicks = clicks + excluded.clicks""",
                {"cutoff": cutoff},
            )
            self.conn.execute(
                "DELETE FROM clicks WHERE query_id IN (SELECT query_id FROM searches WHERE ts < ?)", (cutoff,)
            )
            self.conn.execute("DELETE FROM searches WHERE ts < ?", (cutoff,))
            self.conn.execute("DELETE FROM daily_queries WHERE day < ?", (oldest,))
            self.conn.execute("DELETE FROM daily_positions WHERE day < ?", (oldest,))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE: take the write lock up front (waiting for another worker's), not halfway."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")


# -- reading ------------------------------------------------------------------------------------


def find_search(path: Path, query_id: str) -> sqlite3.Row | None:
    """ts, page, per_page and hits (JSON slugs) of a flushed search."""
    found = _fetch(path, "SELECT ts, page, per_page, hits FROM searches WHERE query_id = :id", {"id": query_id})
    return found[0] if found else None


def _query_row(row: sqlite3.Row) -> dict[str, Any]:
    searches, clicks = row["searches"] or 0, row["clicks"] or 0
    return {
        "q": row["q"],
        "count": row["count"],
        "searches": searches,
        "zero_results": row["zero_results"] or 0,
        "clicks": clicks,
        "ctr": _ratio(row["clicked"], searches),
        "avg_total": _ratio(row["sum_total"], searches),
        "mean_click_position": _ratio(row["sum_position"], clicks) if clicks else None,
    }


def _ratio(a: float | None, b: float | None) -> float:
    return round((a or 0) / b, 4) if b else 0.0


def top_queries(path: Path, span: Window, limit: int) -> list[dict[str, Any]]:
    """The most searched queries, with how often they were searched, clicked and found something."""
    sql = f"""{_ROWS} SELECT q, sum(searches) AS count, {_TOTALS} FROM rows GROUP BY q
              ORDER BY count DESC, q LIMIT :limit"""
    return _rows(path, sql, span, limit)


def no_results(path: Path, span: Window, limit: int) -> list[dict[str, Any]]:
    """Queries that found nothing, by how many of their searches found nothing (`count`)."""
    sql = f"""{_ROWS} SELECT q, sum(zero_results) AS count, {_TOTALS} FROM rows GROUP BY q
              HAVING sum(zero_results) > 0 ORDER BY count DESC, q LIMIT :limit"""
    return _rows(path, sql, span, limit)


def popular_queries(path: Path, span: Window, min_count: int, limit: int) -> list[tuple[str, int]]:
    """Queries searched with results at least `min_count` times, by that count."""
    sql = f"""{_ROWS} SELECT q, sum(searches - zero_results) AS found FROM rows GROUP BY q
              HAVING found >= :min ORDER BY found DESC, q LIMIT :limit"""
    return [(r["q"], r["found"]) for r in _fetch(path, sql, {**span.params, "min": min_count, "limit": limit})]


def _rows(path: Path, sql: str, span: Window, limit: int) -> list[dict[str, Any]]:
    return [_query_row(row) for row in _fetch(path, sql, {**span.params, "limit": limit})]


def _fetch(path: Path, sql: str, params: dict[str, Any]) -> list[sqlite3.Row]:
    try:
        conn = connect(path, read_only=True)
        try:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise AnalyticsUnavailableError(f"cannot read {path}: {exc}") from exc


def summary(path: Path, span: Window) -> dict[str, Any]:
    """Totals and per-day figures: searches, zero-result rate, click-through rate, mean click position."""
    days = _fetch(path, f"{_ROWS} SELECT day, {_TOTALS} FROM rows GROUP BY day ORDER BY day", span.params)
    per_day = [(row["day"], _counts(row)) for row in days]
    positions = _fetch(
        path,
        """SELECT position, sum(clicks) AS clicks FROM (
            SELECT k.position AS position, 1 AS clicks FROM clicks AS k
            JOIN searches AS s ON s.query_id = k.query_id
            WHERE s.q != '' AND s.ts >= :since AND s.ts < :until
            UNION ALL
            SELECT position, clicks FROM daily_positions WHERE day >= :since_day AND day < :until_day
        ) GROUP BY position ORDER BY position""",
        span.params,
    )
    totals = {key: sum(counts[key] for _, counts in per_day) for key in _COUNT_KEYS}
    return {
        **span.describe(),
        **_figures(totals),
        "days": [{"day": day, **_figures(counts)} for day, counts in per_day],
        "positions": [{"position": row["position"], "clicks": row["clicks"]} for row in positions],
    }


_COUNT_KEYS = ("searches", "zero_results", "sum_total", "clicked", "clicks", "sum_position")


def _counts(row: sqlite3.Row) -> dict[str, int]:
    return {key: row[key] or 0 for key in _COUNT_KEYS}


def _figures(counts: dict[str, int]) -> dict[str, Any]:
    return {
        "searches": counts["searches"],
        "zero_results": counts["zero_results"],
        "zero_result_rate": _ratio(counts["zero_results"], counts["searches"]),
        "clicks": counts["clicks"],
        "clicked_searches": counts["clicked"],
        "ctr": _ratio(counts["clicked"], counts["searches"]),
        "mean_click_position": _ratio(counts["sum_position"], counts["clicks"]) if counts["clicks"] else None,
    }
