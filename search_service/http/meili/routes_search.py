"""Search routes: POST /multi-search, GET and POST /indexes/{uid}/search, POST /indexes/{uid}/facet-search."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request

from search_service.http.common import JSON
from search_service.http.meili.auth import NO_RULES, search_key
from search_service.http.meili.errors import bad_request, index_not_found, require_articles
from search_service.http.meili.params import IndexUid
from search_service.http.meili.search import facet_search, search
from search_service.http.meili.state import MeiliState
from search_service.http.routes.writes import JSON_TYPE, loads, media_type, read_body
from search_service.settings import Settings

# Search bodies are small: a generous bound that keeps a runaway client from filling memory.
MAX_SEARCH_BODY = 1024 * 1024
# Query parameters of GET search that hold arrays as comma-separated strings, and booleans.
_BOOLEANS = ("showRankingScore", "showMatchesPosition", "showRankingScoreDetails")


async def json_object(request: Request) -> Any:
    media_type(request, (JSON_TYPE,))
    return loads(await read_body(request, MAX_SEARCH_BODY))


def with_rules(rules: Any, given: Any) -> list[Any]:
    """A tenant token's filter ANDed with the search's own (both strings or arrays)."""
    own = given if isinstance(given, list) else [given] if given not in (None, "") else []
    theirs = rules if isinstance(rules, list) else [rules]
    return [*theirs, *own]


def search_router(settings: Settings) -> APIRouter:
    router = APIRouter()

    def state(request: Request) -> MeiliState:
        return request.app.state.meili

    async def run(request: Request, params: Any, function: Any = search, *shared: Any) -> dict[str, Any]:
        rules = search_key(request, settings)
        if not isinstance(params, dict):
            raise bad_request("bad_request", "The search body must be a JSON object.")
        if rules is not NO_RULES and rules not in (None, "", []):
            params = {**params, "filter": with_rules(rules, params.get("filter"))}
        meili = state(request)
        return await anyio.to_thread.run_sync(function, meili.engine, meili.schema, settings, params, *shared)

    @router.post("/indexes/{uid}/search", summary="Search (Meilisearch)")
    async def post_search(request: Request, uid: IndexUid) -> JSON:
        require_articles(uid)
        return JSON(await run(request, await json_object(request)))

    @router.get("/indexes/{uid}/search", summary="Search with query parameters (Meilisearch)")
    async def get_search(request: Request, uid: IndexUid) -> JSON:
        require_articles(uid)
        params: dict[str, Any] = dict(request.query_params)
        for name in _BOOLEANS:
            if name in params:
                params[name] = params[name].lower() == "true"
        return JSON(await run(request, params))

    @router.post("/indexes/{uid}/facet-search", summary="Search a facet's values (Meilisearch)")
    async def post_facet_search(request: Request, uid: IndexUid) -> JSON:
        require_articles(uid)
        return JSON(await run(request, await json_object(request), facet_search))

    @router.post("/multi-search", summary="Several searches in one request (Meilisearch)")
    async def multi_search(request: Request) -> JSON:
        body = await json_object(request)
        search_key(request, settings)
        if not isinstance(body, dict) or not isinstance(body.get("queries"), list):
            raise bad_request("invalid_multi_search_queries", 'The body must be {"queries": [...]}.')
        if body.get("federation") is not None:
            raise bad_request(
                "invalid_multi_search_federation", "Federated search is not supported: there is one index."
            )
        results = []
        plans: dict = {}  # instant-meilisearch repeats the words with other filters: planned once
        for position, query in enumerate(body["queries"]):
            if not isinstance(query, dict):
                raise bad_request("invalid_multi_search_queries", f"Inside `.queries[{position}]`: expected an object.")
            uid = query.get("indexUid")
            if uid != "articles":
                raise (
                    index_not_found(str(uid))
                    if isinstance(uid, str)
                    else bad_request("missing_index_uid", f"Inside `.queries[{position}]`: missing field `indexUid`.")
                )
            try:
                results.append({"indexUid": uid, **await run(request, query, search, plans)})
            except Exception as exc:
                if hasattr(exc, "message"):
                    exc.message = f"Inside `.queries[{position}]`: {exc.message}"
                raise
        return JSON({"results": results})

    return router
