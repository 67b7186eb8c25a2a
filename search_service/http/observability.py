"""Request ids, structured access logs and Prometheus metrics.

A pure ASGI middleware (no per-request objects beyond a dict) so the fast path stays fast.
With several workers, metrics are shared through prometheus-client's multiprocess mode
(`PROMETHEUS_MULTIPROC_DIR`, set up by `search-service serve`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from search_service.index.journal import Journal
from search_service.index.reader import IndexReader
from search_service.index.store import read_last_run
from search_service.settings import Settings

REQUEST_ID_HEADER = b"x-request-id"
_VALID_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REQUESTS = Counter("search_http_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram("search_http_request_seconds", "HTTP request latency", ["route"], buckets=LATENCY_BUCKETS)
# The write API (writes.py). Results: created, updated, unchanged, stale, rejected, deleted, missing,
# queued (journaled), and applied (journaled records written later).
WRITE_RECORDS = Counter("search_write_records_total", "Records of write requests, by result", ["result"])
WRITE_BATCHES = Counter(
    "search_write_batches_total", "Write requests (and journal replays), by operation and outcome", ["op", "outcome"]
)
WRITE_COMMIT = Histogram(
    "search_write_commit_seconds",
    "Writer lock wait, apply and commit of one write",
    ["op"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# The write routes (routes/writes.py) by method and route: each request to one is counted once in
# search_write_batches_total{op,outcome} and logged once as "write", whatever its answer. The
# outcome is what the route recorded (committed, queued), else the error code it answered with.
WRITE_OPS = {
    ("PUT", "/articles/{slug}"): "put",
    ("POST", "/articles"): "batch",
    ("DELETE", "/articles/{slug}"): "delete",
    ("POST", "/articles/delete"): "delete_batch",
}
WRITE_STATE = "write"  # request.state.write: the route's outcome and counts
ERROR_STATE = "error_code"  # request.state.error_code: set where errors become responses (http/errors.py)

log = logging.getLogger("search_service.access")
write_log = logging.getLogger("search_service.writes")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": round(record.created, 3), "level": record.levelname.lower(), "msg": record.getMessage()}
        entry["pid"] = record.process  # which worker
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"))


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("search_service")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class RequestMiddleware:
    """Gives every request an id (echoed in X-Request-ID), times it, counts it and logs it."""

    def __init__(self, app: Callable, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id  # request.state.request_id, for other logs
        status = 500

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((REQUEST_ID_HEADER, request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            took = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(route, scope["method"], str(status)).inc()
            LATENCY.labels(route).observe(took)
            op = WRITE_OPS.get((scope["method"], route))
            if op is not None:
                account_write(scope["state"], op, status, request_id)
            if self.access_log:
                fields = {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "took_ms": round(took * 1000, 3),
                }
                log.info("request", extra={"fields": fields})


def account_write(state: dict[str, Any], op: str, status: int, request_id: str) -> None:
    """One write request: counted once by outcome and logged once (never article text)."""
    recorded = state.get(WRITE_STATE)
    fields = dict(recorded) if recorded else {"outcome": state.get(ERROR_STATE) or f"http_{status}"}
    WRITE_BATCHES.labels(op, fields["outcome"]).inc()
    write_log.info("write", extra={"fields": {"request_id": request_id, "op": op, "status": status, **fields}})


def _request_id(scope: dict[str, Any]) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _VALID_ID.fullmatch(value):
            return value.decode()
    return uuid.uuid4().hex[:16]


class IndexCollector:
    """Index gauges, read when Prometheus scrapes: documents, commit age, the last reindex."""

    def __init__(self, reader: IndexReader, write_floor_bytes: int = 0) -> None:
        self.reader = reader
        self.write_floor_bytes = write_floor_bytes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        documents = GaugeMetricFamily("search_index_documents", "Articles in the served index")
        age = GaugeMetricFamily("search_index_last_commit_age_seconds", "Seconds since the served index's last commit")
        try:
            opened = self.reader.current()
        except Exception:  # an index that cannot be opened is reported by /ready, not by a failed scrape
            opened = None
        if opened is not None:
            documents.add_metric([], opened.index.searcher().num_docs)
            last = opened.generation.last_commit()
            if last is not None:
                age.add_metric([], max(time.time() - last.timestamp(), 0.0))
        yield documents
        yield age
        damaged = GaugeMetricFamily(
            "search_index_damaged",
            "1: the live generation cannot be opened (the file named)",
            labels=["generation", "file"],
        )
        if self.reader.damage is not None:
            damaged.add_metric([self.reader.damage.generation, self.reader.damage.file or "unknown"], 1)
        yield damaged
        pending = GaugeMetricFamily("search_write_journal_pending", "Accepted writes waiting in the journal")
        pending.add_metric([], len(Journal(self.reader.store.root).names()))
        yield pending
        store = self.reader.store
        free = free_bytes(store.root)
        if free is not None:
            disk = GaugeMetricFamily("search_index_disk_free_bytes", "Free space on the index directory's file system")
            disk.add_metric([], free)
            yield disk
        refused = GaugeMetricFamily(
            "search_writes_refused", "1 while writes are refused (full or read-only file system), else 0"
        )
        refused.add_metric([], float(store.write_condition(self.write_floor_bytes) is not None))
        yield refused
        run = read_last_run(self.reader.store)
        if run:
            duration = GaugeMetricFamily("search_last_reindex_seconds", "Duration of the last reindex", labels=["mode"])
            duration.add_metric([run.get("mode", "")], float(run.get("seconds", 0)))
            rejects = GaugeMetricFamily("search_last_reindex_rejected", "Records rejected by the last reindex")
            rejects.add_metric([], float(run.get("rejected", 0)))
            yield duration
            yield rejects


def write_floor(settings: Settings) -> int:
    return int(settings.write_min_free_mb * 2**20)


def free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def metrics_payload(reader: IndexReader, write_floor_bytes: int = 0) -> tuple[bytes, str]:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ProcessMetrics())
    registry.register(IndexCollector(reader, write_floor_bytes))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _ProcessMetrics:
    """This process's request metrics, from the default registry (single-process mode)."""

    def collect(self) -> Iterator[Any]:
        for metric in (REQUESTS, LATENCY, WRITE_RECORDS, WRITE_BATCHES, WRITE_COMMIT):
            yield from metric.collect()
