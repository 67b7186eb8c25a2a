"""Counting with bounded cost ([counting]): exact up to exact_up_to matches, estimated past it.

The Reuters index (20,841 articles) with exact_up_to and sample_size set low, so that broad
queries are counted from a sample: counts within the threshold must equal exhaustive=true's,
estimates must say so and hold the exact count within their 95% intervals (the sample is a hash
of the slug: the same for every run), and hits, totals, paging, sort orders, disjunctive facets
and curation must not change with the counting mode.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REUTERS, BuiltIndex, api_client, build_index, config_with, engine_for, iter_jsonl, write_jsonl

from search_service.index.document import sample_key
from search_service.index.schema import SAMPLE_SLOTS
from search_service.search.counting import (
    SMALL_INDEX,
    Counted,
    Estimator,
    Sample,
    sample_filter,
    slots_for,
)
from search_service.search.engine import SearchEngine, SearchRequest

EXACT_UP_TO = 1_000
SAMPLE_SIZE = 2_000
DATE_SAMPLE = 3_000
FACETS = ("topics", "entities", "published_at")
BROAD = ("the", "dlrs", "said", "mln", "oil OR japan", "company")


@pytest.fixture(scope="module")
def engine(reuters_index: BuiltIndex) -> SearchEngine:
    counting = dataclasses.replace(
        reuters_index.config.counting, exact_up_to=EXACT_UP_TO, sample_size=SAMPLE_SIZE, date_sample_size=DATE_SAMPLE
    )
    return engine_for(reuters_index.index_dir, dataclasses.replace(reuters_index.config, counting=counting))


def search(engine: SearchEngine, q: str, exhaustive: bool = False, **fields: Any) -> dict[str, Any]:
    request = SearchRequest(q=q, facets=FACETS, facet_size=fields.pop("facet_size", 10), exhaustive=exhaustive)
    return engine.search(dataclasses.replace(request, **fields))


def exact_counts(engine: SearchEngine, q: str, **fields: Any) -> dict[str, dict[str, int]]:
    """Every value's exact count per facet (exhaustive=true, every value listed)."""
    found = search(engine, q, exhaustive=True, facet_size=100_000, **fields)["facets"]
    return {name: {v.get("value", v.get("start")): v["count"] for v in values} for name, values in found.items()}


def test_the_sample_key_is_a_uniform_hash_of_the_slug() -> None:
    slugs = [record["slug"] for record in iter_jsonl(REUTERS)]
    keys = [sample_key(slug) for slug in slugs]
    assert keys == [sample_key(slug) for slug in slugs] and all(0 <= k < SAMPLE_SLOTS for k in keys)
    # Each eighth of the slots holds an eighth of the articles, within a percentage point.
    for eighth in range(8):
        share = sum(eighth * SAMPLE_SLOTS // 8 <= k < (eighth + 1) * SAMPLE_SLOTS // 8 for k in keys) / len(keys)
        assert abs(share - 1 / 8) < 0.01, (eighth, share)


def test_each_sample_level_is_one_term_holding_the_articles_of_its_first_slots(engine: SearchEngine) -> None:
    searcher = engine.reader.searcher()
    keys = [sample_key(record["slug"]) for record in iter_jsonl(REUTERS)]
    for slots in (1, 2, 16, 128, 512):
        level = searcher.search(sample_filter(engine.schema, slots), 1, count=True).count
        assert level == sum(key < slots for key in keys), slots
    with pytest.raises(ValueError):
        sample_filter(engine.schema, 96)  # not a level: a power of two below SAMPLE_SLOTS


@pytest.mark.parametrize(
    ("size", "wanted", "slots"),
    [(1_000_000, 10_000, 8), (20_000, 10_000, 512), (15_000, 10_000, 512), (13_700, 10_000, 1024), (0, 10, 1024)],
)
def test_a_sample_is_the_level_nearest_the_size_asked_for(size: int, wanted: int, slots: int) -> None:
    assert slots_for(size, wanted) == slots
    assert slots == SAMPLE_SLOTS or 0.7 * wanted <= size * slots / SAMPLE_SLOTS <= 1.42 * wanted
    assert slots_for(10**9, 1) == 1  # the smallest level, however few are asked for


def test_counts_made_before_the_total_was_known_are_redone_when_it_is_within_a_facets_exact_limit() -> None:
    """Counting beside the ranked search estimates the set's size; a set the total shows to be
    within exact_up_to must still get exact counts."""
    sampled = Counted({}, {"topics": Sample(slots=64, sampled=40, main=True, limit=EXACT_UP_TO)})
    assert not sampled.holds_for(EXACT_UP_TO) and sampled.holds_for(EXACT_UP_TO + 1) and sampled.holds_for(None)
    disjunctive = Counted({}, {"topics": Sample(slots=64, sampled=40, main=False, limit=EXACT_UP_TO)})
    assert disjunctive.holds_for(10)  # its set is not the search's: the total says nothing of its size
    assert Counted({}, {"topics": Sample(SAMPLE_SLOTS, 10, True, EXACT_UP_TO)}).holds_for(10)


def test_a_small_index_counts_a_set_of_unknown_size_exactly_without_a_probe(reuters_index: BuiltIndex) -> None:
    """In an index of at most SMALL_INDEX x exact_up_to articles, a set whose size is not known (here
    a facet whose own filter is set) is counted exactly: a probe would cost what it could save."""
    counting = dataclasses.replace(reuters_index.config.counting, exact_up_to=10_000, sample_size=10_000)
    engine = engine_for(reuters_index.index_dir, dataclasses.replace(reuters_index.config, counting=counting))
    assert engine.reader.searcher().num_docs <= SMALL_INDEX * 10_000
    filters = {"topics": ("earn",)}  # "the" without it: 15,578 matches, past exact_up_to
    shipped = search(engine, "the", filters=filters)
    assert shipped["exhaustive"] == {"total": True, "facets": True}
    assert shipped["facets"] == search(engine, "the", exhaustive=True, filters=filters)["facets"]


@pytest.mark.parametrize("q", ["cocoa", "gold", "interest rates", "coffee brazil", ""])
def test_counts_within_exact_up_to_equal_the_exhaustive_ones(engine: SearchEngine, q: str) -> None:
    sampled, exhaustive = search(engine, q), search(engine, q, exhaustive=True)
    assert q == "" or sampled["total"] <= EXACT_UP_TO  # "" is a browse page: exact by rule
    assert sampled["facets"] == exhaustive["facets"]
    assert sampled["exhaustive"] == exhaustive["exhaustive"] == {"total": True, "facets": True}
    assert not any("interval" in v for values in sampled["facets"].values() for v in values)


def test_past_exact_up_to_the_counts_are_flagged_estimates_whose_intervals_hold_the_exact_count(
    engine: SearchEngine,
) -> None:
    held, seen = 0, 0
    for q in BROAD:
        sampled = search(engine, q)
        assert sampled["total"] > EXACT_UP_TO
        assert sampled["exhaustive"] == {"total": True, "facets": False}
        assert sampled["total"] == search(engine, q, exhaustive=True)["total"]
        exact = exact_counts(engine, q)
        for name, values in sampled["facets"].items():
            for item in values:
                truth = exact[name].get(item.get("value", item.get("start")), 0)
                if "interval" not in item:  # counted exactly (dates below date_sample_size)
                    assert item["count"] == truth, (q, name, item)
                    continue
                low, high = item["interval"]
                assert low <= item["count"] <= high <= sampled["total"]
                seen += 1
                held += low <= truth <= high
    # 95% intervals; the values listed are those the sample ranked highest, which favours values
    # the sample over-counted, so allow a little more than 1 in 20 outside.
    assert held / seen >= 0.9, (held, seen)


def test_estimated_top_values_are_the_exact_top_values(engine: SearchEngine) -> None:
    for q in BROAD:
        sampled = search(engine, q)
        exact = exact_counts(engine, q)
        for name in ("topics", "entities"):
            top = sorted(exact[name].items(), key=lambda item: (-item[1], item[0]))[:10]
            shown = {v["value"] for v in sampled["facets"][name]}
            assert len(shown & {value for value, _ in top}) >= 8, (q, name, shown, top)


def test_a_facet_whose_own_filter_is_set_is_estimated_over_the_set_without_it(engine: SearchEngine) -> None:
    filters = {"topics": ("earn",)}
    sampled = search(engine, "the", filters=filters)
    exhaustive = search(engine, "the", exhaustive=True, filters=filters)
    assert sampled["total"] == exhaustive["total"]
    topics = {v["value"]: v for v in sampled["facets"]["topics"]}
    exact = exact_counts(engine, "the", filters=filters)["topics"]
    # Counted without the topic filter: other topics are listed, and the selected one with its count.
    assert len(topics) > 1 and "earn" in topics
    low, high = topics["earn"].get("interval", [topics["earn"]["count"]] * 2)
    assert low <= exact["earn"] <= high
    assert sampled["exhaustive"]["facets"] is False


def test_hits_totals_paging_and_sort_orders_do_not_depend_on_the_counting(engine: SearchEngine) -> None:
    for q in ("the", "oil", ""):
        for sort in ("relevance", "newest", "oldest"):
            for page in (1, 2, 7):
                a = search(engine, q, sort=sort, page=page, per_page=7, freshness=False)
                b = search(engine, q, exhaustive=True, sort=sort, page=page, per_page=7, freshness=False)
                assert [h["slug"] for h in a["hits"]] == [h["slug"] for h in b["hits"]], (q, sort, page)
                assert a["total"] == b["total"]


def test_exhaustive_true_counts_every_match(engine: SearchEngine, reuters_index: BuiltIndex) -> None:
    from conftest import facet_counts

    result = search(engine, "the", exhaustive=True, facet_size=100_000)
    searcher = reuters_index.searcher()
    query = engine.plan(SearchRequest(q="the"), searcher).query()
    assert {v["value"]: v["count"] for v in result["facets"]["topics"]} == facet_counts(searcher, "topics", query)


def test_facet_value_lists_say_whether_they_are_estimated(engine: SearchEngine) -> None:
    broad = engine.facet_values("topics", SearchRequest(q="the"))
    assert broad["exhaustive"] == {"total": True, "facets": False}
    assert all(v["interval"][0] <= v["count"] <= v["interval"][1] for v in broad["values"])
    exact = engine.facet_values("topics", SearchRequest(q="the", exhaustive=True))
    assert exact["exhaustive"]["facets"] is True and not any("interval" in v for v in exact["values"])
    top = {v["value"] for v in exact["values"][:5]}
    assert len(top & {v["value"] for v in broad["values"][:5]}) >= 4
    browse = engine.facet_values("topics", SearchRequest(q=""))  # a browse page: exact by rule
    assert browse["exhaustive"]["facets"] is True


@pytest.mark.parametrize("sampled", [1, 10, 100, 1000])
def test_the_estimators_interval_holds_the_true_count_19_times_in_20(sampled: int) -> None:
    """Binomial samples of a known count: the 95% interval covers it in about 95% of draws."""
    import random

    draws = random.Random(sampled)
    fraction = 0.05
    true = round(sampled / fraction)
    estimator = Estimator(fraction)
    covered = 0
    for _ in range(2000):
        hits = sum(draws.random() < fraction for _ in range(true))
        low, high = estimator.estimate(hits)[1]
        covered += low <= true <= high
    assert 0.92 <= covered / 2000 <= 0.99


def test_an_answer_cut_short_by_the_budget_is_not_cached(reuters_index: BuiltIndex) -> None:
    engine = SearchEngine(engine_for(reuters_index.index_dir, reuters_index.config).reader, reuters_index.config,
                          cache_size=16, budget_ms=0.0)  # fmt: skip
    request = SearchRequest(q="oil prices", facets=FACETS)
    first = engine.search(request)
    assert first["degraded"] == ["highlights", "facets"] and first["facets"] == {}
    engine.budget_ms = float("inf")  # the repeat finishes in time
    second = engine.search(request)
    assert second["cached"] is False and second["degraded"] == [] and set(second["facets"]) == set(FACETS)
    assert "highlights" in second["hits"][0]
    assert engine.search(request)["cached"] is True  # a full answer is cached


# -- over HTTP, with curation ---------------------------------------------------------------------

ADMIN = {"Authorization": "Bearer counting-key"}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> BuiltIndex:
    root = tmp_path_factory.mktemp("counting")
    records = []
    for record in iter_jsonl(REUTERS):
        records.append(record)
        if len(records) == 3000:
            break
    config = config_with(root, "counting", exact_up_to=200, sample_size=300, date_sample_size=300)
    return build_index(root / "index", [write_jsonl(root / "articles.jsonl", records)], config)


@pytest.fixture
def client(small: BuiltIndex) -> Iterator[Any]:
    shutil.rmtree(small.index_dir / "editorial", ignore_errors=True)
    settings = {"admin_key": "counting-key", "reload_interval_s": 0.05, "config_path": Path(small.config.path)}
    with api_client(small.index_dir, **settings) as client:
        yield client


def get(client: Any, **params: Any) -> dict[str, Any]:
    response = client.get("/search", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_over_http_flags_and_exhaustive_parameter(client: Any) -> None:
    broad = get(client, q="the")
    assert broad["total"] > 200 and broad["exhaustive"] == {"total": True, "facets": False}
    full = get(client, q="the", exhaustive="true")
    assert full["exhaustive"] == {"total": True, "facets": True} and full["total"] == broad["total"]
    narrow = get(client, q="cocoa")
    assert narrow["total"] <= 200 and narrow["exhaustive"] == {"total": True, "facets": True}
    values = client.get("/facets/entities", params={"q": "the"}).json()
    assert values["exhaustive"] == {"total": True, "facets": False}
    assert client.get("/facets/entities", params={"q": "the", "exhaustive": "true"}).json()["exhaustive"]["facets"]
    bad = client.get("/search", params={"q": "the", "exhaustive": "perhaps"})
    assert bad.status_code == 422 and "exhaustive" in bad.text


def test_pins_and_hides_hold_in_both_counting_modes(client: Any) -> None:
    organic = [h["slug"] for h in get(client, q="the", per_page=20, freshness="off")["hits"]]
    rule = {"id": "r", "query": "the", "pin": [{"slug": organic[9], "position": 1}], "hide": [organic[0]]}
    assert client.put("/admin/rules", json={"rules": [rule]}, headers=ADMIN).status_code == 200
    for exhaustive in ("false", "true"):
        result = get(client, q="the", per_page=5, freshness="off", exhaustive=exhaustive)
        slugs = [h["slug"] for h in result["hits"]]
        assert slugs[0] == organic[9] and organic[0] not in slugs and result["rules"] == ["r"]
        assert result["exhaustive"]["facets"] is (exhaustive == "true")
