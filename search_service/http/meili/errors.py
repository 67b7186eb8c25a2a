"""Meilisearch's error object (`message`, `code`, `type`, `link`) for everything under the prefix.

Routes raise `MeiliError` with Meilisearch's code; the service's own errors (an invalid body, a
body too large, no index) are given Meilisearch's code for the same failure. `http/errors.py`
calls `meili_error_body` for any error raised under the prefix, so these clients never see the
service's `{"error": ...}` shape, FastAPI's `{"detail"}` or a 500 page.
"""

from __future__ import annotations

from typing import Any

from search_service.errors import (
    IndexNotReadyError,
    IndexWriteError,
    InvalidJSONError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)

LINK = "https://docs.meilisearch.com/errors#"
INDEX_UID = "articles"


class MeiliError(ServiceError):
    """An error with Meilisearch's code and type; `status_code` as Meilisearch answers it."""

    def __init__(self, status: int, code: str, message: str, kind: str = "invalid_request") -> None:
        super().__init__(message)
        self.status_code = status
        self.code = code
        self.kind = kind

    def body(self) -> dict[str, Any]:
        return error_object(self.message, self.code, self.kind)


def error_object(message: str, code: str, kind: str = "invalid_request") -> dict[str, Any]:
    return {"message": message, "code": code, "type": kind, "link": LINK + code}


def index_not_found(uid: str) -> MeiliError:
    return MeiliError(404, "index_not_found", f"Index `{uid}` not found. This service serves one index, `{INDEX_UID}`.")


def require_articles(uid: str) -> None:
    if uid != INDEX_UID:
        raise index_not_found(uid)


def bad_request(code: str, message: str) -> MeiliError:
    return MeiliError(400, code, message)


# The service's errors as Meilisearch names the same failure: (status, code, type).
_SERVICE_CODES: list[tuple[type[ServiceError], int, str, str]] = [
    (InvalidJSONError, 400, "malformed_payload", "invalid_request"),
    (PayloadTooLargeError, 413, "payload_too_large", "invalid_request"),
    (UnsupportedMediaTypeError, 415, "invalid_content_type", "invalid_request"),
    (UnauthorizedError, 403, "invalid_api_key", "auth"),
    (NotFoundError, 404, "not_found", "invalid_request"),
    (IndexNotReadyError, 503, "index_not_ready", "system"),
    (IndexWriteError, 503, "io_error", "system"),
]


def meili_error_body(exc: Exception) -> tuple[int, dict[str, Any]]:
    """The status and Meilisearch error object for any exception raised under the prefix."""
    if isinstance(exc, MeiliError):
        return exc.status_code, exc.body()
    if isinstance(exc, ServiceError):
        for cls, status, code, kind in _SERVICE_CODES:
            if isinstance(exc, cls):
                return status, error_object(exc.message, code, kind)
        status = exc.status_code if exc.status_code < 500 else 500
        kind = "invalid_request" if status < 500 else "internal"
        return status, error_object(exc.message, "bad_request" if status < 500 else "internal", kind)
    return 500, error_object("the server failed to answer this request", "internal", "internal")


def http_error_body(status: int, detail: str) -> dict[str, Any]:
    """An unknown route or method under the prefix."""
    if status == 404:
        return error_object(f"Not found: {detail}. See docs/meilisearch.md for the routes served.", "not_found")
    if status == 405:
        return error_object("This method is not allowed on this route.", "method_not_allowed")
    return error_object(detail, "bad_request")


def validation_error_body(problems: list[str]) -> dict[str, Any]:
    return error_object("; ".join(problems), "bad_request")
