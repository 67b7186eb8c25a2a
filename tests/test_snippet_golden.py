"""Highlights on the Reuters corpus are exactly those recorded before snippets were made cheaper on long bodies.

tests/golden/reuters_snippets.jsonl.gz was made by `scripts/record_snippet_golden` (400 queries drawn
from the corpus with seed 15: words, stemmed forms, phrases, prefixes, typos, words found only late in
a long body, field queries and exclusions) from the code as it was before the change. Each recorded
hit's title highlight and snippet must come out the same today.

Ties in score (prefix queries score alike; equal BM25 scores) are ordered by document address, which
depends on how the index's segments were written: a recorded hit may sit on a later page today. The
test pages through today's results until it has found every recorded slug, so it compares the
highlights of the same article under the same query, whatever the order of ties.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import BuiltIndex

from search_service.reader import IndexReader
from search_service.search import SearchEngine, SearchRequest

GOLDEN = Path(__file__).parent / "golden" / "reuters_snippets.jsonl.gz"
PAGE = 100
MAX_PAGES = 10


def golden_queries() -> list[dict[str, Any]]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def engine(reuters_index: BuiltIndex) -> SearchEngine:
    return SearchEngine(IndexReader(reuters_index.store, reuters_index.config), reuters_index.config)


def highlights_of(engine: SearchEngine, query: dict[str, Any], slugs: set[str]) -> tuple[int, dict[str, Any]]:
    """The total and the highlights of today's hits, paging on until every slug in `slugs` is found."""
    found: dict[str, Any] = {}
    total = 0
    prefix = query.get("prefix", False)
    # The first page as recorded, then deeper pages only while a recorded tie is still missing.
    requests = [SearchRequest(q=query["q"], prefix=prefix, per_page=5)]
    requests += [SearchRequest(q=query["q"], prefix=prefix, per_page=PAGE, page=p) for p in range(1, MAX_PAGES + 1)]
    for request in requests:
        result = engine.search(request)
        total = result["total"]
        for hit in result["hits"]:
            found[hit["slug"]] = {"title": hit["highlights"]["title"], "snippet": hit["highlights"]["snippet"]}
        if slugs <= found.keys() or not result["hits"]:
            break
    return total, found


def test_golden_file_covers_every_kind_of_match():
    kinds = {q["kind"] for q in golden_queries()}
    assert kinds == {"word", "stemmed", "words", "phrase", "prefix", "typo", "late", "field"}
    hits = [h for q in golden_queries() for h in q["hits"]]
    assert len(hits) > 1500
    assert sum("<mark>" in h["snippet"] for h in hits) > 0.8 * len(hits)


@pytest.mark.slow
def test_reuters_highlights_match_the_recorded_golden_file(engine: SearchEngine):
    differences = []
    for query in golden_queries():
        recorded = {h["slug"]: {"title": h["title"], "snippet": h["snippet"]} for h in query["hits"]}
        total, found = highlights_of(engine, query, set(recorded))
        assert total == query["total"], query["q"]
        for slug, expected in recorded.items():
            assert slug in found, f"{query['q']!r}: recorded hit {slug} is not among the first {MAX_PAGES} pages"
            if found[slug] != expected:
                differences.append((query["kind"], query["q"], slug, expected, found[slug]))
    assert not differences, f"{len(differences)} highlights differ; first: {differences[0]}"
