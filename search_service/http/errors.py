"""Errors into HTTP responses, in one place: every ServiceError, invalid parameters, unknown routes, bugs.

Under the Meilisearch API's prefix the same failures render as Meilisearch's error object
(http/meili/errors.py), which its clients parse.
"""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from search_service.errors import ServiceError, json_path
from search_service.http.common import JSON, error_response
from search_service.http.meili.errors import http_error_body, meili_error_body, validation_error_body
from search_service.http.observability import ERROR_STATE

log = logging.getLogger("search_service.api")


def add_error_handlers(app: FastAPI, meili_prefix: str | None = None) -> None:
    def meili(request: Request) -> bool:
        path = request.url.path
        return bool(meili_prefix) and (path == meili_prefix or path.startswith(meili_prefix + "/"))

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSON:
        setattr(request.state, ERROR_STATE, exc.code)  # what a write was refused for (observability.py)
        if meili(request):
            response = JSON(*reversed(meili_error_body(exc)))
        else:
            response = error_response(exc.status_code, exc.code, exc.message)
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after is not None:  # a condition that passes (a full disk freed, a busy index): when to try again
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSON:
        problems = []
        for error in exc.errors():
            location = [p for p in error.get("loc", ()) if p not in ("query", "path", "body")]
            problems.append(f"{json_path(location) or 'request'}: {error.get('msg', 'invalid')}")
        setattr(request.state, ERROR_STATE, "invalid_parameter")
        if meili(request):
            return JSON(validation_error_body(problems), status_code=400)
        return error_response(422, "invalid_parameter", "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSON:
        if meili(request):
            return JSON(http_error_body(exc.status_code, str(exc.detail)), status_code=exc.status_code)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        setattr(request.state, ERROR_STATE, code)
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSON:
        # A bug: keep the traceback for the operator, tell the client nothing about internals.
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        setattr(request.state, ERROR_STATE, "internal_error")
        if meili(request):
            return JSON(meili_error_body(exc)[1], status_code=500)
        return error_response(500, "internal_error", "the server failed to answer this request")
