"""The write API: the CMS pushes articles over HTTP, through the same Indexer as the CLI.

    PUT    /articles/{slug}     one article (import format)          -> {"slug", "result"}
    POST   /articles            a JSON array, or JSON Lines          -> counts and per-record rejects
    DELETE /articles/{slug}                                          -> {"slug", "result": "deleted"}
    POST   /articles/delete     {"slugs": [...]}                     -> counts and the missing slugs

Every call needs the admin key. A write takes the store's writer lock (waiting at most
SEARCH_WRITE_LOCK_WAIT_S), applies its records and commits before it answers 2xx, so the answer
means the write is on disk and a batch went in whole. When the lock stays busy (a full rebuild,
most often) the records are checked, appended to the journal (journal.py, fsync'd) and the
answer is 202 "queued": the rebuild applies them to its new generation before switching to it,
or a server applies them as soon as it can take the lock. Engine work runs in a worker thread.
"""

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
import orjson
from fastapi import FastAPI, Path, Query, Request
from pydantic import TypeAdapter, ValidationError
from starlette.requests import ClientDisconnect

from search_service.config import IndexConfig
from search_service.errors import (
    IndexLockedError,
    InvalidArticleError,
    InvalidJSONError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceError,
    TooManyRejectsError,
    UnsupportedMediaTypeError,
    json_path,
    storage_error,
)
from search_service.http.common import JSON, require_admin
from search_service.http.models import BatchOut, DeleteIn, DeleteOut, ErrorOut, WriteOut
from search_service.http.observability import WRITE_BATCHES, WRITE_COMMIT, WRITE_RECORDS, WRITE_STATE, write_floor
from search_service.index.indexer import Indexer
from search_service.index.journal import Entry, Journal
from search_service.index.report import Hooks, ImportReport, IndexerOptions, Reject
from search_service.index.store import IndexStore
from search_service.ingest.sources import Item, read_lines
from search_service.settings import Settings

log = logging.getLogger("search_service.writes")

JSON_TYPE = "application/json"
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
SOURCE = "<request>"
# After a body passes the limit, this many times the limit more is read and thrown away, so that
# a client still sending gets the 413 instead of a reset connection; beyond it the connection goes.
DRAIN_FACTOR = 4

WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    202: {"description": "Accepted durably into the journal while another writer held the index (queued)"},
    400: {"model": ErrorOut, "description": "The body is not valid JSON (or JSON Lines)"},
    401: {"model": ErrorOut, "description": "Missing or wrong admin key"},
    404: {"model": ErrorOut, "description": "Unknown slug, or the write API is disabled (no SEARCH_ADMIN_KEY)"},
    413: {"model": ErrorOut, "description": "Body over SEARCH_MAX_WRITE_MB, or more than SEARCH_MAX_WRITE_RECORDS"},
    415: {"model": ErrorOut, "description": "Content-Type is not one the call accepts"},
    422: {"model": ErrorOut, "description": "The article (or batch) is invalid; the message says what to fix"},
    503: {"model": ErrorOut, "description": "No usable index, or the write could not be stored (Retry-After)"},
    507: {"model": ErrorOut, "description": "The index's file system is full: nothing was written (Retry-After)"},
}
_SLUGS = TypeAdapter(DeleteIn)


def _body_doc(*types: str, description: str) -> dict[str, Any]:
    """OpenAPI for a body the route reads itself (streamed, size-limited), not through FastAPI."""
    schema = {"type": "object", "description": description}
    return {"requestBody": {"required": True, "content": {t: {"schema": schema} for t in types}}}


@dataclass
class WriteRun:
    """What one write did: the Indexer's counts, its rejects, and how many records were journaled."""

    report: ImportReport
    rejects: list[Reject] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    queued: int = 0
    seconds: float = 0.0

    @property
    def outcome(self) -> str:
        return "queued" if self.queued else "committed"

    def result(self) -> str:
        """What happened to the one article of a PUT."""
        report = self.report
        if self.queued:
            return "queued"
        if report.new or report.updated:
            return "created" if report.new else "updated"
        return "stale" if report.stale else "unchanged"


class RejectedBatch(TooManyRejectsError):
    """More rejects than max_rejects: nothing was written; carries the rejects for the response."""

    def __init__(self, message: str, rejects: list[Reject]) -> None:
        super().__init__(message)
        self.rejects = rejects


class ArticleWriter:
    """Applies writes through Indexer under the store's lock, or journals them when it stays busy."""

    def __init__(self, settings: Settings, config: IndexConfig, on_commit: Callable[[], None]) -> None:
        self.settings = settings
        self.config = config
        self.store = IndexStore(settings.index_dir)
        self.journal = Journal(settings.index_dir)
        self.on_commit = on_commit

    def upsert(self, op: str, items: list[Item], force: bool, max_rejects: int | None) -> WriteRun:
        rejects: list[Reject] = []
        indexer = self._indexer(Hooks(on_reject=rejects.append, on_journal=_journal_applied), max_rejects)
        started = time.perf_counter()
        try:
            try:
                run = WriteRun(indexer.upsert_records(items, force), rejects)
            except IndexLockedError:
                rejects.clear()
                accepted, report = indexer.check_records(items)
                if accepted:
                    self._append("upsert", accepted, force)
                run = WriteRun(report, rejects, queued=len(accepted))
        except TooManyRejectsError as exc:
            raise RejectedBatch(exc.message.replace("max rejects", "max_rejects"), rejects) from None
        return self._finish(op, run, started)

    def delete(self, op: str, slugs: list[str]) -> WriteRun:
        missing: list[str] = []
        indexer = self._indexer(Hooks(on_missing=missing.append, on_journal=_journal_applied))
        started = time.perf_counter()
        try:
            run = WriteRun(indexer.delete(slugs), missing=missing)
        except IndexLockedError:
            unique = list(dict.fromkeys(slugs))
            self._append("delete", unique)
            run = WriteRun(ImportReport("delete", read=len(unique)), queued=len(unique))
        return self._finish(op, run, started)

    def apply_journal(self) -> ImportReport | None:
        """Apply journaled writes now if the lock is free (IndexLockedError if not); None if none were pending."""
        indexer = self._indexer(Hooks(on_journal=_journal_applied), wait=False)
        report = indexer.apply_journal()
        if report is not None:
            self.on_commit()
        return report

    def _indexer(self, hooks: Hooks, max_rejects: int | None = None, wait: bool = True) -> Indexer:
        # Writes already queued mean the lock has been busy for a while (a rebuild): queue at once
        # rather than make every webhook wait out the lock first.
        waits = wait and not self.journal.names()
        options = IndexerOptions(
            heap_bytes=self.settings.writer_heap_mb * 1024 * 1024,
            threads=self.settings.writer_threads,
            max_rejects=max_rejects,
            lock_wait_s=self.settings.write_lock_wait_s if waits else 0.0,
            defer_to_waiting=True,  # a CLI reindex or delete waiting for the lock goes next: journal meanwhile
            min_free_bytes=write_floor(self.settings),
            migrate=False,
            record_runs=False,
        )
        return Indexer(self.store, self.config, options, hooks)

    def _append(self, op: str, values: list[Any], force: bool = False) -> None:
        self.store.check_free_space(write_floor(self.settings))
        try:
            self.journal.append(op, values, force)
        except OSError as exc:
            raise storage_error(
                f"could not store the write in {self.journal.dir}; nothing was accepted", self.store.root, exc
            ) from exc

    def _finish(self, op: str, run: WriteRun, started: float) -> WriteRun:
        run.seconds = time.perf_counter() - started
        if not run.queued:
            self.on_commit()
            WRITE_COMMIT.labels(op).observe(run.seconds)
        # The request itself is counted and logged once, by outcome, by the middleware (observability.py).
        report = run.report
        for result, count in (
            ("created", report.new),
            ("updated", report.updated),
            ("unchanged", report.unchanged),
            ("stale", report.stale),
            ("rejected", report.rejected),
            ("deleted", report.deleted),
            ("missing", len(run.missing)),
            ("queued", run.queued),
        ):
            if count:
                WRITE_RECORDS.labels(result).inc(count)
        return run


def _journal_applied(entry: Entry, counts: ImportReport) -> None:
    WRITE_BATCHES.labels(f"journal_{entry.op}", "applied").inc()
    WRITE_RECORDS.labels("applied").inc(counts.indexed + counts.deleted)
    fields = {"entry": entry.name, "op": entry.op, **_counts(counts)}
    log.info("journal entry applied", extra={"fields": fields})


def _counts(report: ImportReport) -> dict[str, int]:
    return {
        "read": report.read - report.skipped,
        "created": report.new,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "stale": report.stale,
        "rejected": report.rejected,
        "deleted": report.deleted,
    }


# -- reading request bodies ---------------------------------------------------------------------


def media_type(request: Request, accepted: tuple[str, ...]) -> str:
    raw = request.headers.get("content-type", "")
    kind, _, params = raw.partition(";")
    kind = kind.strip().lower()
    charset = next((p.split("=", 1)[1].strip().strip('"').lower() for p in params.split(";") if "charset=" in p), None)
    if kind not in accepted:
        given = f"{raw[:80]!r}" if raw else "none"
        raise UnsupportedMediaTypeError(f"Content-Type {given} is not accepted here: send {' or '.join(accepted)}")
    if charset not in (None, "utf-8", "utf8"):
        raise UnsupportedMediaTypeError(f"charset {charset!r} is not accepted: JSON bodies are UTF-8")
    return kind


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read as it arrives and refused (413) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > limit
    body, seen = bytearray(), 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if too_large or seen > limit:
                too_large, body = True, bytearray()  # what arrives from now on is only counted, then dropped
                if seen > (DRAIN_FACTOR + 1) * limit:
                    break
                continue
            body += chunk
    except ClientDisconnect:
        raise InvalidJSONError("the client went away before the body was complete") from None
    if too_large:
        raise PayloadTooLargeError(
            f"the body is larger than {limit / 2**20:g} MB (SEARCH_MAX_WRITE_MB): split the batch into smaller ones"
        )
    if not body.strip():
        raise InvalidJSONError("the body is empty: send the article(s) as JSON")
    return bytes(body)


def loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSONError(f"the body is not valid JSON: {exc}") from None


def _reject_out(reject: Reject, position: str) -> dict[str, Any]:
    reason = reject.reason
    if position == "index":  # the Indexer numbers positions as lines; in an array they are indexes
        reason = reason.replace("first seen on line ", "first seen at index ")
    return {position: reject.line, "slug": reject.slug, "reason": reason}


# -- routes -------------------------------------------------------------------------------------


def add_write_routes(app: FastAPI, settings: Settings, config: IndexConfig) -> None:
    """PUT/POST/DELETE of articles, and a task per worker applying journaled writes when it can."""

    limit = int(settings.max_write_mb * 1024 * 1024)
    Force = Annotated[
        bool,
        Query(description="Write even when older than the stored article (updated_at) or unchanged.", examples=[False]),
    ]
    Slug = Annotated[str, Path(max_length=200, examples=["reuters-1-bahia-cocoa-review"])]

    def writer() -> ArticleWriter:
        return app.state.writer

    _wrap_lifespan(app, settings, config)

    @app.put(
        "/articles/{slug}",
        response_model=WriteOut,
        responses=WRITE_ERRORS,
        summary="Create or replace one article (admin)",
        openapi_extra=_body_doc(JSON_TYPE, description="One article in the import format."),
    )
    async def put_article(request: Request, slug: Slug, force: Force = False) -> JSON:
        require_admin(request, settings)
        media_type(request, (JSON_TYPE,))
        record = loads(await read_body(request, limit))
        if not isinstance(record, dict):
            raise InvalidArticleError(f"the body must be one article, a JSON object; got {_json_kind(record)}")
        given = record.get("slug")
        if given is None:
            record = {**record, "slug": slug}  # the path names the article when the body does not
        elif given != slug:
            raise InvalidArticleError(f"slug: the body says {str(given)[:80]!r} but the path says {slug!r}")
        run = await anyio.to_thread.run_sync(writer().upsert, "put", [Item(SOURCE, 1, record)], force, None)
        if run.rejects:
            raise InvalidArticleError(run.rejects[0].reason)
        _record(request, run, slug=slug)
        result = run.result()
        status = {"queued": 202, "created": 201}.get(result, 200)
        return JSON({"slug": slug, "result": result}, status_code=status)

    @app.post(
        "/articles",
        response_model=BatchOut,
        responses=WRITE_ERRORS,
        summary="Create or replace a batch of articles, applied whole (admin)",
        openapi_extra=_body_doc(
            JSON_TYPE, *NDJSON_TYPES, description="A JSON array of articles, or one article per line (JSON Lines)."
        ),
    )
    async def post_articles(
        request: Request,
        force: Force = False,
        max_rejects: Annotated[
            int | None,
            Query(
                ge=0, description="Refuse the whole batch (422, nothing written) past this many rejects.", examples=[0]
            ),
        ] = None,
    ) -> JSON:
        require_admin(request, settings)
        kind = media_type(request, (JSON_TYPE, *NDJSON_TYPES))
        body = await read_body(request, limit)
        if kind == JSON_TYPE:
            records = loads(body)
            if not isinstance(records, list):
                raise InvalidArticleError(
                    f"a batch is a JSON array of articles, got {_json_kind(records)} "
                    "(send one article with PUT /articles/{slug}, or JSON Lines as application/x-ndjson)"
                )
            items, position = [Item(SOURCE, index, value) for index, value in enumerate(records)], "index"
        else:
            items, position = list(read_lines(body, SOURCE)), "line"
        count = sum(1 for item in items if not item.skipped)
        if count > settings.max_write_records:
            raise PayloadTooLargeError(
                f"{count:,} records in one batch; at most {settings.max_write_records:,} (SEARCH_MAX_WRITE_RECORDS)"
            )
        try:
            run = await anyio.to_thread.run_sync(writer().upsert, "batch", items, force, max_rejects)
        except RejectedBatch as exc:
            setattr(request.state, WRITE_STATE, {"outcome": exc.code, "rejected": len(exc.rejects)})
            error = {"code": exc.code, "message": exc.message}
            return JSON({"error": error, "rejected": [_reject_out(r, position) for r in exc.rejects]}, status_code=422)
        out = _counts(run.report)
        del out["deleted"]
        out = {**out, "indexed": run.report.indexed, "queued": run.queued}
        out["rejected"] = [_reject_out(r, position) for r in run.rejects]
        _record(request, run)
        return JSON(out, status_code=202 if run.queued else 200)

    @app.delete(
        "/articles/{slug}", response_model=WriteOut, responses=WRITE_ERRORS, summary="Delete one article (admin)"
    )
    async def delete_article(request: Request, slug: Slug) -> JSON:
        require_admin(request, settings)
        run = await anyio.to_thread.run_sync(writer().delete, "delete", [slug])
        if run.queued or run.report.deleted:
            _record(request, run, slug=slug)
        if run.queued:
            return JSON({"slug": slug, "result": "queued"}, status_code=202)
        if not run.report.deleted:
            raise NotFoundError(f"no article with slug {slug!r}")
        return JSON({"slug": slug, "result": "deleted"})

    @app.post(
        "/articles/delete",
        response_model=DeleteOut,
        responses=WRITE_ERRORS,
        summary="Delete articles by slug (admin)",
        openapi_extra=_body_doc(JSON_TYPE, description='{"slugs": ["slug-1", "slug-2"]}'),
    )
    async def delete_articles(request: Request) -> JSON:
        require_admin(request, settings)
        media_type(request, (JSON_TYPE,))
        try:
            slugs = _SLUGS.validate_python(loads(await read_body(request, limit))).slugs
        except ValidationError as exc:
            found = "; ".join(f"{json_path(p['loc']) or 'body'}: {p['msg']}" for p in exc.errors())
            raise InvalidArticleError(f'{found} (send {{"slugs": ["slug-1", ...]}})') from None
        if len(slugs) > settings.max_write_records:
            raise PayloadTooLargeError(
                f"{len(slugs):,} slugs in one request; at most {settings.max_write_records:,} "
                "(SEARCH_MAX_WRITE_RECORDS)"
            )
        run = await anyio.to_thread.run_sync(writer().delete, "delete_batch", slugs)
        _record(request, run)
        out = {"read": run.report.read, "deleted": run.report.deleted, "queued": run.queued, "missing": run.missing}
        return JSON(out, status_code=202 if run.queued else 200)


def _wrap_lifespan(app: FastAPI, settings: Settings, config: IndexConfig) -> None:
    """Run the app's own lifespan, with the writer on app.state and the journal applier beside it."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            app.state.writer = ArticleWriter(settings, config, on_commit=lambda: app.state.engine.reader.refresh())
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_apply_journal_forever, app.state.writer, settings.journal_poll_s)
                try:
                    yield state
                finally:
                    tasks.cancel_scope.cancel()

    app.router.lifespan_context = lifespan


async def _apply_journal_forever(writer: ArticleWriter, interval: float) -> None:
    """Journaled writes (queued during a rebuild, or left by a crash) go in as soon as the lock is free."""
    while True:
        if writer.journal.names():
            try:
                await anyio.to_thread.run_sync(writer.apply_journal)
            except IndexLockedError:
                pass  # a rebuild or another worker is writing: it applies them, or we do next time
            except ServiceError as exc:
                log.warning("journal not applied", extra={"fields": {"error": exc.message}})
            except Exception:  # a bug: keep the loop (and the queued writes) alive, tell the operator
                log.exception("journal not applied")
        await anyio.sleep(interval)


def _record(request: Request, run: WriteRun, **extra: Any) -> None:
    """What the write did, for its one count and log line (observability.account_write)."""
    fields = {
        "outcome": run.outcome,
        **extra,
        **_counts(run.report),
        "missing": len(run.missing),
        "queued": run.queued,
        "journal": run.report.journal,
        "took_ms": round(run.seconds * 1000, 3),
    }
    setattr(request.state, WRITE_STATE, fields)


def _json_kind(value: Any) -> str:
    return {list: "an array", dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
