"""`search-service stats --boilerplate`: paragraphs repeated across a share of the live articles."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI, BuiltIndex, build_index, cli_env, write_jsonl

from search_service.index.indexer import Indexer
from search_service.index.reader import IndexReader
from search_service.ingest.boilerplate import ShareTooSmall, live_documents, repeated_paragraphs

SUBSCRIBE = "Subscribe to The Daily Brief for more stories like this."
CORRECTION = "Correction: an earlier version of this story misstated a date."
PROMO = "Practice interview problems based on real data"  # dropped by the shipped content rules


def article(i: int, extra: list[str]) -> dict[str, Any]:
    body = "\n\n".join([f"# Story {i}", f"Story {i} is about topic number {i * 7}.", *extra, f"It ends {i}."])
    return {
        "slug": f"story-{i:03d}",
        "title": f"Story {i}",
        "summary": f"Summary {i}.",
        "body_md": body,
        "url": f"https://example.com/{i}",
        "canonical_source": f"https://example.com/{i}",
        "published_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "lang": "en",
        "topics": [],
        "entities": [],
        "alternates": {},
    }


@pytest.fixture(scope="module")
def feed_index(tmp_path_factory: pytest.TempPathFactory) -> BuiltIndex:
    """30 articles: 12 end in SUBSCRIBE (two of them deleted afterwards, one with its spacing
    changed), 3 carry CORRECTION, all 30 the promo the shipped rules drop."""
    tmp = tmp_path_factory.mktemp("boilerplate")
    records = []
    for i in range(30):
        extra = [PROMO]
        if i < 12:
            extra.append(SUBSCRIBE if i != 5 else SUBSCRIBE.replace(" to ", "\nto   ", 1))
        if i in (20, 21, 22):
            extra.append(CORRECTION)
        records.append(article(i, extra))
    built = build_index(tmp / "index", [write_jsonl(tmp / "feed.jsonl", records)])
    Indexer(built.store, built.config).delete(["story-000", "story-001"])
    return built


def cli_stats(index_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, "stats", "--index-dir", str(index_dir), "--boilerplate", *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )


def test_stats_boilerplate_finds_a_paragraph_shared_by_many_articles(feed_index: BuiltIndex):
    result = cli_stats(feed_index.index_dir, "--min-share", "0.2", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["articles"] == 28
    # 12 had it, 2 were deleted; the one with other spacing is the same paragraph.
    assert report["paragraphs"] == [{"count": 10, "share": round(10 / 28, 4), "text": SUBSCRIBE}]


def test_a_lower_share_lists_rarer_paragraphs_too_most_common_first(feed_index: BuiltIndex):
    result = cli_stats(feed_index.index_dir, "--min-share", "0.1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "2 paragraphs in at least 10.0% of 28 live articles" in lines[0]
    assert SUBSCRIBE in lines[1] and "10" in lines[1] and "35.7%" in lines[1]
    assert CORRECTION in lines[2] and "10.7%" in lines[2]
    assert PROMO not in result.stdout  # already dropped by a content rule: not indexed, not listed


def test_a_share_outside_0_to_1_is_refused_with_what_to_give(feed_index: BuiltIndex):
    result = cli_stats(feed_index.index_dir, "--min-share", "1.5")
    assert result.returncode == 2
    assert "--min-share must be a share of the articles" in result.stderr


def open_searcher(built: BuiltIndex) -> Any:
    opened = IndexReader(built.store, built.config).current()
    return opened.index.searcher(), opened.index.schema


def test_every_live_article_is_read_once_whatever_the_range_size(feed_index: BuiltIndex):
    searcher, schema = open_searcher(feed_index)
    for chunk in (1, 3, 7, 1000):
        slugs = [doc.get_first("slug") for doc in live_documents(searcher, schema, "slug", chunk)]
        assert sorted(slugs) == [f"story-{i:03d}" for i in range(2, 30)], chunk


def test_few_counters_find_the_same_paragraphs_as_many(feed_index: BuiltIndex):
    searcher, schema = open_searcher(feed_index)
    many = repeated_paragraphs(searcher, schema, "slug", "body", 0.1)
    # 28 articles x 4-5 distinct paragraphs: 40 counters are lowered many times over, and still
    # guarantee anything in more than ~131 / 40 articles survives.
    few = repeated_paragraphs(searcher, schema, "slug", "body", 0.1, capacity=40, chunk=4)
    assert few == many
    assert [p.text for p in many.paragraphs] == [SUBSCRIBE, CORRECTION]


def test_a_share_too_small_for_the_counters_says_so(feed_index: BuiltIndex):
    searcher, schema = open_searcher(feed_index)
    with pytest.raises(ShareTooSmall, match="ask for at least"):
        repeated_paragraphs(searcher, schema, "slug", "body", 0.04, capacity=10)
