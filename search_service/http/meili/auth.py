"""Keys as Meilisearch clients send them (`Authorization: Bearer <key>`).

SEARCH_ADMIN_KEY is the master key: it may do everything. Search (search, multi-search,
facet-search) needs no key unless SEARCH_PUBLIC_KEY is set; then it needs that search-only key
(which can never write) or the admin key. Without SEARCH_PUBLIC_KEY any Authorization header but a
tenant token is ignored on search, so a client built without a key (the Python client then
sends `Bearer None`) still searches.

A tenant token is a JWT (HS256/384/512) signed with SEARCH_PUBLIC_KEY (or the admin key)
carrying `searchRules` and, optionally, `exp`: its filter for `articles` (or `*`) is ANDed with
every search made with it, so a site can hand a reader a token that only sees, say,
`topics = free`. An invalid, expired or foreign token is refused (403 invalid_api_key).
"""

from __future__ import annotations

import hmac
from typing import Any

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


NO_RULES = object()  # a search without a tenant token: no filter added


def search_key(request: Request, settings: Settings) -> Any:
    """Check a search's key; the tenant token's filter for `articles` (None: no filter), or NO_RULES."""
    given = _given(request)
    if given is not None and given.count(".") == 2 and given.startswith("ey"):
        return tenant_filter(given, settings)
    if not settings.public_key:
        return NO_RULES
    if given is None:
        raise MISSING
    if _same(given, settings.public_key) or _same(given, settings.admin_key):
        return NO_RULES
    raise invalid_key()


def tenant_filter(token: str, settings: Settings) -> Any:
    import jwt  # only tenant tokens need it

    claims = None
    for key in (settings.public_key, settings.admin_key):
        if not key:
            continue
        try:
            claims = jwt.decode(token, key, algorithms=["HS256", "HS384", "HS512"], options={"require": []})
            break
        except jwt.ExpiredSignatureError:
            raise MeiliError(403, "invalid_api_key", "The tenant token has expired (`exp`).", "auth") from None
        except jwt.InvalidTokenError:
            continue
    if claims is None:
        raise MeiliError(
            403, "invalid_api_key", "The tenant token is invalid: it must be signed with a search key.", "auth"
        )
    rules = claims.get("searchRules")
    if isinstance(rules, list):
        rules = {name: None for name in rules if isinstance(name, str)}
    if not isinstance(rules, dict) or not ({"articles", "*"} & set(rules)):
        raise MeiliError(403, "invalid_api_key", "The tenant token's `searchRules` do not cover `articles`.", "auth")
    rule = rules.get("articles", rules.get("*"))
    return rule.get("filter") if isinstance(rule, dict) else None
