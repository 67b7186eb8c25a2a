"""The HTTP API: a thin FastAPI layer over SearchEngine. Parameters in, plain dicts out as JSON."""

import gc
import hmac
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .analytics import ANALYTICS_HEADER, Analytics
from .analytics_routes import add_analytics_routes
from .article import MAX_DATE, MIN_DATE
from .config import IndexConfig, load_config
from .editorial_api import add_editorial_routes
from .errors import InvalidParameterError, NotFoundError, ServiceError, UnauthorizedError
from .fast_query import FastQueryRoute
from .models import (
    ArticleOut,
    ErrorOut,
    FacetValuesOut,
    HealthOut,
    ReadyOut,
    RelatedOut,
    SearchOut,
    SuggestOut,
)
from .observability import RequestMiddleware, configure_logging, metrics_payload
from .pages import add_pages
from .reader import IndexReader
from .search import SearchEngine, SearchRequest, iso
from .settings import Settings
from .store import IndexStore
from .suggest import Suggester
from .writes import add_write_routes

log = logging.getLogger("search_service.api")
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "Not found"},
    422: {"model": ErrorOut, "description": "A parameter is invalid; the message names it"},
    503: {"model": ErrorOut, "description": "No index is available yet"},
}


class JSON(JSONResponse):
    """orjson-encoded JSON; a JSONResponse so OpenAPI shows each route's response model."""

    def init_headers(self, headers: Any = None) -> None:
        super().init_headers(headers)
        # Responses carry article text: never let a browser sniff them into HTML.
        self.raw_headers.append((b"x-content-type-options", b"nosniff"))

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(status: int, code: str, message: str) -> JSON:
    return JSON({"error": {"code": code, "message": message}}, status_code=status)


def fast_get(app: FastAPI) -> Callable[..., Callable[[Endpoint], Endpoint]]:
    """`app.get` with a FastQueryRoute: plain query parameters read without pydantic (fast_query.py)."""

    def get(path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
        def add(endpoint: Endpoint) -> Endpoint:
            app.router.add_api_route(path, endpoint, methods=["GET"], route_class_override=FastQueryRoute, **options)
            return endpoint

        return add

    return get


def create_app(settings: Settings | None = None, config: IndexConfig | None = None) -> FastAPI:
    settings = settings or Settings()
    config = config or load_config(settings.config_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        reader = IndexReader(IndexStore(settings.index_dir), config, settings.reload_interval_s)
        engine = SearchEngine(
            reader, config, settings.max_query_terms, settings.result_cache_size, settings.search_budget_ms,
            now=settings.freshness_now,
        )  # fmt: skip
        app.state.engine = engine
        app.state.analytics = Analytics.from_settings(settings)
        app.state.analytics.start()
        app.state.suggester = Suggester(engine, app.state.analytics.popular)
        # Everything made so far (modules, config, the opened index) lives as long as the worker:
        # out of the collector's generations, it is not rescanned by every full collection.
        gc.collect()
        gc.freeze()
        yield
        gc.unfreeze()
        app.state.analytics.stop()

    app = FastAPI(
        title="News search",
        version=__version__,
        description="Ranked full-text search with highlighted snippets, exact facets, filters and paging.",
        lifespan=lifespan,
        default_response_class=JSON,
    )
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET"])
    app.add_middleware(RequestMiddleware, access_log=settings.access_log)
    _add_error_handlers(app)
    _add_routes(app, settings, config)
    add_editorial_routes(app, settings, config)
    add_write_routes(app, settings, config)
    add_pages(app)
    add_analytics_routes(app, settings, _require_admin)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSON:
        return error_response(exc.status_code, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSON:
        problems = []
        for error in exc.errors():
            location = [str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body")]
            problems.append(f"{'.'.join(location) or 'request'}: {error.get('msg', 'invalid')}")
        return error_response(422, "invalid_parameter", "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSON:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSON:
        # A bug: keep the traceback for the operator, tell the client nothing about internals.
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "the server failed to answer this request")


def parse_when(name: str, value: str | None) -> datetime | None:
    """An ISO date or datetime; UTC when it has no offset."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.combine(date.fromisoformat(text), time()) if len(text) == 10 else datetime.fromisoformat(text)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidParameterError(name, f"{text[:40]!r} is not an ISO date or datetime (like 1987-03-01)") from None
    if not MIN_DATE <= parsed <= MAX_DATE:
        raise InvalidParameterError(name, f"must lie between {MIN_DATE.date()} and {MAX_DATE.date()}")
    return parsed


def _add_routes(app: FastAPI, settings: Settings, config: IndexConfig) -> None:
    facet_names = list(config.facets)
    histogram = config.histogram_field.name if config.histogram_field else None
    all_facets = [*facet_names, *([histogram] if histogram else [])]
    filter_fields = config.filters  # query parameter -> field
    get = fast_get(app)

    Q = Annotated[
        str,
        Query(
            max_length=settings.max_query_chars,
            description='Search-box text: words (all must match), "phrases", -exclude, a OR b, field:word.',
            examples=["oil prices", '"interest rates" -japan'],
        ),
    ]
    Topic = Annotated[list[str], Query(description="Topic filter; repeat to OR values.", examples=[["crude"]])]
    Entity = Annotated[list[str], Query(description="Entity filter; repeat to OR values.", examples=[["USA"]])]
    Lang = Annotated[list[str], Query(description="Language filter (BCP 47 code).", examples=[["en"]])]
    After = Annotated[
        str | None,
        Query(description="Published at or after (ISO date or datetime; UTC if no offset).", examples=["1987-03-01"]),
    ]
    Before = Annotated[
        str | None,
        Query(description="Published before (exclusive; ISO date or datetime).", examples=["1987-04-01"]),
    ]

    def build_request(
        request: Request,
        q: str,
        topic: list[str],
        entity: list[str],
        lang: list[str],
        published_after: str | None,
        published_before: str | None,
        **rest: Any,
    ) -> SearchRequest:
        given = {"topic": topic, "entity": entity, "lang": lang}
        filters: dict[str, tuple[str, ...]] = {}
        for param, f in filter_fields.items():
            values = given.get(param)
            if values is None:
                values = request.query_params.getlist(param)
            if len(values) > settings.max_filter_values:
                raise InvalidParameterError(param, f"at most {settings.max_filter_values} values")
            if values:
                filters[f.name] = tuple(values)
        return SearchRequest(
            q=q,
            filters=filters,
            published_after=parse_when("published_after", published_after),
            published_before=parse_when("published_before", published_before),
            **rest,
        )

    @get("/search", response_model=SearchOut, responses=ERRORS, summary="Ranked search with facets")
    async def search(
        request: Request,
        q: Q = "",
        topic: Topic = [],  # noqa: B006 - FastAPI reads the default, never mutates it
        entity: Entity = [],  # noqa: B006
        lang: Lang = [],  # noqa: B006
        published_after: After = None,
        published_before: Before = None,
        sort: Annotated[
            Literal["relevance", "newest", "oldest"] | None,
            Query(description="Default: relevance with q, newest without.", examples=["newest"]),
        ] = None,
        page: Annotated[int, Query(ge=1, description="Page number, from 1.", examples=[1])] = 1,
        per_page: Annotated[int, Query(ge=1, le=100, description="Hits per page.", examples=[10])] = 10,
        facets: Annotated[
            str,
            Query(description=f"Comma-separated subset of {','.join(all_facets)}.", examples=[",".join(all_facets)]),
        ] = ",".join(all_facets),
        facet_size: Annotated[int, Query(ge=1, le=100, description="Values per facet.", examples=[10])] = 10,
        date_interval: Annotated[
            Literal["year", "month", "week", "day", "auto"],
            Query(
                description="Date histogram bucket size (UTC); auto: the finest with at most 60 buckets "
                "(the interval used is in the response's date_interval).",
                examples=["month"],
            ),
        ] = "month",
        prefix: Annotated[
            bool, Query(description="Also match the last word as a prefix (search-as-you-type).", examples=[True])
        ] = False,
        typos: Annotated[
            bool, Query(description="Tolerate typos (one edit, two in long words).", examples=[True])
        ] = True,
        freshness: Annotated[
            Literal["on", "off"],
            Query(description="off: rank by relevance alone for this request (A/B comparisons).", examples=["off"]),
        ] = "on",
        semantic: Annotated[
            bool,
            Query(
                description="Fuse the ranking with the nearest articles by meaning (when the index has "
                "[semantic] enabled; `off` ranks by the words alone). The response's `semantic` says if it was used.",
                examples=[True],
            ),
        ] = True,
    ) -> JSON:
        if page * per_page > settings.max_page_depth:
            raise InvalidParameterError(
                "page", f"page * per_page may not exceed {settings.max_page_depth:,}; narrow the query instead"
            )
        wanted = tuple(dict.fromkeys(f.strip() for f in facets.split(",") if f.strip()))
        unknown = [f for f in wanted if f not in all_facets]
        if unknown:
            raise InvalidParameterError("facets", f"unknown facet {unknown[0]!r}; allowed: {', '.join(all_facets)}")
        search_request = build_request(
            request, q, topic, entity, lang, published_after, published_before,
            sort=sort, page=page, per_page=per_page, facets=wanted, facet_size=facet_size,
            date_interval=date_interval, prefix=prefix, typos=typos, freshness=freshness == "on",
            semantic=semantic,
        )  # fmt: skip
        result = app.state.engine.search(search_request)
        return JSON(app.state.analytics.record(search_request, result, request.headers.get(ANALYTICS_HEADER)))

    @get("/articles/{slug}", response_model=ArticleOut, responses=ERRORS, summary="One stored article by slug")
    async def article(slug: Annotated[str, Path(max_length=200, examples=["reuters-1-bahia-cocoa-review"])]) -> JSON:
        found = app.state.engine.article(slug)
        if found is None:
            raise NotFoundError(f"no article with slug {slug!r}")
        return JSON(found)

    @get("/articles/{slug}/related", response_model=RelatedOut, responses=ERRORS, summary="Similar articles")
    async def related(
        slug: Annotated[str, Path(max_length=200, examples=["reuters-1-bahia-cocoa-review"])],
        limit: Annotated[int, Query(ge=1, le=50, description="How many similar articles.", examples=[5])] = 5,
    ) -> JSON:
        hits = app.state.engine.related(slug, limit)
        if hits is None:
            raise NotFoundError(f"no article with slug {slug!r}")
        return JSON({"slug": slug, "related": hits})

    @get(
        "/facets/{facet}",
        response_model=FacetValuesOut,
        responses=ERRORS,
        summary="Facet values with counts, for browsing and typeahead",
    )
    async def facet_values(
        request: Request,
        facet: Annotated[str, Path(description=f"One of {', '.join(facet_names)}.", examples=[facet_names[0]])],
        prefix: Annotated[
            str, Query(max_length=200, description="Case-insensitive prefix of the value.", examples=["ja"])
        ] = "",
        size: Annotated[int, Query(ge=1, le=100, description="How many values.", examples=[10])] = 10,
        q: Q = "",
        topic: Topic = [],  # noqa: B006
        entity: Entity = [],  # noqa: B006
        lang: Lang = [],  # noqa: B006
        published_after: After = None,
        published_before: Before = None,
    ) -> JSON:
        if facet not in facet_names:
            raise NotFoundError(f"unknown facet {facet!r}; facets are {', '.join(facet_names)}")
        search_request = build_request(request, q, topic, entity, lang, published_after, published_before)
        return JSON(app.state.engine.facet_values(facet, search_request, prefix.strip(), size))

    @get("/suggest", response_model=SuggestOut, responses=ERRORS, summary="Search-box completions")
    async def suggest(
        q: Annotated[str, Query(max_length=200, description="What has been typed so far.", examples=["opec"])] = "",
        limit: Annotated[int, Query(ge=1, le=10, description="How many completions.", examples=[10])] = 10,
    ) -> JSON:
        return JSON({"q": q, "suggestions": app.state.suggester.suggest(q, limit)})

    @get("/health", response_model=HealthOut, summary="The process is alive")
    async def health() -> JSON:
        return JSON({"status": "ok"})

    @get("/ready", response_model=ReadyOut, responses=ERRORS, summary="The index is open and serving")
    async def ready() -> JSON:
        opened = app.state.engine.reader.current()
        last = opened.generation.last_commit()
        return JSON(
            {
                "status": "ready",
                "documents": opened.index.searcher().num_docs,
                "last_commit": iso(last),
                "config_version": opened.generation.fingerprint,
                "generation": opened.generation.name,
            }
        )

    @get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        payload, content_type = metrics_payload(app.state.engine.reader)
        return Response(payload, media_type=content_type)

    @app.post("/admin/reload", responses=ERRORS, summary="Look for a new index commit now (admin)")
    async def reload(request: Request) -> JSON:
        _require_admin(request, settings)
        app.state.engine.reader.refresh()
        return await ready()


def _require_admin(request: Request, settings: Settings) -> None:
    if not settings.admin_key:
        raise NotFoundError("admin endpoints are disabled: set SEARCH_ADMIN_KEY to enable them")
    given = request.headers.get("authorization", "")
    expected = f"Bearer {settings.admin_key}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise UnauthorizedError("admin endpoints need 'Authorization: Bearer <SEARCH_ADMIN_KEY>'")


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: every worker builds its app from the environment."""
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
