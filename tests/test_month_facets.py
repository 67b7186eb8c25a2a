"""Month and year date counts come from one range per calendar month, not from day buckets.

Over an archive of years a 1-day histogram has thousands of buckets; the month ranges must count
exactly what the day buckets rolled up into months counted, at month boundaries too, and stay
exact when the index holds dates outside the span the engine last saw.
"""

from __future__ import annotations

import copy
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE, BuiltIndex, build_index, read_jsonl, write_jsonl

from search_service.index.reader import IndexReader
from search_service.search import counting as search_module
from search_service.search.engine import SearchEngine, SearchRequest
from search_service.search.facets import date_buckets, day_histogram_agg, month_counts, month_ranges_agg

sys.path.insert(0, str(REPO / "scripts"))
import _bench


@pytest.fixture(params=["every query", "as shipped"])
def threshold(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Month ranges for every query (the small indexes here have fewer matches than the threshold), and as shipped."""
    if request.param == "every query":
        monkeypatch.setattr(search_module, "MONTH_RANGES_MIN_MATCHES", 0)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuiltIndex, Path]:
    """Seed-shaped articles dated over several years."""
    work = tmp_path_factory.mktemp("archive")
    corpus = work / "seed.jsonl"
    _bench.generate_corpus("seed", 300, corpus, _bench.DEFAULT_CORPUS, seed=5)
    return build_index(work / "index", [corpus]), corpus


def engine_of(index: BuiltIndex) -> SearchEngine:
    return SearchEngine(IndexReader(index.store, index.config), index.config)


def by_day(engine: SearchEngine, request: SearchRequest, interval: str, require_all: bool) -> list[dict]:
    """The counts the 1-day histogram gives, rolled up the way the service did before."""
    searcher = engine.reader.searcher()
    plan = engine.plan(request, searcher, require_all=require_all)
    name = engine.date_field
    days = searcher.aggregate(plan.query(without="published_at"), {name: day_histogram_agg(name)})[name]
    return date_buckets(days, interval)


@pytest.mark.parametrize("q", ["", "cloud", "security breach"])
@pytest.mark.parametrize("interval", ["month", "year"])
def test_month_ranges_count_what_the_day_buckets_counted(
    archive: tuple[BuiltIndex, Path], q: str, interval: str, threshold: None
) -> None:
    engine = engine_of(archive[0])
    request = SearchRequest(q=q, facets=("published_at",), date_interval=interval, typos=False)
    response = engine.search(request)
    got = response["facets"]["published_at"]
    assert got == by_day(engine, request, interval, require_all=response["matched"] == "all")
    assert sum(b["count"] for b in got) == response["total"] > 0


def test_months_of_the_whole_archive_match_the_jsonl(archive: tuple[BuiltIndex, Path], threshold: None) -> None:
    index, corpus = archive
    first, last = engine_of(index).date_span(index.searcher())
    assert (last - first).days > 365  # an archive of years: the case the month ranges are for
    want = Counter(record["published_at"][:7] for record in read_jsonl(corpus))
    got = engine_of(index).search(SearchRequest(facets=("published_at",)))["facets"]["published_at"]
    assert {b["start"][:7]: b["count"] for b in got if b["count"]} == want


def test_an_article_at_the_last_second_of_a_month_counts_in_that_month(tmp_path: Path, threshold: None) -> None:
    records = read_jsonl(SAMPLE)[:3]
    dated = []
    moments = ["2024-01-31T23:59:59Z", "2024-02-01T00:00:00Z", "2024-03-31T23:59:59Z"]
    for record, moment in zip(records, moments, strict=True):
        record = copy.deepcopy(record)
        record["published_at"] = moment
        dated.append(record)
    index = build_index(tmp_path / "index", [write_jsonl(tmp_path / "dated.jsonl", dated)])
    got = engine_of(index).search(SearchRequest(facets=("published_at",)))["facets"]["published_at"]
    assert [(b["start"][:7], b["count"]) for b in got] == [("2024-01", 1), ("2024-02", 1), ("2024-03", 1)]


def test_a_span_older_than_the_index_still_counts_every_article(
    archive: tuple[BuiltIndex, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_module, "MONTH_RANGES_MIN_MATCHES", 0)
    index, _ = archive
    engine = engine_of(index)
    request = SearchRequest(facets=("published_at",))
    want = engine.search(request)["facets"]["published_at"]
    first, _ = engine.date_span(index.searcher())
    short = (first, date(first.year + 1, 1, 1))  # as if the later articles came in after the span was read
    searcher = index.searcher()
    assert month_counts(searcher.aggregate(engine.plan(request, searcher).query(), {
        "d": month_ranges_agg(engine.counter.seconds_field, *short)
    })["d"]) is None  # fmt: skip
    stale = engine_of(index)
    monkeypatch.setattr(stale.counter, "date_span", lambda searcher: short)
    assert stale.search(request)["facets"]["published_at"] == want
