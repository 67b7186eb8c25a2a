"""Keys as Meilisearch clients send them (`Authorization: Bearer <key>`).

SEARCH_ADMIN_KEY is the master key: it may do everything. Search (search, multi-search,
facet-search) needs no key unless SEARCH_PUBLIC_KEY is set; then it needs that search-only key
(which can never write) or the admin key. Without SEARCH_PUBLIC_KEY any Authorization header is
ignored on search, so a client built without a key (the Python client then sends
`Bearer None`) still searches.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

from search_service.http.meili.errors import MeiliError
from search_service.settings import Settings

MISSING = MeiliError(
    401,
    "missing_authorization_header",
    "The Authorization header is missing. It must use the bearer authorization method.",
    "auth",
)


def _given(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else header.strip()


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def invalid_key() -> MeiliError:
    return MeiliError(403, "invalid_api_key", "The provided API key is invalid.", "auth")


def require_master(request: Request, settings: Settings) -> None:
    """Writes, documents, tasks, settings: the admin key (off without SEARCH_ADMIN_KEY)."""
    given = _given(request)
    if not settings.admin_key:
        raise MeiliError(
            403,
            "invalid_api_key",
            "This route needs the admin key, and the server has none (SEARCH_ADMIN_KEY).",
            "auth",
        )
    if given is None:
        raise MISSING
    if not _same(given, settings.admin_key):
        raise invalid_key()


def search_key(request: Request, settings: Settings) -> str | None:
    """Check a search's key; returns the key given when it must be checked further (a tenant token)."""
    if not settings.public_key:
        return None
    given = _given(request)
    if given is None:
        raise MISSING
    if _same(given, settings.public_key) or _same(given, settings.admin_key):
        return None
    raise invalid_key()
