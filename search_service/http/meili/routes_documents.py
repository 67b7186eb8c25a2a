"""Documents and tasks: every write is a durable task (202), applied by the runner in order.

POST   /indexes/articles/documents              add or replace (JSON array or NDJSON)
PUT    /indexes/articles/documents              add or update: merged into the stored article
GET    /indexes/articles/documents              list (offset, limit, fields, filter)
POST   /indexes/articles/documents/fetch        list, parameters in the body (ids too)
GET    /indexes/articles/documents/{slug}       one
DELETE /indexes/articles/documents/{slug}       one
POST   /indexes/articles/documents/delete-batch an array of slugs
POST   /indexes/articles/documents/delete       {"filter": ...}
DELETE /indexes/articles/documents              every article
GET    /tasks, /tasks/{uid}
"""

from __future__ import annotations

from typing import Any

import anyio
import orjson
import tantivy
from fastapi import APIRouter, Request

from search_service.errors import InvalidJSONError, PayloadTooLargeError
from search_service.http.common import JSON
from search_service.http.meili.auth import require_master
from search_service.http.meili.errors import MeiliError, bad_request, require_articles
from search_service.http.meili.params import DocumentId, IndexUid, TaskUid
from search_service.http.meili.search import prebuilt
from search_service.http.meili.state import MeiliState
from search_service.http.meili.tasks import STATUSES, Task
from search_service.http.routes.writes import JSON_TYPE, NDJSON_TYPES, loads, media_type, read_body
from search_service.ingest.sources import read_lines
from search_service.settings import Settings

DEFAULT_LIMIT = 20
# `slug` is the key. strapi-plugin-meilisearch names its own `_meilisearch_id` on every addition:
# accepted so the plugin works, the documents keyed by their slugs all the same (docs/meilisearch.md).
ACCEPTED_PRIMARY_KEYS = (None, "", "slug", "_meilisearch_id")


def accepted(task: Task) -> JSON:
    return JSON(task.summary(), status_code=202)


def documents_router(settings: Settings) -> APIRouter:
    router = APIRouter()
    limit_bytes = int(settings.max_write_mb * 1024 * 1024)

    def state(request: Request) -> MeiliState:
        return request.app.state.meili

    async def read_json(request: Request) -> Any:
        """A JSON request body (415 for another media type, 413 past the write limit)."""
        media_type(request, (JSON_TYPE,))
        return loads(await read_body(request, limit_bytes))

    async def read_documents(request: Request) -> list[Any]:
        kind = media_type(request, (JSON_TYPE, *NDJSON_TYPES))
        body = await read_body(request, limit_bytes)
        if kind == JSON_TYPE:
            documents = loads(body)
            if isinstance(documents, dict):
                documents = [documents]
            if not isinstance(documents, list):
                raise bad_request("malformed_payload", "The documents must be a JSON array of objects (or one object).")
        else:
            documents = []
            for item in read_lines(body, "<request>"):
                if item.error:
                    raise InvalidJSONError(f"line {item.line}: {item.error}")
                if not item.skipped:
                    documents.append(item.value)
        if len(documents) > settings.max_write_records:
            raise PayloadTooLargeError(
                f"{len(documents):,} documents in one request; at most {settings.max_write_records:,} "
                "(SEARCH_MAX_WRITE_RECORDS): send them in batches"
            )
        return documents

    async def add(request: Request, uid: IndexUid, merge: bool) -> JSON:
        require_articles(uid)
        require_master(request, settings)
        key = request.query_params.get("primaryKey")
        if key not in ACCEPTED_PRIMARY_KEYS:
            raise MeiliError(
                400,
                "index_primary_key_already_exists",
                f"Index `articles` already has a primary key: `slug` (asked for `{key}`).",
            )
        documents = await read_documents(request)
        details = {"receivedDocuments": len(documents), "indexedDocuments": None}
        payload = {"documents": documents, "merge": merge}
        return accepted(
            await anyio.to_thread.run_sync(state(request).enqueue, "documentAdditionOrUpdate", payload, details)
        )

    @router.post("/indexes/{uid}/documents", status_code=202, summary="Add or replace documents (Meilisearch)")
    async def add_documents(request: Request, uid: IndexUid) -> JSON:
        return await add(request, uid, merge=False)

    @router.put("/indexes/{uid}/documents", status_code=202, summary="Add or update documents (Meilisearch)")
    async def update_documents(request: Request, uid: IndexUid) -> JSON:
        return await add(request, uid, merge=True)

    async def delete(
        request: Request, payload: dict[str, Any], details: dict[str, Any], type_: str = "documentDeletion"
    ) -> JSON:
        task = await anyio.to_thread.run_sync(state(request).enqueue, type_, payload, details)
        return accepted(task)

    @router.delete("/indexes/{uid}/documents/{slug}", status_code=202, summary="Delete one document (Meilisearch)")
    async def delete_document(request: Request, uid: IndexUid, slug: DocumentId) -> JSON:
        require_articles(uid)
        require_master(request, settings)
        return await delete(request, {"ids": [slug]}, {"providedIds": 1, "deletedDocuments": None})

    @router.post("/indexes/{uid}/documents/delete-batch", status_code=202, summary="Delete documents by id")
    async def delete_batch(request: Request, uid: IndexUid) -> JSON:
        require_articles(uid)
        require_master(request, settings)
        ids = await read_json(request)
        if not isinstance(ids, list) or not all(isinstance(i, str | int) and not isinstance(i, bool) for i in ids):
            raise bad_request("invalid_document_ids", "The body must be a JSON array of document ids (slugs).")
        return await delete(
            request, {"ids": [str(i) for i in ids]}, {"providedIds": len(ids), "deletedDocuments": None}
        )

    @router.post("/indexes/{uid}/documents/delete", status_code=202, summary="Delete documents by filter")
    async def delete_by_filter(request: Request, uid: IndexUid) -> JSON:
        require_articles(uid)
        require_master(request, settings)
        body = await read_json(request)
        if not isinstance(body, dict) or body.get("filter") in (None, "", []):
            raise bad_request("missing_document_filter", 'Missing field `filter`: send {"filter": "..."}.')
        prebuilt(state(request).schema, body["filter"], "invalid_document_filter")  # refused now, not in the task
        details = {"providedIds": 0, "deletedDocuments": None, "originalFilter": _original(body["filter"])}
        return await delete(request, {"filter": body["filter"]}, details)

    @router.delete("/indexes/{uid}/documents", status_code=202, summary="Delete every document (Meilisearch)")
    async def delete_all(request: Request, uid: IndexUid) -> JSON:
        require_articles(uid)
        require_master(request, settings)
        return await delete(request, {"filter": None}, {"deletedDocuments": None})

    @router.get("/indexes/{uid}/documents/{slug}", summary="One document (Meilisearch)")
    async def get_document(request: Request, uid: IndexUid, slug: DocumentId) -> JSON:
        require_articles(uid)
        require_master(request, settings)
        found = await anyio.to_thread.run_sync(state(request).engine.article, slug)
        if found is None:
            raise MeiliError(404, "document_not_found", f"Document `{slug}` not found.")
        return JSON(_fields(found, _field_list(request.query_params.get("fields"))))

    @router.get("/indexes/{uid}/documents", summary="List documents (Meilisearch)")
    async def get_documents(request: Request, uid: IndexUid) -> JSON:
        require_articles(uid)
        require_master(request, settings)
        params = dict(request.query_params)
        params["fields"] = _field_list(params.get("fields"))
        return JSON(await anyio.to_thread.run_sync(list_documents, state(request), params))

    @router.post("/indexes/{uid}/documents/fetch", summary="List documents, parameters in the body")
    async def fetch_documents(request: Request, uid: IndexUid) -> JSON:
        require_articles(uid)
        require_master(request, settings)
        body = await read_json(request)
        if not isinstance(body, dict):
            raise bad_request("bad_request", "The body must be a JSON object.")
        return JSON(await anyio.to_thread.run_sync(list_documents, state(request), body))

    @router.get("/tasks/{task_uid}", summary="One task (Meilisearch)")
    async def get_task(request: Request, task_uid: TaskUid) -> JSON:
        require_master(request, settings)
        task = await anyio.to_thread.run_sync(state(request).tasks.get, int(task_uid)) if task_uid.isdigit() else None
        if task is None:
            raise MeiliError(404, "task_not_found", f"Task `{task_uid}` not found.")
        return JSON(task.view())

    @router.get("/tasks", summary="Tasks, newest first (Meilisearch)")
    async def get_tasks(request: Request) -> JSON:
        require_master(request, settings)
        params = request.query_params
        limit = _number(params.get("limit"), DEFAULT_LIMIT, "invalid_task_limit")
        start = _number(params.get("from"), None, "invalid_task_from")
        statuses = _field_list(params.get("statuses")) or []
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise bad_request("invalid_task_statuses", f"`{unknown[0]}` is not a status; one of {', '.join(STATUSES)}.")
        types = _field_list(params.get("types")) or []
        uids = [_number(u, None, "invalid_task_uids") for u in _field_list(params.get("uids")) or []]
        indexes = _field_list(params.get("indexUids")) or []
        if indexes and "articles" not in indexes:
            return JSON({"results": [], "total": 0, "limit": limit, "from": start, "next": None})
        tasks, total, following = await anyio.to_thread.run_sync(
            state(request).tasks.list, limit, start, statuses, types, uids
        )
        results = [t.view() for t in tasks]
        return JSON(
            {
                "results": results,
                "total": total,
                "limit": limit,
                "from": results[0]["uid"] if results else None,
                "next": following,
            }
        )

    return router


def list_documents(meili: MeiliState, params: dict[str, Any]) -> dict[str, Any]:
    """Documents in publication order (oldest first), filtered, paged; the ids of `ids` when given."""
    offset = _number(params.get("offset"), 0, "invalid_document_offset")
    limit = _number(params.get("limit"), DEFAULT_LIMIT, "invalid_document_limit")
    fields = params.get("fields")
    if fields is not None and not (isinstance(fields, list) and all(isinstance(f, str) for f in fields)):
        raise bad_request("invalid_document_fields", "`fields` must be an array of attribute names.")
    engine = meili.engine
    searcher = engine.reader.searcher()
    schema, key = engine.schema, engine.config.key_field.name
    clauses = []
    found = prebuilt(meili.schema, params.get("filter"), "invalid_document_filter")
    if found is not None:
        clauses.append((tantivy.Occur.Must, found.query))
    ids = params.get("ids")
    if ids is not None:
        if not isinstance(ids, list):
            raise bad_request("invalid_document_ids", "`ids` must be an array of document ids.")
        terms = [(tantivy.Occur.Should, tantivy.Query.term_query(schema, key, str(i))) for i in ids]
        clauses.append((tantivy.Occur.Must, tantivy.Query.boolean_query(terms)))
    query = tantivy.Query.boolean_query(clauses) if clauses else tantivy.Query.all_query()
    date_field = engine.date_field
    result = searcher.search(
        query, max(limit, 1), count=True, offset=offset, order_by_field=date_field, order=tantivy.Order.Asc
    )
    slugs = [searcher.doc(address).get_first(key) for _, address in result.hits][:limit]
    documents = [_fields(doc, fields) for doc in map(engine.article, slugs) if doc is not None]
    return {"results": documents, "offset": offset, "limit": limit, "total": result.count}


def _fields(document: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields or "*" in fields:
        return document
    return {k: v for k, v in document.items() if k in fields}


def _field_list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _number(value: Any, default: int | None, code: str) -> Any:
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise bad_request(code, f"Invalid value `{value}`: expected a positive integer.")


def _original(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()
