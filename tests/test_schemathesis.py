"""Every operation of the app's own OpenAPI document, driven by schemathesis in-process (ASGI).

The app serves a real index (the sample corpus plus bad.jsonl's hostile records). For a bounded
number of generated requests per operation, valid and invalid alike, no response may be a 5xx
and every response must match the schema the app publishes for its status code (for 200 bodies,
the route's response model: see documented_openapi and the BUG pinned below).
"""

from __future__ import annotations

import atexit
import copy
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from conftest import BAD, SAMPLE, build_index
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from search_service.http.app import create_app
from search_service.settings import Settings

ADMIN_KEY = "schemathesis-admin-key"
MAX_EXAMPLES = 40


def _app(index_dir: Path) -> Any:
    """The real app over `index_dir`, its settings untouched by the developer's SEARCH_* variables."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("SEARCH_"):
                patch.delenv(name)
        # An admin key, so POST /admin/reload is really exercised (without the header it answers 401).
        return create_app(Settings(index_dir=index_dir, admin_key=ADMIN_KEY, access_log=False, search_budget_ms=60_000))


# The schema has to exist when pytest collects this module (schemathesis makes one test per operation
# from it), and the app's /openapi.json does not need an index: the index is built into this directory
# by the fixture below, before any generated request reaches the app.
INDEX_DIR = Path(tempfile.mkdtemp(prefix="schemathesis-index-"))
atexit.register(shutil.rmtree, INDEX_DIR, ignore_errors=True)  # also when no test of this module runs
APP = _app(INDEX_DIR)


def documented_openapi(app: Any) -> dict[str, Any]:
    """/openapi.json as FastAPI writes it when each route's response model documents its 200 response.

    The app's own document is used as it is, except where it documents a 200 body as a bare string
    (see test_openapi_documents_the_response_models): there the route's response_model is what the
    code promises, so that is what responses are checked against. Requests are generated from the
    parameters, which are the same in both."""
    published = copy.deepcopy(app.openapi())  # app.openapi() caches its document: never edit that one
    routes = []
    for route in app.routes:
        if isinstance(route, APIRoute) and route.response_model is not None:
            route = copy.copy(route)
            route.response_class = JSONResponse
        routes.append(route)
    fixed = get_openapi(title=app.title, version=app.version, description=app.description, routes=routes)
    for path, operations in published["paths"].items():
        for method, operation in operations.items():
            content = operation.get("responses", {}).get("200", {}).get("content", {})
            if content.get("application/json", {}).get("schema") == {"type": "string"}:
                content["application/json"] = fixed["paths"][path][method]["responses"]["200"]["content"][
                    "application/json"
                ]
    published.setdefault("components", {}).setdefault("schemas", {}).update(fixed["components"]["schemas"])
    return published


schema = schemathesis.openapi.from_dict(documented_openapi(APP))
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def _index() -> Iterator[None]:
    if not BAD.exists():
        pytest.fail(f"test corpus {BAD} is missing")
    build_index(INDEX_DIR, [SAMPLE, BAD])
    yield
    shutil.rmtree(INDEX_DIR, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same requests on every run
    database=None,  # nothing written to .hypothesis/
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_responses_match_the_schema(case: Any) -> None:
    checks = [not_a_server_error]
    if not (case.method.upper() == "POST" and case.path == "/admin/reload"):
        checks.append(response_schema_conformance)
    case.call_and_validate(checks=checks)


def test_every_stored_article_and_its_related_list_match_the_schema() -> None:
    # Generated slugs almost never name a stored article: ask for each one that is (bad.jsonl's hostile
    # records included), with its related list at both ends of the limit range.
    slugs = [hit["slug"] for hit in _client_get("/search", {"per_page": 100, "facets": ""})["hits"]]
    assert len(slugs) > 40
    checks = [not_a_server_error, response_schema_conformance]
    for slug in slugs:
        schema["/articles/{slug}"]["GET"].Case(path_parameters={"slug": slug}).call_and_validate(checks=checks)
        for limit in (1, 50):
            case = schema["/articles/{slug}/related"]["GET"].Case(
                path_parameters={"slug": slug}, query={"limit": limit}
            )
            case.call_and_validate(checks=checks)


def _client_get(path: str, params: dict[str, Any]) -> Any:
    response = (
        schema[path]["GET"]
        .Case(query=params)
        .call_and_validate(checks=[not_a_server_error, response_schema_conformance])
    )
    assert response.status_code == 200, response.text
    return response.json()


# Handlers answer with the model's JSON; OpenAPI must say so, so that clients (and /docs) know the shape.
RESPONSE_MODELS = {
    "/search": "SearchOut",
    "/articles/{slug}": "ArticleOut",
    "/articles/{slug}/related": "RelatedOut",
    "/facets/{facet}": "FacetValuesOut",
    "/suggest": "SuggestOut",
    "/health": "HealthOut",
    "/ready": "ReadyOut",
}


@pytest.mark.parametrize("path", sorted(RESPONSE_MODELS))
def test_openapi_documents_the_response_models(path: str) -> None:
    published = APP.openapi()
    content = published["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    assert content["schema"] == {"$ref": f"#/components/schemas/{RESPONSE_MODELS[path]}"}
    assert RESPONSE_MODELS[path] in published["components"]["schemas"]


def test_admin_reload_with_the_key_answers_and_without_it_is_refused() -> None:
    operation = schema["/admin/reload"]["POST"]
    allowed = operation.Case(headers={"Authorization": f"Bearer {ADMIN_KEY}"}).call_and_validate(
        checks=[not_a_server_error]
    )
    denied = operation.Case(headers={"Authorization": "Bearer nope"}).call_and_validate(checks=[not_a_server_error])
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["documents"] > 40
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "unauthorized"
