"""Ranking modes: the search box (all words, the fields' boosts) and the any-word fallback for
sentence queries ([ranking.fallback_boosts]); typo corrections."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tantivy
from conftest import BuiltIndex

from search_service.index.reader import IndexReader
from search_service.search.engine import SearchEngine, SearchRequest
from search_service.search.query import one_edit_words, parse

SENTENCE = "ski and tennis equipment maker agreed to buy a canadian boot manufacturer for an undisclosed sum"
SHORT = "cocoa buffer stock"


@pytest.fixture(scope="module")
def engine(reuters_index: BuiltIndex) -> Iterator[SearchEngine]:
    yield SearchEngine(IndexReader(reuters_index.store, reuters_index.config, interval=3600), reuters_index.config)


def reference_query(engine: SearchEngine, text: str, boosts: dict[str, float], require_all: bool) -> tantivy.Query:
    """The query spelled out by hand: every word over every boosted field, BM25 times the boost."""
    occur = tantivy.Occur.Must if require_all else tantivy.Occur.Should
    clauses = []
    for word in text.split():
        fields = []
        for name, boost in boosts.items():
            for token in engine.builder.tokens(word, name):
                term = tantivy.Query.term_query(engine.schema, name, token)
                fields.append((tantivy.Occur.Should, tantivy.Query.boost_query(term, boost)))
        clauses.append((occur, tantivy.Query.boolean_query(fields)))
    return tantivy.Query.boolean_query(clauses)


@pytest.mark.parametrize(("q", "matched"), [(SENTENCE, "any"), (SHORT, "all")])
def test_each_mode_ranks_with_its_own_boosts(engine: SearchEngine, q: str, matched: str) -> None:
    result = engine.search(SearchRequest(q=q, per_page=10, typos=False, highlight=False, freshness=False))
    assert result["matched"] == matched
    config = engine.config
    boosts = config.fallback_search_boosts() if matched == "any" else config.search_boosts()
    expected = engine.reader.searcher().search(reference_query(engine, q, boosts, matched == "all"), 10)
    assert [hit["score"] for hit in result["hits"]] == [round(score, 4) for score, _ in expected.hits]


def test_fallback_boosts_differ_from_the_search_box_boosts(engine: SearchEngine) -> None:
    """The search box keeps its title lead; sentence queries rank the body first, over the same fields."""
    box, fallback = engine.builder.boosts, engine.builder.fallback_boosts
    assert max(box, key=box.get) == "title"
    assert max(fallback, key=fallback.get) == "body"
    assert set(fallback) == set(box)


def test_fallback_snippets_are_placed_on_the_matching_words(engine: SearchEngine) -> None:
    """Snippets of fallback hits are cut around the query's words in the body."""
    result = engine.search(SearchRequest(q=SENTENCE, per_page=5, typos=False))
    assert result["matched"] == "any"
    assert all("<mark>" in hit["highlights"]["snippet"] for hit in result["hits"])


def test_one_edit_words_keep_the_first_letter_but_swap_the_first_two() -> None:
    variants = one_edit_words("cat")
    assert {"ct", "ca", "act", "cta", "cut", "coat", "cats"} <= variants
    assert not {"cat", "at", "bat", "scat"} & variants


@pytest.mark.parametrize(
    ("typed", "stem"),
    [
        ("interaciton", "interact"),  # swap late in a word whose stem is shorter than the word
        ("cpmpany", "compani"),  # second letter: outside the dictionary walk's two-letter prefixes
        ("cmopany,", "compani"),  # punctuation glued to the word
    ],
)
def test_a_one_edit_typo_is_corrected_to_the_stem_of_its_fix(engine: SearchEngine, typed: str, stem: str) -> None:
    searcher = engine.reader.searcher()
    corrections = engine.builder.corrections(parse(typed, engine.builder.known_fields), searcher)
    assert stem in corrections[typed]


def test_corrections_are_looked_up_for_at_most_max_typo_words_unknown_words(engine: SearchEngine) -> None:
    limit = engine.config.ranking.max_typo_words
    noise = [f"zzq{letter}xvw" for letter in "abcdefghijklmnopqrstuvwxyz"[:limit]]
    searcher = engine.reader.searcher()

    def corrected(words: list[str]) -> dict[str, tuple[str, ...]]:
        return engine.builder.corrections(parse(" ".join(words), engine.builder.known_fields), searcher)

    assert "cpmpany" in corrected([*noise[: limit - 1], "cpmpany"])
    assert "cpmpany" not in corrected([*noise, "cpmpany"])
    # Known words are free: they never count against the limit.
    assert "cpmpany" in corrected([*(["oil"] * 3), *noise[: limit - 1], "prices", "cpmpany"])
