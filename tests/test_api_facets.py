"""GET /search totals, filters and facet counts against oracles computed from articles.jsonl.

Every expected number here comes from the JSONL decoded with the stdlib (`reuters_records`), never
from the service. Facets are disjunctive: each facet is counted under every filter except its own.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from conftest import REUTERS_DOCUMENTS

from search_service.index.document import value_id

Record = dict[str, Any]


# -- helpers ------------------------------------------------------------------------------------


def utc(value: str) -> datetime:
    """An ISO timestamp from the JSONL ('1987-02-26 15:01:01.790000+00:00') or the API ('...Z')."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def day_start(value: str) -> datetime:
    return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)


def search(client: Any, **params: Any) -> dict[str, Any]:
    response = client.get("/search", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def record_filter(params: dict[str, Any], without: str | None = None) -> Callable[[Record], bool]:
    """The oracle for the API's filter parameters: OR within a parameter, AND across parameters,
    published_after inclusive, published_before exclusive. `without` drops one filter
    ('topic', 'entity', 'lang' or 'date'), as disjunctive facets do."""
    topics = set(as_list(params.get("topic"))) if without != "topic" else set()
    entities = set(as_list(params.get("entity"))) if without != "entity" else set()
    langs = set(as_list(params.get("lang"))) if without != "lang" else set()
    after = day_start(params["published_after"]) if without != "date" and params.get("published_after") else None
    before = day_start(params["published_before"]) if without != "date" and params.get("published_before") else None

    def keep(record: Record) -> bool:
        if topics and not topics.intersection(record["topics"]):
            return False
        if entities and not entities.intersection(record["entities"]):
            return False
        if langs and record["lang"] not in langs:
            return False
        when = utc(record["published_at"])
        if after is not None and when < after:
            return False
        return before is None or when < before

    return keep


def value_counts(records: Iterable[Record], key: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for record in records:
        counts.update(set(record[key]))
    return counts


def expected_facet(counts: Counter[str], size: int, selected: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The `size` most frequent values (of values tied at the last place, those with the smallest
    ids: search/facet_ids.py) by count desc then value, then every selected value not listed."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], value_id(item[0])))[:size]
    ranked.sort(key=lambda item: (-item[1], item[0]))
    shown = {value for value, _ in ranked}
    ranked += [(value, counts.get(value, 0)) for value in selected if value not in shown]
    return [{"value": value, "count": count} for value, count in ranked]


def bucket_start(day: date, interval: str) -> date:
    if interval == "year":
        return day.replace(month=1, day=1)
    if interval == "month":
        return day.replace(day=1)
    if interval == "week":
        return day - timedelta(days=day.weekday())
    return day


def next_start(start: date, interval: str) -> date:
    if interval == "year":
        return start.replace(year=start.year + 1)
    if interval == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=7 if interval == "week" else 1)


def expected_buckets(records: Iterable[Record], interval: str) -> list[dict[str, Any]]:
    """UTC buckets from the first to the last non-empty one, empty buckets in between included."""
    counts = Counter(bucket_start(utc(r["published_at"]).date(), interval) for r in records)
    if not counts:
        return []
    out, current = [], min(counts)
    while current <= max(counts):
        out.append({"start": current.isoformat(), "count": counts.get(current, 0)})
        current = next_start(current, interval)
    return out


# -- totals -------------------------------------------------------------------------------------


def test_empty_query_counts_every_article(reuters_client: Any, reuters_records: list[Record]) -> None:
    result = search(reuters_client, facets="")
    assert len(reuters_records) == REUTERS_DOCUMENTS
    assert result["total"] == REUTERS_DOCUMENTS
    assert result["matched"] == "all"


FILTERS = [
    pytest.param({"topic": "crude"}, id="topic=crude"),
    pytest.param({"topic": "grain"}, id="topic=grain"),
    pytest.param({"topic": "earn"}, id="topic=earn"),
    pytest.param({"entity": "USA"}, id="entity=USA"),
    pytest.param({"entity": "Japan"}, id="entity=Japan"),
    pytest.param({"published_after": "1987-03-01", "published_before": "1987-04-01"}, id="march"),
    pytest.param({"published_after": "1987-06-01"}, id="after-only"),
    pytest.param({"published_before": "1987-03-01"}, id="before-only"),
    pytest.param({"topic": "crude", "entity": "USA"}, id="crude+USA"),
    pytest.param({"topic": ["grain", "wheat"]}, id="grain-or-wheat"),
    pytest.param({"entity": ["Japan", "UK"], "topic": "trade"}, id="japan-or-uk+trade"),
    pytest.param(
        {"topic": "crude", "entity": "USA", "published_after": "1987-03-01", "published_before": "1987-04-01"},
        id="crude+USA+march",
    ),
    pytest.param({"lang": "en", "topic": "cocoa"}, id="lang=en+cocoa"),
]


@pytest.mark.parametrize("params", FILTERS)
def test_filtered_total_matches_jsonl_oracle(
    reuters_client: Any, reuters_records: list[Record], params: dict[str, Any]
) -> None:
    keep = record_filter(params)
    expected = sum(1 for record in reuters_records if keep(record))
    assert search(reuters_client, facets="", per_page=1, **params)["total"] == expected


@pytest.mark.parametrize("params", FILTERS)
def test_facet_counts_are_exact_and_disjunctive(
    reuters_client: Any, reuters_records: list[Record], params: dict[str, Any]
) -> None:
    """topics are counted without the topic filter, entities without the entity filter, the
    histogram without the date filter; every other filter applies. Order: count desc, then value."""
    facets = search(reuters_client, per_page=1, facet_size=100, **params)["facets"]
    for facet, param in (("topics", "topic"), ("entities", "entity")):
        keep = record_filter(params, without=param)
        counts = value_counts((r for r in reuters_records if keep(r)), facet)
        assert facets[facet] == expected_facet(counts, 100, as_list(params.get(param))), facet
    keep = record_filter(params, without="date")
    assert facets["published_at"] == expected_buckets((r for r in reuters_records if keep(r)), "month")


def test_topic_facet_under_crude_and_usa_counts_each_topic_with_usa(
    reuters_client: Any, reuters_records: list[Record]
) -> None:
    """The disjunctive rule spelled out: with topic=crude selected, facets.topics[T] is the number of
    USA articles with topic T (the crude filter is ignored for its own facet)."""
    facets = search(reuters_client, topic="crude", entity="USA", per_page=1, facet_size=100)["facets"]
    usa = [r for r in reuters_records if "USA" in r["entities"]]
    listed = {item["value"]: item["count"] for item in facets["topics"]}
    for topic in ("earn", "acq", "grain", "crude", "ship", "money-fx"):
        assert listed[topic] == sum(1 for r in usa if topic in r["topics"]), topic
    crude = [r for r in reuters_records if "crude" in r["topics"]]
    entities = {item["value"]: item["count"] for item in facets["entities"]}
    for entity in ("USA", "Iran", "Saudi Arabia", "Organisation of Petroleum Exporting Countries"):
        assert entities[entity] == sum(1 for r in crude if entity in r["entities"]), entity


def test_entities_facet_under_crude_is_entity_counts_among_crude_articles(
    reuters_client: Any, reuters_records: list[Record]
) -> None:
    facets = search(reuters_client, topic="crude", per_page=1, facet_size=25)["facets"]
    counts = value_counts((r for r in reuters_records if "crude" in r["topics"]), "entities")
    assert facets["entities"] == expected_facet(counts, 25)


@pytest.mark.parametrize(
    ("param", "facet", "value"),
    [("topic", "topics", "wheat"), ("entity", "entities", "Japan"), ("topic", "topics", "cocoa")],
)
def test_selected_value_is_listed_even_when_not_in_top_facet_size(
    reuters_client: Any, reuters_records: list[Record], param: str, facet: str, value: str
) -> None:
    values = search(reuters_client, per_page=1, facet_size=1, **{param: value})["facets"][facet]
    counts = value_counts(reuters_records, facet)
    top = min(counts.items(), key=lambda item: (-item[1], item[0]))
    assert top[0] != value
    assert values == [{"value": top[0], "count": top[1]}, {"value": value, "count": counts[value]}]


def test_selected_value_without_matches_is_listed_with_zero(reuters_client: Any) -> None:
    result = search(reuters_client, topic="no-such-topic", facet_size=3)
    assert result["total"] == 0
    assert result["hits"] == []
    assert {"value": "no-such-topic", "count": 0} in result["facets"]["topics"]


def test_unknown_language_filter_finds_nothing_and_en_finds_everything(reuters_client: Any) -> None:
    assert search(reuters_client, lang="zh", facets="")["total"] == 0
    assert search(reuters_client, lang="en", facets="")["total"] == REUTERS_DOCUMENTS


def test_facets_parameter_selects_the_facets_returned(reuters_client: Any) -> None:
    assert set(search(reuters_client, per_page=1)["facets"]) == {"topics", "entities", "published_at"}
    assert set(search(reuters_client, per_page=1, facets="topics")["facets"]) == {"topics"}
    assert search(reuters_client, per_page=1, facets="")["facets"] == {}


# -- date histogram -----------------------------------------------------------------------------


def test_month_buckets_match_jsonl_and_include_empty_months(reuters_client: Any, reuters_records: list[Record]) -> None:
    buckets = search(reuters_client, per_page=1, date_interval="month")["facets"]["published_at"]
    assert buckets == expected_buckets(reuters_records, "month")
    by_month = {b["start"]: b["count"] for b in buckets}
    assert by_month["1987-02-01"] == 222
    assert by_month["1987-03-01"] == 11_490
    assert by_month["1987-04-01"] == 5_004
    for empty in ("1987-05-01", "1987-07-01", "1987-08-01", "1987-09-01"):
        assert by_month[empty] == 0, empty
    assert sum(by_month.values()) == REUTERS_DOCUMENTS


def test_year_bucket_holds_the_whole_corpus(reuters_client: Any) -> None:
    buckets = search(reuters_client, per_page=1, date_interval="year")["facets"]["published_at"]
    assert buckets == [{"start": "1987-01-01", "count": REUTERS_DOCUMENTS}]


def test_week_buckets_start_on_mondays_and_match_jsonl(reuters_client: Any, reuters_records: list[Record]) -> None:
    result = search(reuters_client, per_page=1, date_interval="week", topic="grain")
    buckets = result["facets"]["published_at"]
    assert all(date.fromisoformat(b["start"]).weekday() == 0 for b in buckets)
    starts = [date.fromisoformat(b["start"]) for b in buckets]
    assert all(b - a == timedelta(days=7) for a, b in itertools.pairwise(starts))
    assert sum(b["count"] for b in buckets) == result["total"]
    assert buckets == expected_buckets((r for r in reuters_records if "grain" in r["topics"]), "week")


def test_day_buckets_are_consecutive_utc_days_summing_to_total(
    reuters_client: Any, reuters_records: list[Record]
) -> None:
    result = search(reuters_client, per_page=1, date_interval="day", topic="crude", entity="USA")
    buckets = result["facets"]["published_at"]
    starts = [date.fromisoformat(b["start"]) for b in buckets]
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(starts))
    assert sum(b["count"] for b in buckets) == result["total"]
    keep = record_filter({"topic": "crude", "entity": "USA"})
    assert buckets == expected_buckets((r for r in reuters_records if keep(r)), "day")


def test_histogram_ignores_its_own_date_filter(reuters_client: Any, reuters_records: list[Record]) -> None:
    """Disjunctive like the other facets: narrowing to March still shows every month's count."""
    result = search(
        reuters_client, per_page=1, topic="cocoa", published_after="1987-03-01", published_before="1987-04-01"
    )
    cocoa = [r for r in reuters_records if "cocoa" in r["topics"]]
    assert result["total"] == sum(1 for r in cocoa if r["published_at"].startswith("1987-03"))
    assert result["facets"]["published_at"] == expected_buckets(cocoa, "month")


# -- every hit satisfies its filters ------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"topic": ["grain", "wheat"], "sort": "oldest"},
        {"topic": "crude", "entity": "USA", "sort": "newest"},
        {"entity": ["Japan", "China"], "published_after": "1987-04-01", "sort": "oldest"},
        {"topic": "earn", "published_after": "1987-03-10", "published_before": "1987-03-12", "sort": "newest"},
        {"q": "oil prices", "topic": "crude", "published_before": "1987-04-01"},
        {"q": "rates", "entity": "UK", "lang": "en"},
    ],
    ids=["grain-or-wheat", "crude+USA", "japan-or-china+after", "earn+2days", "q+topic+before", "q+entity+lang"],
)
def test_every_hit_satisfies_the_filters(
    reuters_client: Any, reuters_records: list[Record], params: dict[str, Any]
) -> None:
    by_slug = {r["slug"]: r for r in reuters_records}
    keep = record_filter(params)
    hits = search(reuters_client, per_page=100, facets="", **params)["hits"]
    assert hits
    for hit in hits:
        record = by_slug[hit["slug"]]
        assert keep(record), hit["slug"]
        # The hit reports the stored values, which are the record's.
        assert hit["topics"] == list(dict.fromkeys(record["topics"]))
        assert hit["entities"] == record["entities"]
        assert hit["lang"] == record["lang"]
        assert utc(hit["published_at"]) == utc(record["published_at"])
        if "topic" in params:
            assert set(as_list(params["topic"])) & set(hit["topics"])
        if "entity" in params:
            assert set(as_list(params["entity"])) & set(hit["entities"])
        if "published_after" in params:
            assert utc(hit["published_at"]) >= day_start(params["published_after"])
        if "published_before" in params:
            assert utc(hit["published_at"]) < day_start(params["published_before"])


# -- exact date bounds --------------------------------------------------------------------------


def test_published_before_excludes_an_article_published_exactly_at_the_bound(
    reuters_client: Any, reuters_records: list[Record]
) -> None:
    # reuters-15370 was published at exactly 1987-04-09 00:00:00 UTC.
    bound = day_start("1987-04-09")
    assert any(utc(r["published_at"]) == bound for r in reuters_records)
    params = {"published_after": "1987-04-08", "published_before": "1987-04-09"}
    keep = record_filter(params)
    result = search(reuters_client, sort="newest", per_page=5, facets="", **params)
    assert result["total"] == sum(1 for r in reuters_records if keep(r))
    assert all(utc(hit["published_at"]) < bound for hit in result["hits"])


def test_published_after_includes_an_article_published_exactly_at_a_fractional_second_bound(
    reuters_client: Any, reuters_records: list[Record]
) -> None:
    first = min(reuters_records, key=lambda r: utc(r["published_at"]))
    bound = utc(first["published_at"])
    assert bound.microsecond, "the oldest article should have a fractional-second timestamp"
    result = search(reuters_client, published_after=bound.isoformat(), sort="oldest", per_page=1, facets="")
    assert result["total"] == REUTERS_DOCUMENTS
    assert result["hits"][0]["slug"] == first["slug"]


def test_published_after_includes_an_article_published_exactly_at_a_whole_second_bound(
    reuters_client: Any, reuters_records: list[Record]
) -> None:
    whole = sorted(
        (r for r in reuters_records if utc(r["published_at"]).microsecond == 0), key=lambda r: r["published_at"]
    )
    record = whole[0]
    bound = utc(record["published_at"])
    result = search(reuters_client, published_after=bound.isoformat(), sort="oldest", per_page=1, facets="")
    assert result["total"] == sum(1 for r in reuters_records if utc(r["published_at"]) >= bound)
    assert result["hits"][0]["slug"] == record["slug"]


def test_date_filters_accept_offsets_and_convert_to_utc(reuters_client: Any, reuters_records: list[Record]) -> None:
    """1987-03-01T05:00:00+05:00 is 1987-03-01T00:00:00Z."""
    keep = record_filter({"published_after": "1987-03-01"})
    expected = sum(1 for r in reuters_records if keep(r))
    assert search(reuters_client, published_after="1987-03-01T05:00:00+05:00", facets="")["total"] == expected
    assert search(reuters_client, published_after="1987-03-01T00:00:00Z", facets="")["total"] == expected


# -- facets under a text query ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "matched"),
    [("cocoa", "all"), ("oil prices", "all"), ("french ski tennis equipment maker zebra", "any")],
)
def test_facets_under_a_text_query_count_exactly_the_hits(
    reuters_client: Any, reuters_records: list[Record], q: str, matched: str
) -> None:
    """Facet counts describe the same articles the hits list, also after the any-word fallback:
    every hit is fetched page by page and its topics/entities/date are read from the JSONL."""
    by_slug = {r["slug"]: r for r in reuters_records}
    result = search(reuters_client, q=q, per_page=1, facet_size=100)
    assert result["matched"] == matched
    slugs: list[str] = []
    for page in range(1, 101):
        hits = search(reuters_client, q=q, page=page, per_page=100, facets="")["hits"]
        if not hits:
            break
        slugs += [hit["slug"] for hit in hits]
    assert len(slugs) == result["total"]
    records = [by_slug[slug] for slug in slugs]
    for facet in ("topics", "entities"):
        assert result["facets"][facet] == expected_facet(value_counts(records, facet), 100), facet
    assert result["facets"]["published_at"] == expected_buckets(records, "month")
