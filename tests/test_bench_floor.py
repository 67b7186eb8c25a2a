"""scripts/_floor_app.py, the HTTP floor of the benchmarks, asks tantivy for the same work as /search.

Correctness only, no timing: for plain words (typo tolerance off in the service, which the floor
does not have), the floor's tantivy-parsed query matches the same articles as the service's planned
one, with the same all/any-word fallback, and its aggregations give the same facet counts and
months; its hits carry the stored fields and tantivy's highlighted title and snippet. Served by
uvicorn, it answers the same URLs the benchmarks send to the service.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import tantivy
from conftest import REPO, BuiltIndex, build_index

from search_service.index.reader import IndexReader
from search_service.search.counting import FacetCounter
from search_service.search.engine import HIT_ATTRIBUTES, SearchEngine, SearchRequest
from search_service.search.freshness import FreshnessRanker, current_now
from search_service.search.snippets import Snippets

sys.path.insert(0, str(REPO / "scripts"))
import _bench
import _floor_app

FACETS = ("topics", "entities", "published_at")
QUERIES = [
    ("oil", None),
    ("launch", None),
    ("rates inflation", None),
    ("rates", "central-banks"),  # topics counted without their own filter, the rest with it
    ("china", "trade"),
    ("europe gas storage", None),  # too few with every word: the any-word fallback
    ("zzzunknownword", None),
    ("oil", "no-such-topic"),  # a selected value outside the counts is still listed
]


def service(index: BuiltIndex, q: str, topic: str | None) -> dict:
    engine = SearchEngine(IndexReader(index.store, index.config), index.config)
    filters = {"topics": (topic,)} if topic else {}
    return engine.search(SearchRequest(q=q, filters=filters, facets=FACETS, per_page=10, typos=False))


def floor(index: BuiltIndex, q: str, topic: str | None) -> dict:
    tantivy_index = index.open()
    work = _floor_app.Floor(tantivy_index, index.config)
    return work.search(tantivy_index.searcher(), q, (topic,) if topic else (), FACETS)


def months(service_buckets: list[dict]) -> dict[str, int]:
    return {b["start"][:7]: b["count"] for b in service_buckets if b["count"]}


@pytest.mark.parametrize(("q", "topic"), QUERIES)
def test_floor_matches_and_counts_what_the_service_does(sample_index: BuiltIndex, q: str, topic: str | None) -> None:
    want, got = service(sample_index, q, topic), floor(sample_index, q, topic)
    assert got["total"] == want["total"]
    for name in ("topics", "entities"):
        assert got["facets"][name] == want["facets"][name], name
    assert {b["start"]: b["count"] for b in got["facets"]["published_at"]} == months(want["facets"]["published_at"])
    assert len(got["hits"]) == len(want["hits"]) == min(10, want["total"])
    for hit in got["hits"]:
        assert set(HIT_ATTRIBUTES) <= hit.keys()
        if topic:
            assert topic in hit["topics"]
    if want["total"] and want["matched"] == "all":
        assert {h["slug"] for h in got["hits"]} == {h["slug"] for h in want["hits"]} or want["total"] > 10
        assert any("<b>" in h["highlights"]["snippet"] + h["highlights"]["title"] for h in got["hits"])


def test_floor_falls_back_to_any_word_when_the_service_does(sample_index: BuiltIndex) -> None:
    want = service(sample_index, "europe gas storage", None)
    assert want["matched"] == "any"
    every_word = floor(sample_index, "europe gas storage", None)
    calls = _floor_app.Calls(fallback=False)
    index = sample_index.open()
    strict = _floor_app.Floor(index, sample_index.config, calls).search(index.searcher(), "europe gas storage")
    assert strict["total"] < every_word["total"] == want["total"]


def test_engine_calls_list_names_every_step_of_the_floor() -> None:
    import inspect

    owners = {
        "SearchEngine": SearchEngine,
        "Snippets": Snippets,
        "FreshnessRanker": FreshnessRanker,
        "FacetCounter": FacetCounter,
    }
    source = inspect.getsource(_floor_app.Floor.search)
    for step, where, _ in _floor_app.ENGINE_CALLS:
        assert step in source, step  # each listed call is made under its name in Floor.search
        for name in where.split(", "):  # and names the service's code it mirrors, which exists
            owner, method = name.split(".")
            assert callable(getattr(owners[owner], method)), name
    assert isinstance(tantivy.SnippetGenerator, type)


def test_floor_gives_the_snippet_generator_what_the_service_gives_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On long (seed-shaped) bodies: the same hits, and about as many body snippet_from_doc calls
    on about as much text (first windows, the text around a later match, whole bodies)."""
    corpus = tmp_path / "seed.jsonl"
    _bench.generate_corpus("seed", 300, corpus, _bench.DEFAULT_CORPUS, seed=3)
    index = build_index(tmp_path / "index", [corpus])
    engine = SearchEngine(IndexReader(index.store, index.config), index.config)
    tantivy_index = index.open()
    work = _floor_app.Floor(tantivy_index, index.config)
    body_field = index.config.snippets.fields[0]
    given: dict[str, list[int]] = {"service": [], "floor": []}
    service_fragment, floor_snippet = Snippets._fragment, _floor_app._snippet

    def service_side(self: Snippets, text: str) -> object:
        given["service"].append(len(text))
        return service_fragment(self, text)

    def floor_side(generator: tantivy.SnippetGenerator, field: str, text: str) -> tantivy.Snippet:
        if field == body_field:
            given["floor"].append(len(text))
        return floor_snippet(generator, field, text)

    monkeypatch.setattr(Snippets, "_fragment", service_side)
    monkeypatch.setattr(_floor_app, "_snippet", floor_side)
    now = current_now()
    for q in ("cloud revenue", "chip", "security breach", "startup funding round", "ai"):
        want = engine.search(SearchRequest(q=q, facets=FACETS, typos=False, now=now))
        got = work.search(tantivy_index.searcher(), q, (), FACETS, now=now)
        assert [h["slug"] for h in got["hits"]] == [h["slug"] for h in want["hits"]], q
    calls = {side: len(lengths) for side, lengths in given.items()}
    chars = {side: sum(lengths) for side, lengths in given.items()}
    assert calls["service"] > 0 and chars["service"] > 0
    assert abs(calls["floor"] - calls["service"]) <= 0.1 * calls["service"], calls
    assert abs(chars["floor"] - chars["service"]) <= 0.15 * chars["service"], chars


def test_floor_app_serves_the_benchmark_urls(sample_index: BuiltIndex, tmp_path) -> None:
    port = _bench.free_port()
    argv = [sys.executable, str(REPO / "scripts" / "_floor_app.py"), "--index-dir", str(sample_index.index_dir)]
    server = _bench.Server("floor", [*argv, "--port", str(port)], port, tmp_path / "floor.log")
    server.start()
    try:
        query = urllib.parse.urlencode([("q", "oil"), ("facets", ",".join(FACETS)), ("per_page", "10")])
        with urllib.request.urlopen(f"{server.base_url}/search?{query}", timeout=10) as response:
            body = json.loads(response.read())
        assert body["total"] == service(sample_index, "oil", None)["total"] > 0
        assert set(body["facets"]) == set(FACETS)
    finally:
        server.stop()
