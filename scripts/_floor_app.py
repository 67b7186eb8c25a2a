"""The floor for the HTTP benchmark: a bare FastAPI app over the same index, served like the service.

    .venv/bin/python scripts/_floor_app.py --index-dir DIR [--config TOML] [--port 8001] [--workers N]

One `async def` endpoint, GET /search?q=...&topic=...: tantivy's own query parser over the
service's default search fields and boosts (all words required), an optional topic filter, the
top 10 as JSON (slug, title, score). No validation models, planning, typo expansion, snippets or
facets: what is left is uvicorn + FastAPI + one tantivy search + 10 stored documents. It is run
by uvicorn with the same options as `search-service serve` (factory, log level, access log,
graceful shutdown) so the two differ only in the work done per request.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import orjson
import tantivy
from fastapi import FastAPI, Query
from fastapi.responses import Response

from search_service.config import load_config
from search_service.schema import register_analyzers
from search_service.store import IndexStore

ENV_INDEX_DIR = "FLOOR_INDEX_DIR"
ENV_CONFIG = "FLOOR_CONFIG_PATH"


def floor_query(
    index: tantivy.Index, q: str, topics: Sequence[str], fields: list[str], boosts: dict[str, float]
) -> tantivy.Query:
    """tantivy's own query parser over the default search fields, every word required; topics ANDed."""
    if q.strip():
        query, _ = index.parse_query_lenient(q, fields, field_boosts=boosts, conjunction_by_default=True)
    else:
        query = tantivy.Query.all_query()
    if not topics:
        return query
    clauses = [(tantivy.Occur.Must, query)]
    for topic in topics:
        term = tantivy.Query.term_query(index.schema, "topics", topic)
        clauses.append((tantivy.Occur.Must, tantivy.Query.const_score_query(term, 0.0)))
    return tantivy.Query.boolean_query(clauses)


def stored_hits(searcher: tantivy.Searcher, result: tantivy.SearchResult) -> list[dict]:
    hits = []
    for score, address in result.hits:
        doc = searcher.doc(address)
        hits.append({"slug": doc.get_first("slug"), "title": doc.get_first("title"), "score": score})
    return hits


def create_app() -> FastAPI:
    config = load_config(os.environ.get(ENV_CONFIG) or None)
    boosts = config.search_boosts()
    fields = list(boosts)
    state: dict[str, tantivy.Index] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        generation = IndexStore(os.environ[ENV_INDEX_DIR]).current()
        if generation is None:
            raise RuntimeError(f"no index in {os.environ[ENV_INDEX_DIR]}")
        index = tantivy.Index.open(str(generation.path))
        register_analyzers(index, config)
        state["index"] = index
        yield

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/search")
    async def search(q: str = "", topic: Annotated[list[str] | None, Query()] = None) -> Response:
        index = state["index"]
        searcher = index.searcher()
        result = searcher.search(floor_query(index, q, topic or (), fields, boosts), 10)
        body = {"total": result.count, "hits": stored_hits(searcher, result)}
        return Response(orjson.dumps(body), media_type="application/json")

    @app.get("/ready")
    async def ready() -> Response:
        return Response(orjson.dumps({"status": "ready"}), media_type="application/json")

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Bare FastAPI + tantivy floor for scripts/bench_search.")
    parser.add_argument("--index-dir", required=True, help="a service index dir (the one with CURRENT)")
    parser.add_argument("--config", default=None, help="index config (default: index_config/schema.toml)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # Workers are spawned processes that build the app from the environment, like the service's.
    os.environ[ENV_INDEX_DIR] = str(Path(args.index_dir).resolve())
    if args.config:
        os.environ[ENV_CONFIG] = str(Path(args.config).resolve())
    uvicorn.run(
        "_floor_app:create_app",
        factory=True,
        app_dir=str(Path(__file__).resolve().parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        timeout_graceful_shutdown=10,
        log_level="info",
    )


if __name__ == "__main__":
    main()
