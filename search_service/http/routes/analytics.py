"""HTTP for search analytics: POST /events (public, from the search page), the admin reports and page."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from search_service.analytics import store
from search_service.analytics.recorder import Analytics
from search_service.errors import (
    IndexNotReadyError,
    NotFoundError,
    PayloadTooLargeError,
    TooManyRequestsError,
    UnavailableError,
)
from search_service.http.common import require_admin
from search_service.http.models import ErrorOut
from search_service.http.routes.pages import PAGE_HEADERS, STATIC_DIR
from search_service.search.engine import SearchEngine, SearchRequest
from search_service.settings import Settings

# A click is about 100 bytes of JSON: anything much larger is not one.
MAX_EVENT_BYTES = 1024
# Events of one worker waiting for their search to reach the database (it may have run on another
# worker, which writes it within a flush interval); more at once are refused rather than queued.
MAX_WAITING = 64
WAIT_STEP_S = 0.2

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in {
        401: "The admin key is missing or wrong",
        404: "Unknown query_id; or analytics (or admin endpoints) are off",
        413: "The body is larger than an event can be",
        422: "The event or a parameter is invalid; the message names it",
        429: "Too many events for this search, or waiting at once",
        503: "Analytics failed on this worker (the database is unusable); searches are unaffected",
    }.items()
}


class EventIn(BaseModel):
    """A reader opened a result (click), or stopped typing at a search-as-you-type search (settle)."""

    model_config = ConfigDict(extra="forbid")

    query_id: str = Field(
        pattern=r"^[0-9a-f]{32}$", description="The query_id of the /search response.", examples=["0" * 32]
    )
    type: Literal["click", "settle"] = Field("click", description="click (needs slug and position) or settle.")
    slug: str | None = Field(None, min_length=1, max_length=200, description="The opened article.")
    position: int | None = Field(
        None, ge=1, le=100_000, description="Its rank in the results, from 1 ((page - 1) * per_page + index + 1)."
    )

    @model_validator(mode="after")
    def _click_names_its_result(self) -> EventIn:
        if self.type == "click" and (self.slug is None or self.position is None):
            raise ValueError("a click needs slug and position")
        if self.type == "settle" and (self.slug is not None or self.position is not None):
            raise ValueError("a settle has no slug or position")
        return self


class EventOut(BaseModel):
    status: Literal["accepted"]


class QueryRow(BaseModel):
    q: str = Field(description="The normalized query (case, accents and spacing folded).")
    count: int = Field(description="Searches (top-queries) or searches that found nothing (no-results).")
    searches: int
    zero_results: int
    clicks: int
    ctr: float = Field(description="Share of searches with at least one opened result.")
    avg_total: float = Field(description="Mean number of articles found.")
    mean_click_position: float | None
    finds_now: int | None = Field(
        None,
        description="no-results only: how many articles the query finds now (new articles, synonyms or rules may "
        "have fixed it since); not in top-queries.",
    )


class QueriesOut(BaseModel):
    since: str | None = Field(description="The window's start; null when none was asked (from the first search).")
    until: str | None = Field(description="The window's end (exclusive); null when none was asked (up to now).")
    rows: list[QueryRow]


class Figures(BaseModel):
    searches: int
    zero_results: int
    zero_result_rate: float
    clicks: int
    clicked_searches: int
    ctr: float
    mean_click_position: float | None


class DayFigures(Figures):
    day: str = Field(examples=["2026-03-01"])


class PositionClicks(BaseModel):
    position: int
    clicks: int


class SummaryOut(Figures):
    since: str | None = Field(description="The window's start; null when none was asked.")
    until: str | None = Field(description="The window's end (exclusive); null when none was asked.")
    days: list[DayFigures]
    positions: list[PositionClicks] = Field(description="Opened results by their rank.")


Since = Annotated[
    str | None,
    Query(max_length=40, description="From: 7d, 12h, 30m, an ISO date or datetime (UTC).", examples=["7d"]),
]
Until = Annotated[
    str | None, Query(max_length=40, description="Before (exclusive), same forms as since.", examples=["2026-03-01"])
]
Limit = Annotated[int, Query(ge=1, le=1000, description="How many rows.", examples=[20])]


def add_analytics_routes(app: FastAPI, settings: Settings) -> None:
    """POST /events, GET /admin/analytics/{top-queries,no-results,summary} and the page /admin/analytics."""
    waiting = {"events": 0}

    def analytics() -> Analytics:
        recorder: Analytics = app.state.analytics
        if recorder.path is None:
            raise NotFoundError("search analytics are off (SEARCH_ANALYTICS=false)")
        if recorder.failure is not None:
            raise UnavailableError(f"search analytics failed on this worker: {recorder.failure}")
        return recorder

    @app.post(
        "/events",
        status_code=202,
        response_model=EventOut,
        responses=ERRORS,
        summary="Record that a reader opened a search result",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": EventIn.model_json_schema()}}}
        },
    )
    async def events(request: Request) -> JSONResponse:
        recorder = analytics()
        event = _parse_event(await _read_body(request))
        seen = recorder.find(event.query_id)
        if seen is None and recorder.in_flight(event.query_id):
            if waiting["events"] >= MAX_WAITING:
                raise TooManyRequestsError("too many events are waiting for their searches; try again later")
            waiting["events"] += 1
            try:
                for _ in range(int((2 * recorder.flush_s + 0.5) / WAIT_STEP_S) + 1):
                    await asyncio.sleep(WAIT_STEP_S)
                    seen = recorder.find(event.query_id)
                    if seen is not None:
                        break
            finally:
                waiting["events"] -= 1
        if seen is None:
            raise NotFoundError(f"unknown query_id {event.query_id}: send the query_id of a /search response")
        recorder.add_event(event.query_id, seen, event.slug, event.position)
        return JSONResponse({"status": "accepted"}, status_code=202)

    def readable(request: Request) -> Analytics:
        require_admin(request, settings)
        return analytics()

    async def report(read: Callable[..., Any], *args: Any) -> Any:
        try:
            return await run_in_threadpool(read, *args)
        except store.AnalyticsUnavailableError as exc:
            raise UnavailableError(str(exc)) from None

    @app.get(
        "/admin/analytics/top-queries", response_model=QueriesOut, responses=ERRORS, summary="Most searched (admin)"
    )
    async def top_queries(request: Request, since: Since = None, until: Until = None, limit: Limit = 20) -> Any:
        recorder = readable(request)
        span = store.window(since, until, time.time())
        rows = await report(store.top_queries, recorder.path, span, limit)
        return JSONResponse({**span.describe(), "rows": rows})

    @app.get(
        "/admin/analytics/no-results", response_model=QueriesOut, responses=ERRORS, summary="Found nothing (admin)"
    )
    async def no_results(request: Request, since: Since = None, until: Until = None, limit: Limit = 20) -> Any:
        recorder = readable(request)
        span = store.window(since, until, time.time())
        rows = await report(store.no_results, recorder.path, span, limit)
        rows = await run_in_threadpool(_with_finds_now, app.state.engine, rows)
        return JSONResponse({**span.describe(), "rows": rows})

    @app.get(
        "/admin/analytics/summary", response_model=SummaryOut, responses=ERRORS, summary="Searches per day (admin)"
    )
    async def summary(request: Request, since: Since = None, until: Until = None) -> Any:
        recorder = readable(request)
        span = store.window(since, until, time.time())
        return JSONResponse(await report(store.summary, recorder.path, span))

    @app.get("/admin/analytics", include_in_schema=False)
    async def page() -> FileResponse:
        # The page asks for the key itself; without a key configured there is nothing for it to show.
        if not settings.admin_key:
            raise NotFoundError("admin endpoints are disabled: set SEARCH_ADMIN_KEY to enable them")
        headers = {**PAGE_HEADERS, "Cache-Control": "no-cache", "X-Robots-Tag": "noindex"}
        return FileResponse(STATIC_DIR / "analytics.html", media_type="text/html", headers=headers)


def _with_finds_now(engine: SearchEngine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each query that found nothing, with what it finds today: fixed ones stand out in the report."""
    out = []
    for row in rows:
        try:
            found = engine.search(SearchRequest(q=row["q"], per_page=1, facets=(), highlight=False))["total"]
        except IndexNotReadyError:
            found = None
        out.append(row | {"finds_now": found})
    return out


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
        raise PayloadTooLargeError(f"an event is at most {MAX_EVENT_BYTES} bytes of JSON")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_EVENT_BYTES:
            raise PayloadTooLargeError(f"an event is at most {MAX_EVENT_BYTES} bytes of JSON")
    return bytes(body)


def _parse_event(body: bytes) -> EventIn:
    """Any content type: navigator.sendBeacon sends a string as text/plain."""
    try:
        return EventIn.model_validate_json(body or b"null")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None
