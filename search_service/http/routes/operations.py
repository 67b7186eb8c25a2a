"""The operator's routes: liveness, readiness, Prometheus metrics and a forced reload."""

from fastapi import FastAPI, Request
from fastapi.responses import Response

from search_service.http.common import ERRORS, JSON, fast_get, require_admin
from search_service.http.models import HealthOut, ReadyOut
from search_service.http.observability import metrics_payload
from search_service.search.engine import iso
from search_service.settings import Settings


def add_operations_routes(app: FastAPI, settings: Settings) -> None:
    get = fast_get(app)

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
        require_admin(request, settings)
        app.state.engine.reader.refresh()
        return await ready()
