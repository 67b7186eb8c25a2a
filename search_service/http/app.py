"""The app factory: settings and config in, a FastAPI app with every route, middleware and handler out."""

import gc
import logging
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from search_service import __version__
from search_service.analytics.recorder import Analytics
from search_service.config import IndexConfig, load_config
from search_service.http.common import JSON
from search_service.http.errors import add_error_handlers
from search_service.http.meili import add_meili_routes
from search_service.http.observability import RequestMiddleware, configure_logging
from search_service.http.routes.analytics import add_analytics_routes
from search_service.http.routes.docs import add_docs
from search_service.http.routes.editorial import add_editorial_routes
from search_service.http.routes.operations import add_operations_routes
from search_service.http.routes.pages import add_pages
from search_service.http.routes.search import add_search_routes
from search_service.http.routes.writes import add_write_routes
from search_service.index.reader import IndexReader
from search_service.index.store import IndexStore
from search_service.search.engine import SearchEngine
from search_service.search.suggest import Suggester
from search_service.settings import Settings

log = logging.getLogger("search_service.index")


def create_app(settings: Settings | None = None, config: IndexConfig | None = None) -> FastAPI:
    settings = settings or Settings()
    config = config or load_config(settings.config_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        reader = IndexReader(IndexStore(settings.index_dir), config, settings.reload_interval_s, warm=True)
        # Open and warm the live generation before serving the first request (index/warm.py).
        await anyio.to_thread.run_sync(_refresh, reader)
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
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_follow_generations, reader, settings.reload_interval_s)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
        gc.unfreeze()
        app.state.analytics.stop()

    app = FastAPI(
        title="News search",
        version=__version__,
        description="Ranked full-text search with highlighted snippets, facet counts (exact, or estimated past "
        "a bound and said so), filters and paging.",
        lifespan=lifespan,
        default_response_class=JSON,
        # /docs and /redoc are served with their assets from an installed package (routes/docs.py), not a CDN.
        docs_url=None,
        redoc_url=None,
    )
    if settings.cors_origins:
        # The Meilisearch clients POST JSON searches with their own headers (preflighted).
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Meilisearch-Client"],
            max_age=600,
        )
    app.add_middleware(RequestMiddleware, access_log=settings.access_log)
    add_error_handlers(app, settings.meili_prefix)
    add_search_routes(app, settings, config)
    add_operations_routes(app, settings)
    add_editorial_routes(app, settings, config)
    add_write_routes(app, settings, config)
    add_pages(app)
    add_docs(app)
    add_analytics_routes(app, settings)
    add_meili_routes(app, settings, config)
    return app


async def _follow_generations(reader: IndexReader, interval: float) -> None:
    """Open and warm a new generation in a thread, off the request path: requests keep the open one
    until the switch (IndexReader.current never waits for a refresh in progress)."""
    while True:
        await anyio.sleep(interval)
        await anyio.to_thread.run_sync(_refresh, reader)


def _refresh(reader: IndexReader) -> None:
    try:
        reader.refresh()
    except Exception:
        log.exception("opening the live index generation failed")


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: every worker builds its app from the environment."""
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
