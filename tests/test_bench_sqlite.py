"""scripts/_sqlite_fts.py, the SQLite FTS5 peer of scripts/bench, does the same work as the service.

Correctness only, no timing: for queries whose words the two tokenizers treat alike (Porter vs
Snowball stemming agree on them; typo tolerance off in the service, which FTS5 lacks), the totals,
the all/any-word fallback, the facet counts (topics without their own filter, entities, months) and
the hits agree with `SearchEngine.search`, and snippets are HTML-escaped text with `<mark>`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import REPO, REUTERS, SAMPLE, BuiltIndex, assert_same_facets

from search_service.index.reader import IndexReader
from search_service.search.engine import SearchEngine, SearchRequest

sys.path.insert(0, str(REPO / "scripts"))
import _sqlite_fts

FACETS = ("topics", "entities", "published_at")

SAMPLE_QUERIES = [
    ("oil", None),
    ("launch", None),
    ("markets", None),
    ("rates inflation", None),
    ("rates", "central-banks"),  # topic facet counted without its own filter, the rest with it
    ("china", "trade"),
    ("europe gas storage", None),  # too few with every word: the any-word fallback
    ("nvidia rocket", None),
    ("space agency", None),
    ("zzzunknownword", None),
]
REUTERS_QUERIES = [("oil", None), ("bank rates", None), ("cocoa", None), ("oil prices", "crude"), ("inflation", None)]


def service_search(index: BuiltIndex, q: str, topic: str | None, per_page: int = 10) -> dict:
    engine = SearchEngine(IndexReader(index.store, index.config), index.config)
    request = SearchRequest(
        q=q, filters={"topics": (topic,)} if topic else {}, facets=FACETS, per_page=per_page, typos=False
    )
    return engine.search(request)


@pytest.fixture
def sample_db(tmp_path: Path, sample_index: BuiltIndex) -> Path:
    db = tmp_path / "sample.db"
    assert _sqlite_fts.build(db, [str(SAMPLE)], sample_index.config) == sample_index.report.indexed
    return db


@pytest.mark.parametrize(("q", "topic"), SAMPLE_QUERIES)
def test_same_totals_facets_and_hits_as_the_service(sample_index: BuiltIndex, sample_db: Path, q, topic) -> None:
    fts = _sqlite_fts.FtsSearch(sample_db, sample_index.config.ranking.fallback_min_hits)
    got = fts.search(q, (topic,) if topic else ())
    want = service_search(sample_index, q, topic, per_page=100)
    assert want["total"] <= 100
    assert (got["total"], got["matched"]) == (want["total"], want["matched"])
    assert_same_facets(got["facets"], {name: want["facets"][name] for name in FACETS})
    assert len(got["hits"]) == min(10, want["total"])
    assert {h["slug"] for h in got["hits"]} <= {h["slug"] for h in want["hits"]}
    for hit in got["hits"]:
        assert {"slug", "title", "url", "published_at", "topics", "entities", "score", "highlights"} <= hit.keys()
        if topic:
            assert topic in hit["topics"]


def test_selected_topic_is_listed_even_without_matches(sample_index: BuiltIndex, sample_db: Path) -> None:
    fts = _sqlite_fts.FtsSearch(sample_db)
    got = fts.search("launch", ("no-such-topic",))
    want = service_search(sample_index, "launch", "no-such-topic")
    assert got["total"] == want["total"] == 0
    assert got["facets"]["topics"] == want["facets"]["topics"]
    assert {"value": "no-such-topic", "count": 0} in got["facets"]["topics"]


def test_snippets_are_escaped_text_with_marks(sample_db: Path) -> None:
    fts = _sqlite_fts.FtsSearch(sample_db)
    result = fts.search("nvidia")
    assert result["hits"]
    for hit in result["hits"]:
        snippet, title = hit["highlights"]["snippet"], hit["highlights"]["title"]
        assert snippet.strip()
        assert "<mark>" in snippet or "<mark>" in title
        plain = snippet.replace("<mark>", "").replace("</mark>", "")
        assert "<" not in plain and ">" not in plain  # tickers like <NVDA.O> come out escaped
    assert any("&lt;" in hit["highlights"]["snippet"] for hit in result["hits"])


def test_match_expression_quotes_words() -> None:
    assert _sqlite_fts.match_expression(["oil", "prices"]) == '"oil" AND "prices"'
    assert _sqlite_fts.match_expression(["oil", "prices"], any_word=True) == '"oil" OR "prices"'
    assert _sqlite_fts.match_expression(['a"b']) == '"a""b"'


def test_month_buckets_fill_empty_months() -> None:
    rows = [("2026-11-01", 2), ("2027-02-01", 1)]
    assert _sqlite_fts.month_buckets(rows) == [
        {"start": "2026-11-01", "count": 2},
        {"start": "2026-12-01", "count": 0},
        {"start": "2027-01-01", "count": 0},
        {"start": "2027-02-01", "count": 1},
    ]
    assert _sqlite_fts.month_buckets([]) == []


@pytest.mark.slow
def test_reuters_facet_counts_equal_the_service(tmp_path: Path, reuters_index: BuiltIndex) -> None:
    if not REUTERS.is_file():
        pytest.skip(f"{REUTERS} not found")
    db = tmp_path / "reuters.db"
    assert _sqlite_fts.build(db, [str(REUTERS)], reuters_index.config) == reuters_index.report.indexed
    fts = _sqlite_fts.FtsSearch(db)
    for q, topic in REUTERS_QUERIES:
        got = fts.search(q, (topic,) if topic else ())
        want = service_search(reuters_index, q, topic)
        assert (got["total"], got["matched"]) == (want["total"], want["matched"]), q
        assert_same_facets(got["facets"], {name: want["facets"][name] for name in FACETS})
        assert len(got["hits"]) == 10
