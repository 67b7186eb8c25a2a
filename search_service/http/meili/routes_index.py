"""Health, version, the one index, stats and settings, as Meilisearch answers them.

There is one index, `articles`: it always exists. Creating it (or any other) is a task that
fails (`index_already_exists`, or `index_creation_failed` naming the one index); deleting it is
an `indexDeletion` task that deletes every article (admin key; the index stays, empty).
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request

from search_service import __version__
from search_service.config import IndexConfig
from search_service.http.common import JSON
from search_service.http.meili.auth import require_master
from search_service.http.meili.errors import MeiliError, bad_request, index_not_found, require_articles
from search_service.http.meili.params import IndexUid, SettingName
from search_service.http.meili.routes_documents import accepted
from search_service.http.meili.routes_search import json_object
from search_service.http.meili.settings_view import ROUTES, check_change, fixed_settings, synonym_groups, synonyms_out
from search_service.http.meili.state import MeiliState, file_time
from search_service.http.routes.editorial import synonym_limits
from search_service.settings import Settings

# The Meilisearch API version whose subset this answers (docs/meilisearch.md).
API_VERSION = "1.12.0"
IMPORT_FIELDS = (
    "slug", "title", "summary", "body_md", "url", "canonical_source", "published_at", "updated_at",
    "lang", "topics", "entities", "alternates",
)  # fmt: skip


def index_router(settings: Settings, config: IndexConfig) -> APIRouter:
    router = APIRouter()

    def state(request: Request) -> MeiliState:
        return request.app.state.meili

    def index_view(meili: MeiliState) -> dict[str, Any]:
        reader = meili.engine.reader
        try:
            path = reader.current().generation.path
        except Exception:  # no index yet: it exists, empty
            path = None
        created = file_time(settings.index_dir) or file_time(meili.tasks.path)
        updated = file_time(path / "meta.json") if path else created
        return {"uid": "articles", "primaryKey": "slug", "createdAt": created, "updatedAt": updated or created}

    def index_stats(meili: MeiliState) -> dict[str, Any]:
        try:
            count = meili.engine.reader.searcher().num_docs
        except Exception:
            count = 0
        return {
            "numberOfDocuments": count,
            "isIndexing": meili.tasks.pending(),
            "fieldDistribution": {name: count for name in IMPORT_FIELDS} if count else {},
        }

    @router.get("/health", summary="Health (Meilisearch)")
    async def health() -> JSON:
        return JSON({"status": "available"})

    @router.get("/version", summary="Version (Meilisearch)")
    async def version(request: Request) -> JSON:
        require_master(request, settings)
        return JSON({"commitSha": f"search-service-{__version__}", "commitDate": "unknown", "pkgVersion": API_VERSION})

    @router.get("/indexes", summary="The one index (Meilisearch)")
    async def indexes(request: Request) -> JSON:
        require_master(request, settings)
        view = await anyio.to_thread.run_sync(index_view, state(request))
        return JSON({"results": [view], "offset": 0, "limit": 20, "total": 1})

    @router.get("/indexes/{uid}", summary="The articles index (Meilisearch)")
    async def get_index(request: Request, uid: IndexUid) -> JSON:
        require_master(request, settings)
        require_articles(uid)
        return JSON(await anyio.to_thread.run_sync(index_view, state(request)))

    @router.post("/indexes", status_code=202, summary="Create an index: a task that fails (one fixed index)")
    async def create_index(request: Request) -> JSON:
        require_master(request, settings)
        body = await json_object(request)
        uid = body.get("uid") if isinstance(body, dict) else None
        if not isinstance(uid, str):
            raise bad_request("missing_index_uid", "Missing field `uid`.")
        if uid == "articles":
            failure = {"code": "index_already_exists", "message": "Index `articles` already exists."}
        else:
            failure = {
                "code": "index_creation_failed",
                "message": f"Index `{uid}` cannot be created: this service serves one index, `articles`.",
            }
        task = state(request).enqueue("indexCreation", {"fail": failure}, {"primaryKey": body.get("primaryKey")})
        return accepted(task)

    @router.patch("/indexes/{uid}", status_code=202, summary="Update the index: only primaryKey `slug`")
    async def update_index(request: Request, uid: IndexUid) -> JSON:
        require_master(request, settings)
        require_articles(uid)
        body = await json_object(request)
        key = body.get("primaryKey") if isinstance(body, dict) else None
        if key not in (None, "slug"):
            raise MeiliError(
                400, "index_primary_key_already_exists", "Index `articles` already has a primary key: `slug`."
            )
        return accepted(state(request).enqueue("indexUpdate", {}, {"primaryKey": "slug"}))

    @router.delete("/indexes/{uid}", status_code=202, summary="Delete the index: deletes every article (admin)")
    async def delete_index(request: Request, uid: IndexUid) -> JSON:
        require_master(request, settings)
        if uid != "articles":
            raise index_not_found(uid)
        return accepted(state(request).enqueue("indexDeletion", {"filter": None}, {"deletedDocuments": None}))

    @router.get("/stats", summary="Stats (Meilisearch)")
    async def stats(request: Request) -> JSON:
        require_master(request, settings)
        meili = state(request)
        view, counts = await anyio.to_thread.run_sync(lambda: (index_view(meili), index_stats(meili)))
        size = (
            sum(p.stat().st_size for p in settings.index_dir.rglob("*") if p.is_file())
            if settings.index_dir.exists()
            else 0
        )
        return JSON(
            {
                "databaseSize": size,
                "usedDatabaseSize": size,
                "lastUpdate": view["updatedAt"],
                "indexes": {"articles": counts},
            }
        )

    @router.get("/indexes/{uid}/stats", summary="Index stats (Meilisearch)")
    async def stats_one(request: Request, uid: IndexUid) -> JSON:
        require_master(request, settings)
        require_articles(uid)
        return JSON(await anyio.to_thread.run_sync(index_stats, state(request)))

    # -- settings -------------------------------------------------------------------------------

    def current(meili: MeiliState) -> dict[str, Any]:
        groups = meili.engine.editorial.store.read("synonyms").items
        return {**fixed_settings(config, settings), "synonyms": synonyms_out(groups)}

    def update(request: Request, changes: dict[str, Any]) -> JSON:
        meili = state(request)
        now = current(meili)
        payload: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "synonyms":
                editorial = meili.engine.editorial
                payload["synonyms"] = synonym_groups(value, synonym_limits(settings), editorial.tokenize)
            else:
                check_change(key, value, now)
        return accepted(meili.enqueue("settingsUpdate", payload, changes))

    @router.get("/indexes/{uid}/settings", summary="Settings (Meilisearch)")
    async def get_settings(request: Request, uid: IndexUid) -> JSON:
        require_master(request, settings)
        require_articles(uid)
        return JSON(current(state(request)))

    @router.patch("/indexes/{uid}/settings", status_code=202, summary="Update settings: synonyms (Meilisearch)")
    async def patch_settings(request: Request, uid: IndexUid) -> JSON:
        require_master(request, settings)
        require_articles(uid)
        body = await json_object(request)
        if not isinstance(body, dict):
            raise bad_request("bad_request", "The settings must be a JSON object.")
        return update(request, body)

    @router.delete("/indexes/{uid}/settings", status_code=202, summary="Reset settings: no synonyms")
    async def reset_settings(request: Request, uid: IndexUid) -> JSON:
        require_master(request, settings)
        require_articles(uid)
        return update(request, {"synonyms": None})

    @router.get("/indexes/{uid}/settings/{name}", summary="One setting (Meilisearch)")
    async def get_setting(request: Request, uid: IndexUid, name: SettingName) -> JSON:
        require_master(request, settings)
        require_articles(uid)
        key = _setting(name)
        return JSON(current(state(request))[key])

    async def set_setting(request: Request, uid: IndexUid, name: SettingName) -> JSON:
        require_master(request, settings)
        require_articles(uid)
        key = _setting(name)
        return update(request, {key: await json_object(request)})

    @router.delete("/indexes/{uid}/settings/{name}", status_code=202, summary="Reset one setting")
    async def reset_setting(request: Request, uid: IndexUid, name: SettingName) -> JSON:
        require_master(request, settings)
        require_articles(uid)
        return update(request, {_setting(name): None})

    for method in ("PUT", "PATCH"):  # clients use either, depending on the setting
        path = "/indexes/{uid}/settings/{name}"
        router.add_api_route(path, set_setting, methods=[method], status_code=202, name=f"{method.lower()}_setting")
    return router


def _setting(name: str) -> str:
    key = ROUTES.get(name)
    if key is None:
        raise MeiliError(404, "not_found", f"Unknown setting `{name}`: one of {', '.join(ROUTES)}.")
    return key
