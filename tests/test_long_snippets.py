"""Snippets of long bodies: a match anywhere, even 30 KB in, is found, marked and escaped, at a cost that
does not grow with the article (only the first window is tokenized unless the match is further in)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import REUTERS, BuiltIndex, build_index, iter_jsonl, write_jsonl

from search_service.index.reader import IndexReader
from search_service.search.engine import SearchEngine, SearchRequest
from search_service.search.snippets import FIRST_WINDOW

BODY_CHARS = 30_000


def filler(chars: int, skip: int = 0) -> str:
    """Real newswire paragraphs (from the `skip`th wire on), none of them with the words the tests look for."""
    paragraphs, size = [], 0
    for number, record in enumerate(iter_jsonl(REUTERS)):
        if number < skip:
            continue
        text = record["body_md"].split("\n", 2)[-1].strip()
        if any(word in text.lower() for word in ("zeppelin", "zurich", "at&t")):
            continue
        paragraphs.append(text)
        size += len(text) + 2
        if size >= chars:
            return "\n\n".join(paragraphs)
    raise AssertionError("the corpus is too small for the filler")


def article(slug: str, title: str, body: str, summary: str = "A summary without the rare words.") -> dict[str, Any]:
    return {
        "slug": slug,
        "title": title,
        "summary": summary,
        "body_md": body,
        "url": f"https://example.com/{slug}",
        "canonical_source": f"https://example.com/{slug}",
        "published_at": "2026-06-18T03:24:17+00:00",
        "updated_at": "2026-06-18T03:24:17+00:00",
        "lang": "en",
        "topics": [],
        "entities": [],
        "alternates": {},
    }


LATE = "In the last paragraph the Zeppelins of AT&T <ZPL> flew over Zürich at dawn."


@pytest.fixture(scope="module")
def long_index(tmp_path_factory: pytest.TempPathFactory) -> BuiltIndex:
    tmp = tmp_path_factory.mktemp("long-snippets")
    text = filler(BODY_CHARS)
    records = [
        article("late-match", "A long feature", f"{text}\n\n{LATE}"),
        article("title-only", "Zeppelin weekly", text, summary="The weekly summary."),
        # More articles with the word, so that it is a known word and not a typo target of others.
        *(article(f"short-{i}", f"Airships {i}", f"A zeppelin story number {i}.") for i in range(3)),
        # And real wires without it, so that common words are common (snippets weigh words by rarity).
        *(article(f"wire-{i}", f"Wire {i}", filler(300, skip=1000 + 10 * i)) for i in range(12)),
    ]
    return build_index(tmp / "index", [write_jsonl(tmp / "articles.jsonl", records)])


@pytest.fixture(scope="module")
def engine(long_index: BuiltIndex) -> SearchEngine:
    return SearchEngine(IndexReader(long_index.store, long_index.config), long_index.config)


def snippet_of(engine: SearchEngine, slug: str, q: str, **options: Any) -> str:
    result = engine.search(SearchRequest(q=q, per_page=10, **options))
    hits = {hit["slug"]: hit for hit in result["hits"]}
    assert slug in hits, (q, list(hits))
    return hits[slug]["highlights"]["snippet"]


def test_the_late_match_really_is_30_kb_in(engine: SearchEngine):
    assert engine.article("late-match")["body_md"].index("Zeppelins") > BODY_CHARS > FIRST_WINDOW * 10


@pytest.mark.parametrize(
    ("q", "options", "marked"),
    [
        ("zeppelins", {}, "Zeppelins"),  # the word as written
        ("zeppelin", {}, "Zeppelins"),  # a stem match
        ("zepelins", {}, "Zeppelins"),  # a typo, corrected
        ("zeppel", {"prefix": True}, "Zeppelins"),  # search-as-you-type
        ('"over zurich"', {}, "over Zürich"),  # a phrase, one mark
        ("zurich", {}, "Zürich"),  # folded accent: the scan cannot see it, the generator's walk does
    ],
)
def test_a_match_only_near_the_end_of_a_30_kb_body_is_highlighted(
    engine: SearchEngine, q: str, options: dict[str, Any], marked: str
):
    snippet = snippet_of(engine, "late-match", q, **options)
    assert f"<mark>{marked}</mark>" in snippet, snippet
    assert snippet.startswith("…") and "flew " in snippet


def test_text_around_a_late_match_is_escaped(engine: SearchEngine):
    snippet = snippet_of(engine, "late-match", "zeppelins")
    assert "AT&amp;T &lt;ZPL&gt;" in snippet, snippet
    assert "<ZPL>" not in snippet


def test_a_long_body_without_the_word_gets_its_summary(engine: SearchEngine):
    # The title has the word, the 30 KB body does not: the summary, as for a short body.
    assert snippet_of(engine, "title-only", "title:zeppelin") == "The weekly summary."


def test_a_match_in_the_first_window_of_a_long_body_gives_the_snippet_there(engine: SearchEngine):
    first_word = filler(BODY_CHARS).split()[0]
    snippet = snippet_of(engine, "late-match", first_word)
    assert "<mark>" in snippet and not snippet.startswith("…"), snippet


def test_a_common_word_in_the_first_window_does_not_hide_the_rare_one_further_in(engine: SearchEngine):
    # "said" is all over the first window; "zeppelins" only 30 KB in: the snippet shows the rare word.
    snippet = snippet_of(engine, "late-match", "said zeppelins", typos=False)
    assert "<mark>Zeppelins</mark>" in snippet, snippet


@pytest.mark.parametrize("options", [{"q": "zeppelin"}, {"q": "zeppel", "prefix": True}])
def test_one_body_check_tells_a_late_match_from_a_long_body_without_one(engine: SearchEngine, options: dict):
    # Both long bodies lack the word in their first window; the one index query asked about both
    # (snippets.body_matches) finds it 30 KB into one and nowhere in the other.
    result = engine.search(SearchRequest(per_page=10, **options))
    snippets = {hit["slug"]: hit["highlights"]["snippet"] for hit in result["hits"]}
    assert "<mark>Zeppelins</mark>" in snippets["late-match"], snippets["late-match"]
    assert snippets["title-only"] == "The weekly summary."
