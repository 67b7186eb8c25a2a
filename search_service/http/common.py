"""What every route module shares: the JSON response, the error body, the admin check, dates in parameters."""

import hmac
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from search_service.errors import InvalidParameterError, NotFoundError, UnauthorizedError
from search_service.http.fast_query import FastQueryRoute
from search_service.http.models import ErrorOut
from search_service.ingest.article import MAX_DATE, MIN_DATE
from search_service.settings import Settings

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


def require_admin(request: Request, settings: Settings) -> None:
    if not settings.admin_key:
        raise NotFoundError("admin endpoints are disabled: set SEARCH_ADMIN_KEY to enable them")
    given = request.headers.get("authorization", "")
    expected = f"Bearer {settings.admin_key}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise UnauthorizedError("admin endpoints need 'Authorization: Bearer <SEARCH_ADMIN_KEY>'")
