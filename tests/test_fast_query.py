"""FastQueryRoute reads plain query parameters itself: it must give FastAPI's values or leave the request to FastAPI."""

from __future__ import annotations

import enum
import random
import urllib.parse
from typing import Annotated, Any, Literal

import pytest
from conftest import api_client
from fastapi import Depends, FastAPI, Header, Query
from fastapi import Path as PathParam
from fastapi.dependencies.utils import request_params_to_args
from fastapi.responses import JSONResponse
from starlette.requests import Request

from search_service.http import fast_query
from search_service.http.app import create_app
from search_service.http.fast_query import FastQueryRoute, plan_for
from search_service.settings import Settings


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _toy_app() -> FastAPI:
    """Every kind of parameter FastQueryRoute reads, beside the service's own routes."""
    app = FastAPI()
    app.router.route_class = FastQueryRoute

    @app.get("/toy/{name}")
    async def toy(
        request: Request,
        name: Annotated[str, PathParam(max_length=5)],
        need: Annotated[str, Query(min_length=2)],
        color: Color = Color.RED,
        maybe: int | None = None,
        small: Annotated[int, Query(gt=-3, lt=3)] = 0,
        tags: Annotated[list[str], Query()] = ["x"],  # noqa: B006 - FastAPI copies it
        flag: bool | None = None,
        mode: Literal["a", "b"] | None = None,
    ) -> JSONResponse:
        return JSONResponse({})

    return app


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(Settings(index_dir=tmp_path_factory.mktemp("no-index")))
    wanted = {"/search", "/facets/{facet}", "/suggest", "/articles/{slug}/related"}
    found = {r.path: r for r in app.routes if getattr(r, "path", None) in wanted}
    found.update({r.path: r for r in _toy_app().routes if getattr(r, "path", None) == "/toy/{name}"})
    assert set(found) == wanted | {"/toy/{name}"}
    return found


# Values FastAPI accepts, and ones it does not or reads differently (whitespace, signs, case, ...).
VALUES = [
    "", "oil", "oil prices", "1", "0", "2", "10", "100", "101", "-1", "-3", " 1", "1 ", "+1", "01", "1_0", "1.0",
    "１", "true", "false", "True", "FALSE", "on", "off", "yes", "no", "t", "f", "y", "n", "2x", "relevance",
    "newest", "oldest", "Newest", "month", "auto", "year", "on", "red", "blue", "RED", "a", "b", "c", "topics",
    "entities", "published_at", "topics,entities", "1987-03-01", "%ED%A0%BD", "%FF", "caf%C3%A9", "a%2Bb", "a+b",
    "%00", "x" * 1001, "é" * 1000, "é" * 1001,
]  # fmt: skip
VALID = ["oil", "1", "2", "10", "true", "off", "red", "a", "month", "relevance", "topics", "ab", ""]
EXTRA_KEYS = ["unknown", "Q", "per-page", ""]


def _query_strings(keys: list[str], count: int, seed: int, base: str) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts = [base] if base and rng.random() < 0.8 else []
        for _ in range(rng.randint(0, 6)):
            key = rng.choice(keys + EXTRA_KEYS)
            value = rng.choice(VALID if rng.random() < 0.6 else VALUES)
            # Most values percent-encoded as a browser would; some sent raw (their %XX decoded by the server).
            encoded = urllib.parse.quote_plus(value) if rng.random() < 0.7 else value
            parts.append(f"{key}={encoded}" if rng.random() < 0.95 else key)
        out.append("&".join(parts))
    return out


def _request(query_string: str, path_params: dict[str, str]) -> Request:
    scope = {"type": "http", "method": "GET", "query_string": query_string.encode(), "headers": []}
    scope["path_params"] = path_params
    return Request(scope)


def _fastapi(route: Any, request: Request) -> tuple[dict[str, Any], list[Any]]:
    values, errors = request_params_to_args(route.dependant.query_params, request.query_params)
    path_values, path_errors = request_params_to_args(route.dependant.path_params, request.path_params)
    return {**values, **path_values}, errors + path_errors


def _typed(values: dict[str, Any]) -> dict[str, tuple[type, Any]]:
    return {k: (type(v), v) for k, v in values.items()}


PATHS = {  # path parameters, and a query string most requests start with
    "/search": ({}, ""),
    "/facets/{facet}": ({"facet": "topics"}, ""),
    "/suggest": ({}, ""),
    "/articles/{slug}/related": ({"slug": "reuters-1-bahia-cocoa-review"}, ""),
    "/toy/{name}": ({"name": "abc"}, "need=ab"),
}


@pytest.mark.parametrize("path", list(PATHS))
def test_fast_values_equal_fastapis_and_fastapis_errors_leave_it_to_fastapi(routes: dict[str, Any], path: str) -> None:
    route = routes[path]
    plan = plan_for(route)
    assert plan is not None
    keys = [field.alias for field in route.dependant.query_params]
    answered = failed = 0
    own, base = PATHS[path]
    for number, query_string in enumerate(_query_strings(keys, 300, len(path), base)):
        path_params = own if number % 10 else {"facet": "x" * 300, "slug": "", "name": "toolong"}
        request = _request(query_string, {k: v for k, v in path_params.items() if k in own})
        expected, errors = _fastapi(route, request)
        got = plan.arguments(request)
        if errors:
            failed += 1
            assert got is None, (query_string, errors, got)
            continue
        if got is None:
            continue  # left to FastAPI: always allowed
        answered += 1
        got.pop(route.dependant.request_param_name or "", None)
        assert _typed(got) == _typed(expected), query_string
    # Both sides were exercised: valid requests read by the fast path, invalid ones left to FastAPI.
    assert answered >= 60 and failed >= 30, (answered, failed)


def test_the_benchmarks_search_urls_take_the_fast_path(routes: dict[str, Any]) -> None:
    plan = plan_for(routes["/search"])
    for q, topic in [("oil prices", None), ("coca", "cocoa"), ("merger agreement", "acq"), ("é 日本", None)]:
        params = [("q", q), ("facets", "topics,entities,published_at"), ("per_page", "10")]
        params += [("topic", topic)] if topic else []
        request = _request(urllib.parse.urlencode(params), {})
        got = plan.arguments(request)
        assert got is not None
        assert got["q"] == q and got["per_page"] == 10 and got["topic"] == ([topic] if topic else [])
        assert got["request"] is request and got["typos"] is True and got["sort"] is None


def test_a_default_list_is_a_fresh_copy_per_request(routes: dict[str, Any]) -> None:
    plan = plan_for(routes["/toy/{name}"])
    first = plan.arguments(_request("need=ab", {"name": "abc"}))
    first["tags"].append("changed")
    assert plan.arguments(_request("need=ab", {"name": "abc"}))["tags"] == ["x"]


def test_routes_it_cannot_read_are_left_to_fastapi() -> None:
    app = FastAPI()
    app.router.route_class = FastQueryRoute

    def dependency() -> int:
        return 1

    @app.get("/header")
    async def header(x: Annotated[str, Header()] = "") -> JSONResponse:
        return JSONResponse({})

    @app.get("/depends")
    async def depends(x: Annotated[int, Depends(dependency)]) -> JSONResponse:
        return JSONResponse({})

    @app.get("/model")
    async def model(q: str = "") -> dict[str, str]:  # FastAPI serializes the return value: not ours
        return {}

    @app.get("/pattern")
    async def pattern(q: Annotated[str, Query(pattern="^a")] = "") -> JSONResponse:
        return JSONResponse({})

    @app.get("/sync")
    def sync(q: str = "") -> JSONResponse:
        return JSONResponse({})

    @app.get("/float")
    async def floating(x: float = 0.0) -> JSONResponse:
        return JSONResponse({})

    @app.post("/post")
    async def post(q: str = "") -> JSONResponse:
        return JSONResponse({})

    routes = [r for r in app.routes if isinstance(r, FastQueryRoute)]
    assert len(routes) == 7
    assert [r.path for r in routes if plan_for(r) is not None] == []


# -- over HTTP: the service's answers with and without the fast path ----------------------------

BAD_SEARCHES = [
    "per_page=0", "per_page=101", "per_page=x", "page=0", "page=-1", "page=1.5", "page=", "sort=best", "sort=",
    "date_interval=hour", "freshness=maybe", "prefix=2", "typos=", "semantic=nope", "facet_size=0",
    "q=" + "x" * 1001, "page=x&per_page=y&sort=z", "page=1&page=x", "per_page=10&per_page=1000",
    "facets=colors", "page=10000&per_page=100", "published_after=yesterday", "published_before=1987-13-01",
    "topic=" + "&topic=".join(["a"] * 60),
]  # fmt: skip
GOOD_SEARCHES = [
    "q=oil", "q=oil+prices&per_page=3&facets=topics", "q=cocoa&topic=cocoa&sort=newest", "q=&sort=oldest",
    "q=opec&prefix=true&typos=false&freshness=off", "q=rates&page=2&per_page=5", "q=oil&per_page=10&per_page=3",
    "q=oil&prefix=True", "q=oil&page=+2", "q=oil&date_interval=auto&facet_size=3&facets=published_at",
]  # fmt: skip


def _answers(client: Any, urls: list[str]) -> list[tuple[int, Any]]:
    out = []
    for url in urls:
        response = client.get(url)
        body = response.json()
        if response.status_code == 200 and isinstance(body, dict):
            body.pop("took_ms", None)
            body.pop("query_id", None)
        out.append((response.status_code, body))
    return out


def test_search_answers_and_422s_are_those_of_fastapi(reuters_index: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    urls = [f"/search?{q}" for q in BAD_SEARCHES + GOOD_SEARCHES]
    urls += ["/suggest?limit=0", "/suggest?q=op&limit=3", "/facets/topics?size=0", "/facets/topics?prefix=co"]
    urls += ["/facets/nope", "/articles/reuters-1-bahia-cocoa-review/related?limit=99"]
    with api_client(reuters_index.index_dir, analytics=False) as client:
        fast = _answers(client, urls)
    with monkeypatch.context() as patch:
        patch.setattr(fast_query, "plan_for", lambda route: None)  # every request through FastAPI's handler
        with api_client(reuters_index.index_dir, analytics=False) as client:
            plain = _answers(client, urls)
    for url, a, b in zip(urls, fast, plain, strict=True):
        assert a == b, url
    statuses = [status for status, _ in fast]
    assert statuses[: len(BAD_SEARCHES)] == [422] * len(BAD_SEARCHES)
    assert statuses[len(BAD_SEARCHES) : len(BAD_SEARCHES) + len(GOOD_SEARCHES)] == [200] * len(GOOD_SEARCHES)


def test_a_422_names_the_parameter_as_before(reuters_client: Any) -> None:
    response = reuters_client.get("/search?per_page=0&sort=best")
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_parameter",
            "message": "sort: Input should be 'relevance', 'newest' or 'oldest'; "
            "per_page: Input should be greater than or equal to 1",
        }
    }
