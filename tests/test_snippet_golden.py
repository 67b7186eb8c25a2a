"""Highlights on the Reuters corpus are exactly those recorded before snippets were made cheaper on long bodies.

tests/golden/reuters_snippets.jsonl.gz was made by `scripts/record_snippet_golden` (400 queries drawn
from the corpus with seed 15: words, stemmed forms, phrases, prefixes, typos, words found only late in
a long body, field queries and exclusions) from the code as it was before the change. Each recorded
hit's title highlight and snippet must come out the same today.

Ties in score (prefix queries score alike; equal BM25 scores) are ordered by document address, which
depends on how the index's segments were written: a recorded hit may sit on a later page today. The
test pages through today's results until it has found every recorded slug, so it compares the
highlights of the same article under the same query, whatever the order of ties.

The one change on purpose: a body of more than FIRST_WINDOW (2,000) characters is no longer walked
whole by tantivy's generator for every hit (see snippets.py). Its snippet is the best fragment of
its first 2,000 characters, or, when those hold no match, the best one near the first match further
in; for a multi-word query whose rarest word the first window's fragment lacks, the best fragment
near that word's first place. The recording picked the best fragment of the whole body, so 20 of
the 1,823 recorded hits, all bodies over 2,000 characters, differ in one of two ways: a fragment
with more matches sat further in (e.g. "other" twice near the end of a wire whose lede has it
once; "billion crowns" twice in a later paragraph than the first "billion crowns"), or the match
is late and the fragment chosen around it starts a few words earlier or later. Every
other hit, and every title, must be identical; a differing long-body snippet must still mark a
word whenever the recorded one did.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
import tantivy
from conftest import BuiltIndex

from search_service.index.reader import IndexReader
from search_service.search.engine import SearchEngine, SearchRequest
from search_service.search.snippets import FIRST_WINDOW

_MARK = re.compile(r"</?mark>")
GOLDEN = Path(__file__).parent / "golden" / "reuters_snippets.jsonl.gz"
# Totals changed on purpose since the recording (issue 24): a word some article holds is searched as
# typed, never widened to look-alikes ('unstated' found 3,092 articles through 'stated'), and words
# under 5 letters are not corrected ('prag'). Their recorded hits still found must match.
KNOWN_WORDS_AS_TYPED = {
    "patronage": 1,
    "unstated": 1,
    "relased": 1,
    "title:reception": 2,
    "prag": 1,
    "ruter": 1,
    # 'approx' (2 articles) is no longer widened: too few hold every word, so the any-word fallback
    # ranks the ones that do first, then the others.
    "approx rate will": 9139,
}
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


def body_lengths(engine: SearchEngine) -> dict[str, int]:
    """Characters of each article's indexed body text (what snippets are cut from)."""
    searcher = engine.reader.searcher()
    result = searcher.search(tantivy.Query.all_query(), searcher.num_docs)
    lengths = {}
    for _, address in result.hits:
        doc = searcher.doc(address)
        lengths[doc.get_first("slug")] = len(doc.get_first("body") or "")
    return lengths


@pytest.mark.slow
def test_reuters_highlights_match_the_recorded_golden_file(engine: SearchEngine):
    lengths = body_lengths(engine)
    unexplained, long_body, look_alikes = [], [], []
    compared = 0
    for query in golden_queries():
        recorded = {h["slug"]: {"title": h["title"], "snippet": h["snippet"]} for h in query["hits"]}
        total, found = highlights_of(engine, query, set(recorded))
        assert total == KNOWN_WORDS_AS_TYPED.get(query["q"], query["total"]), query["q"]
        for slug, expected in recorded.items():
            if query["q"] in KNOWN_WORDS_AS_TYPED and slug not in found:
                compared += 1  # a look-alike's article, no longer found
                continue
            assert slug in found, f"{query['q']!r}: recorded hit {slug} is not among the first {MAX_PAGES} pages"
            compared += 1
            got = found[slug]
            if got == expected:
                continue
            explained = (
                lengths[slug] > FIRST_WINDOW
                and got["title"] == expected["title"]
                and ("<mark>" in got["snippet"] or "<mark>" not in expected["snippet"])
            )
            if not explained and _fewer_marks(got, expected):
                look_alikes.append((query["q"], slug))  # a look-alike of a known word, no longer searched
                continue
            (long_body if explained else unexplained).append((query["kind"], query["q"], slug, expected, got))
    assert compared == sum(len(q["hits"]) for q in golden_queries())
    assert not unexplained, f"{len(unexplained)} highlights differ unexplained; first: {unexplained[0]}"
    # Long bodies whose best fragment lay past the first window: few, and counted so a change shows.
    assert len(long_body) <= 20, [(kind, q, slug) for kind, q, slug, *_ in long_body]
    # Known words searched as typed (issue 24): look-alikes ('cour' for 'coeur') are no longer marked.
    assert len(look_alikes) <= 5, look_alikes


def _fewer_marks(got: dict[str, str], expected: dict[str, str]) -> bool:
    """The same text, with some of the recorded marks gone and none added."""
    for key in ("title", "snippet"):
        now, then = got[key] or "", expected[key] or ""
        if _MARK.sub("", now) != _MARK.sub("", then) or now.count("<mark>") > then.count("<mark>"):
            return False
    return got != expected
