"""The operator's routes: liveness, readiness, Prometheus metrics and a forced reload."""

from fastapi import FastAPI, Request
from fastapi.responses import Response

from search_service.http.common import ERRORS, JSON, fast_get, require_admin
from search_service.http.models import HealthOut, ReadyOut
from search_service.http.observability import free_bytes, metrics_payload, write_floor
from search_service.index.document import iso
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
        out = {
            "status": "ready",
            "documents": opened.index.searcher().num_docs,
            "last_commit": iso(last),
            "config_version": opened.generation.fingerprint,
            "generation": opened.generation.name,
        }
        reader = app.state.engine.reader
        if reader.damage is not None:  # the live generation is damaged: this is the previous one
            out["status"] = "degraded"
            out["problem"] = reader.problem
        if settings.admin_key:  # searches are served either way: readiness stays 200, writes say why not
            store = app.state.engine.reader.store
            reason = store.write_condition(write_floor(settings))
            free = free_bytes(store.root)
            out["writes"] = {"accepted": reason is None, "reason": reason, "free_bytes": free}
        return JSON(out)

    @get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        payload, content_type = metrics_payload(app.state.engine.reader, write_floor(settings))
        return Response(payload, media_type=content_type)

    @app.post("/admin/reload", responses=ERRORS, summary="Look for a new index commit now (admin)")
    async def reload(request: Request) -> JSON:
        require_admin(request, settings)
        app.state.engine.reader.refresh()
        return await ready()
