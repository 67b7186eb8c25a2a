"""Search analytics, per worker: what readers searched for, what they found, which result they opened.

The request path only appends to an in-memory buffer: `record` gives a search its random `query_id`
and queues it; a background thread writes the buffer to SQLite in one transaction at least once a
second (so a kill -9 loses at most that much), rolls up old days and refreshes the popular queries
that /suggest offers. Nothing that identifies a reader is ever taken: not the address, the user
agent, cookies or headers; only the search itself. A database that cannot be used is logged once
and turns analytics off for this worker; searches go on as before.
"""

from __future__ import annotations

import bisect
import logging
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from search_service.analytics import store
from search_service.errors import InvalidParameterError, NotFoundError, TooManyRequestsError
from search_service.index.document import iso
from search_service.normalize import normalize_query
from search_service.search.engine import SearchRequest
from search_service.settings import Settings

log = logging.getLogger("search_service.analytics")

# How a client says what a request is: `skip`, a follow-up for a search it already made (the page's
# second histogram request), not counted again; `typing`, a search-as-you-type keystroke, counted only
# once the client reports the reader stopped there (as are prefix=true searches).
ANALYTICS_HEADER = "x-search-analytics"
# Searches waiting for the flusher; beyond this (a database stalled for long) new ones are not recorded.
MAX_BUFFERED = 50_000
# How long after a search a click on it still counts.
EVENT_WINDOW_S = 24 * 3600
# Events one search may receive (clicks on its page of results, a settle): more is a flood.
MAX_EVENTS_PER_QUERY = 32
# Query ids whose events are counted per worker (the oldest are forgotten first).
EVENT_COUNTS_KEPT = 20_000
MAINTENANCE_S = 3600
# Popular queries kept for /suggest (the most searched).
POPULAR_KEPT = 5_000
POPULAR_DAYS = 30


def database_path(settings: Settings) -> Path:
    """SEARCH_ANALYTICS_DB, else `<index dir>-analytics.sqlite3` beside the index directory."""
    if settings.analytics_db is not None:
        return settings.analytics_db
    index_dir = settings.index_dir.resolve()
    return index_dir.with_name(f"{index_dir.name}-analytics.sqlite3")


@dataclass(frozen=True)
class Seen:
    """What an event is checked against: when the search ran and which slugs its page showed."""

    ts: float
    first_position: int
    slugs: tuple[str, ...]


class Analytics:
    """The recorder, its buffers and the flusher thread of one worker.

    The event loop appends to the deques and the dict; the flusher thread drains them. Single
    appends, pops and lookups are atomic in CPython, so they need no lock between the two."""

    def __init__(
        self,
        path: Path | None,
        retention_days: int = 90,
        flush_s: float = 0.5,
        suggest_min_count: int = 5,
        suggest_refresh_s: float = 60.0,
    ) -> None:
        self.path = path
        self.retention_days = retention_days
        self.flush_s = flush_s
        self.suggest_min_count = suggest_min_count
        self.suggest_refresh_s = suggest_refresh_s
        self.failure: str | None = None
        # Searches as _held keeps them (plain values, never the answer: see there); the flusher
        # turns each into a searches row.
        self._searches: deque[tuple] = deque()
        self._events: deque[tuple[str, int, str, float] | str] = deque()
        # Recorded here, not yet in the database: an event for them is checked against this.
        self._unflushed: dict[str, Seen] = {}
        self._event_counts: OrderedDict[str, int] = OrderedDict()
        self._popular: tuple[list[str], list[int]] = ([], [])
        self._dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store: store.AnalyticsStore | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Analytics:
        return cls(
            database_path(settings) if settings.analytics else None,
            settings.analytics_retention_days,
            settings.analytics_flush_s,
            settings.analytics_suggest_min_count,
            settings.analytics_suggest_refresh_s,
        )

    @property
    def enabled(self) -> bool:
        return self.path is not None and self.failure is None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._store = store.AnalyticsStore(self.path)
        except (store.AnalyticsUnavailableError, OSError) as exc:
            self._fail(str(exc))
            return
        self._thread = threading.Thread(target=self._run, name="analytics-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._store is not None:
            self._store.close()
            self._store = None

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            log.error("search analytics are off for this worker: %s", reason)
        self.failure = reason
        self._searches.clear()
        self._events.clear()
        self._unflushed.clear()

    # -- the request path --------------------------------------------------------------------------

    def record(self, request: SearchRequest, result: dict[str, Any], mark: str | None = None) -> dict[str, Any]:
        """The response with its query_id; the search queued for the database (nothing waits on it).

        `mark`: the client's X-Search-Analytics header (skip, typing), if any."""
        if mark == "skip" or not self.enabled or len(self._searches) >= MAX_BUFFERED:
            self._dropped += mark != "skip" and self.enabled
            return result | {"query_id": None}
        now = time.time()
        # When it was made (8 hex digits of Unix seconds), then 96 random bits that no one can guess.
        query_id = f"{int(now):08x}{secrets.token_hex(12)}"
        held = _held(query_id, now, request, result, request.prefix or mark == "typing")
        self._unflushed[query_id] = Seen(now, (result["page"] - 1) * result["per_page"] + 1, held[-1])
        self._searches.append(held)
        return result | {"query_id": query_id}

    def find(self, query_id: str) -> Seen | None:
        """The search an event refers to, if this worker holds it or it reached the database."""
        held = self._unflushed.get(query_id)
        if held is not None:
            return held
        if self.path is None:
            return None
        try:
            row = store.find_search(self.path, query_id)
        except store.AnalyticsUnavailableError as exc:
            self._fail(str(exc))
            return None
        if row is None:
            return None
        return Seen(row["ts"], (row["page"] - 1) * row["per_page"] + 1, tuple(orjson.loads(row["hits"])))

    def in_flight(self, query_id: str) -> bool:
        """Made so recently that another worker may not have written it yet (worth waiting for)."""
        made = int(query_id[:8], 16)
        return time.time() - (2 * self.flush_s + 1) <= made <= time.time() + 1

    def add_event(self, query_id: str, seen: Seen, slug: str | None, position: int | None) -> None:
        """Queue a click (slug at position) or, without them, a settle: the reader stopped typing here."""
        now = time.time()
        if now - seen.ts > EVENT_WINDOW_S:
            raise NotFoundError(f"query_id {query_id} is too old: events count for {EVENT_WINDOW_S // 3600} h")
        if position is not None:
            index = position - seen.first_position
            if not 0 <= index < len(seen.slugs):
                last = seen.first_position + len(seen.slugs) - 1
                shown = f"{seen.first_position}-{last}" if seen.slugs else "none"
                raise InvalidParameterError("position", f"{position} was not shown by this search (shown: {shown})")
            if seen.slugs[index] != slug:
                raise InvalidParameterError("slug", f"this search did not show that article at position {position}")
        count = self._event_counts.pop(query_id, 0) + 1
        self._event_counts[query_id] = count
        if len(self._event_counts) > EVENT_COUNTS_KEPT:
            self._event_counts.popitem(last=False)
        if count > MAX_EVENTS_PER_QUERY:
            raise TooManyRequestsError(f"at most {MAX_EVENTS_PER_QUERY} events per query_id")
        self._events.append((query_id, position, slug, now) if position is not None and slug else query_id)

    def popular(self, typed: str, limit: int) -> list[tuple[str, int]]:
        """Past queries starting with what is typed, most searched first (never what was typed itself)."""
        prefix = normalize_query(typed)
        if not prefix:
            return []
        keys, counts = self._popular
        start = bisect.bisect_left(keys, prefix)
        found = []
        for i in range(start, len(keys)):
            if not keys[i].startswith(prefix):
                break
            if keys[i] != prefix:
                found.append((keys[i], counts[i]))
        found.sort(key=lambda item: (-item[1], item[0]))
        return found[:limit]

    # -- the flusher thread ------------------------------------------------------------------------

    def _run(self) -> None:
        next_maintenance = next_popular = 0.0
        while self.enabled:
            now = time.time()
            self._guard(self._flush)
            if now >= next_maintenance:
                self._guard(self._maintain)
                next_maintenance = now + MAINTENANCE_S
            if now >= next_popular:
                self._guard(self._load_popular)
                next_popular = now + self.suggest_refresh_s
            if self._stop.wait(self.flush_s):
                break
        if self.enabled:
            self._guard(self._flush)

    def _guard(self, action: Any) -> None:
        if not self.enabled:
            return
        try:
            action()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                log.warning("search analytics: the database is busy, retrying: %s", exc)
            else:
                self._fail(f"{self.path}: {exc}")
        except (sqlite3.Error, store.AnalyticsUnavailableError, OSError) as exc:
            self._fail(f"{self.path}: {exc}")
        except Exception as exc:  # a bug: keep the traceback, keep serving searches
            log.exception("search analytics failed")
            self._fail(f"internal error: {exc!r}")

    def _flush(self) -> None:
        searches = _drain(self._searches)
        events = _drain(self._events)
        if not searches and not events:
            return
        rows = [_row(held) for held in searches]
        clicks = [event for event in events if isinstance(event, tuple)]
        settled = [event for event in events if isinstance(event, str)]
        try:
            self._store.write(rows, clicks, settled)
        except sqlite3.OperationalError:
            # Busy: keep them for the next round, in their order.
            self._searches.extendleft(reversed(searches))
            self._events.extendleft(reversed(events))
            raise
        for query_id, *_ in searches:
            self._unflushed.pop(query_id, None)
        if self._dropped:
            log.warning("search analytics: %d searches not recorded (the buffer was full)", self._dropped)
            self._dropped = 0

    def _maintain(self) -> None:
        self._store.maintain(time.time(), self.retention_days)

    def _load_popular(self) -> None:
        now = time.time()
        span = store.Window(now - POPULAR_DAYS * 86400, store.FOREVER)
        found = sorted(store.popular_queries(self.path, span, self.suggest_min_count, POPULAR_KEPT))
        self._popular = ([q for q, _ in found], [n for _, n in found])


def _drain(queue: deque) -> list:
    return [queue.popleft() for _ in range(len(queue))]


def _held(query_id: str, ts: float, request: SearchRequest, result: dict[str, Any], typing: bool) -> tuple:
    """What the buffer keeps of a search until the flush: its request and the plain values of its
    answer, the tuple of slugs shown last (what a click is checked against). Never the answer
    itself: thousands of its objects alive per second made the collector's full passes long."""
    return (
        query_id,
        ts,
        request,
        result["sort"],
        result["page"],
        result["per_page"],
        result["total"],
        result["matched"],
        result["took_ms"],
        int(result["cached"]),
        int(typing),
        tuple(hit["slug"] for hit in result["hits"]),
    )


def _row(held: tuple) -> tuple:
    """A searches row: the normalized query and what the engine answered, nothing about the reader."""
    query_id, ts, request, *answer, slugs = held
    filters: dict[str, Any] = {name: list(values) for name, values in sorted(request.filters.items())}
    if request.published_after is not None:
        filters["published_after"] = iso(request.published_after)
    if request.published_before is not None:
        filters["published_before"] = iso(request.published_before)
    return (
        query_id,
        ts,
        normalize_query(request.q),
        orjson.dumps(filters).decode(),
        *answer,
        orjson.dumps(slugs).decode(),
    )
