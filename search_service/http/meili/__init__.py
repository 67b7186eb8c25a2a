"""The Meilisearch API: a faithful subset of Meilisearch's HTTP API over the same engine and write
path, so InstantSearch (instant-meilisearch), the official clients and CMS plugins work unchanged.

Mounted under SEARCH_MEILI_PREFIX (`/meili`); one index, `articles`, primary key `slug`,
documents in the import format, SEARCH_ADMIN_KEY as the master key. docs/meilisearch.md is the
reference: what is supported and what differs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI

from search_service.config import IndexConfig
from search_service.http.meili.routes_documents import documents_router
from search_service.http.meili.routes_index import index_router
from search_service.http.meili.routes_search import search_router
from search_service.http.meili.runner import TaskRunner
from search_service.http.meili.search import Schema
from search_service.http.meili.state import MeiliState, tasks_path
from search_service.http.meili.tasks import TaskStore
from search_service.settings import Settings

# Tasks are looked for this often when none was enqueued in this worker (another worker's, a crash's).
TASK_POLL_S = 0.1


def add_meili_routes(app: FastAPI, settings: Settings, config: IndexConfig) -> None:
    prefix = settings.meili_prefix
    tags = ["meilisearch"]
    app.include_router(search_router(settings), prefix=prefix, tags=tags)
    app.include_router(documents_router(settings), prefix=prefix, tags=tags)
    app.include_router(index_router(settings, config), prefix=prefix, tags=tags)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            engine = app.state.engine
            store = TaskStore(tasks_path(settings))
            runner = TaskRunner(store, app.state.writer, engine, TASK_POLL_S)
            app.state.meili = MeiliState(engine, Schema.from_config(config, engine), store, runner)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(runner.run_forever)
                try:
                    yield state
                finally:
                    tasks.cancel_scope.cancel()

    app.router.lifespan_context = lifespan
