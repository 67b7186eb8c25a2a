"""What the search box does with spelling, partial matches and completions, over HTTP on real indexes.

Known words are searched as typed (a rare name is never padded with look-alikes), unknown words
are corrected and the response says so, a known-but-rare typo of a frequent word is offered as
"did you mean", and in the any-word fallback the articles holding every word rank first.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE, api_client, build_index, read_jsonl, write_jsonl

from search_service.config import load_config
from search_service.index.schema import build_analyzers
from search_service.normalize import normalize_query

_WORD = re.compile(r"[^\W_]+")
Record = dict[str, Any]


def search(client: Any, q: str, **params: Any) -> dict[str, Any]:
    response = client.get("/search", params={"q": q, "facets": "", **params})
    assert response.status_code == 200, response.text
    return response.json()


def slugs(result: dict[str, Any]) -> list[str]:
    return [hit["slug"] for hit in result["hits"]]


def record_words(record: Record) -> set[str]:
    text = " ".join([record["title"], record["summary"], record["body_md"], *record.get("entities", [])])
    return set(_WORD.findall(text.lower()))


def article(slug: str, text: str, title: str | None = None) -> Record:
    """An article in the import format, from the packaged sample's first record."""
    template = read_jsonl(SAMPLE)[0]
    title = title or f"Report {slug}"
    body = f"# {title}\n\n{text}"
    return template | {
        "slug": slug,
        "title": title,
        "summary": text[:80],
        "body_md": body,
        "url": f"https://news.example.com/{slug}",
        "canonical_source": f"https://wire.example.com/{slug}",
        "entities": [],
        "alternates": {},
    }


@pytest.fixture(scope="module")
def small_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A small index built to order: a rare name beside a frequent look-alike, a rare typo of a
    frequent word, three articles holding three words beside many holding two."""
    records = [
        article(f"open-{i}", f"The market will open early on day {i} as traders open new positions.") for i in range(25)
    ]
    records.append(article("opec-meeting", "Opec ministers meet in Vienna to discuss output."))
    records += [article(f"the-economy-{i}", f"The economy grew in quarter {i}, the ministry said.") for i in range(30)]
    records.append(article("teh-typo", "Teh harvest was late this year in the northern valleys."))
    records += [
        article(f"bank-{i}", f"A bank lends to another bank; bank bank bank rates, item {i}.") for i in range(3)
    ]
    records += [
        article(f"alpha-bravo-{i}", f"Alpha bravo alpha bravo alpha bravo alpha bravo report {i}.") for i in range(20)
    ]
    records += [article(f"charlie-{i}", f"Charlie charlie charlie note {i}.") for i in range(10)]
    records += [
        article(f"all-three-{i}", f"A long report that mentions alpha once, bravo once and charlie once, {i}. " * 4)
        for i in range(3)
    ]
    root = tmp_path_factory.mktemp("spelling")
    built = build_index(root / "index", [write_jsonl(root / "articles.jsonl", records)])
    assert not built.rejects
    with api_client(built.index_dir) as client:
        yield client


def test_a_rare_name_is_not_padded_with_frequent_look_alikes(small_client: Any) -> None:
    result = search(small_client, "opec")
    assert slugs(result) == ["opec-meeting"]
    assert result["total"] == 1
    assert result["corrections"] == []
    assert result["searched_for"] is None


def test_a_known_rare_typo_is_searched_as_typed_and_offered_a_likelier_spelling(small_client: Any) -> None:
    result = search(small_client, "teh")
    assert slugs(result) == ["teh-typo"]
    assert result["corrections"] == []
    assert result["did_you_mean"] == "the"
    # Typed with capitals, the suggestion keeps the rest of the query as typed.
    assert search(small_client, "Teh economy")["did_you_mean"] == "the economy"


def test_words_shorter_than_the_minimum_are_not_corrected_but_offered(small_client: Any) -> None:
    """'bnak' (4 letters, no article has it) is under one_typo_min_len = 5: nothing is searched in
    its place, and 'bank' is offered instead."""
    result = search(small_client, "bnak")
    assert result["total"] == 0
    assert result["corrections"] == []
    assert result["did_you_mean"] == "bank"


def test_a_query_finding_plenty_gets_no_suggestion(small_client: Any) -> None:
    assert search(small_client, "open")["did_you_mean"] is None


def test_articles_holding_every_word_come_first_on_every_page_and_are_counted(small_client: Any) -> None:
    full = {f"all-three-{i}" for i in range(3)}
    result = search(small_client, "alpha bravo charlie", per_page=2)
    assert result["matched"] == "any"
    assert result["all_words"] == 3
    assert result["total"] == 33
    second = search(small_client, "alpha bravo charlie", per_page=2, page=2)
    first_four = slugs(result) + slugs(second)
    assert set(first_four[:3]) == full
    assert first_four[3] not in full
    # Page 1 of 10 holds the three, then the best of the rest; no article twice across pages.
    pages = [slugs(search(small_client, "alpha bravo charlie", per_page=10, page=p)) for p in (1, 2, 3, 4)]
    assert set(pages[0][:3]) == full
    every = [slug for page in pages for slug in page]
    assert len(every) == len(set(every)) == 33


def test_without_typos_the_typed_query_is_searched_and_a_spelling_offered(small_client: Any) -> None:
    result = search(small_client, "economyy", typos="false")
    assert result["total"] == 0
    assert result["corrections"] == []
    assert result["did_you_mean"] == "economy"


# -- Reuters ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rare_words(reuters_records: list[Record]) -> list[tuple[str, set[str]]]:
    """Words of 5-9 letters held by at most 2 articles, whose stem no other article's word shares
    (so 'holding the word' means the same to the corpus and to the stemmed index), with their articles."""
    analyzer = build_analyzers(load_config())["text"]  # the analyzer of the searched text fields
    holders: dict[str, set[str]] = defaultdict(set)
    for record in reuters_records:
        for word in record_words(record):
            holders[word].add(record["slug"])
    by_stem: dict[str, set[str]] = defaultdict(set)
    for word, found in holders.items():
        tokens = analyzer.analyze(word)
        if len(tokens) == 1:
            by_stem[tokens[0]] |= found
    rare = []
    for word, found in holders.items():
        if 5 <= len(word) <= 9 and word.isascii() and word.isalpha() and len(found) <= 2:
            tokens = analyzer.analyze(word)
            if len(tokens) == 1 and by_stem[tokens[0]] == found:
                rare.append((word, found))
    rare.sort()
    random.Random(24).shuffle(rare)
    return rare[:40]


def test_rare_known_words_find_only_the_articles_holding_them(reuters_client: Any, rare_words: list) -> None:
    assert len(rare_words) == 40
    for word, found in rare_words:
        result = search(reuters_client, word)
        assert result["hits"], word
        assert set(slugs(result)) <= found, (word, slugs(result), found)
        assert result["corrections"] == [], word


def test_a_misspelled_frequent_word_is_corrected_and_reported(reuters_client: Any, reuters_records: list) -> None:
    # ('governmnet' is in one article: a known word, searched as typed.)
    assert not any("govrenment" in record_words(r) for r in reuters_records)
    result = search(reuters_client, "govrenment spending")
    [correction] = result["corrections"]
    # Every term searched is reported, spelled as articles spell it, the most held first.
    assert correction["word"] == "govrenment"
    assert correction["searched"][0] == "government"
    assert result["searched_for"] == "government spending"
    assert result["total"] > 20
    assert result["did_you_mean"] is None
    # The corrected word is what matched: it is what the snippets mark.
    marked = " ".join(hit["highlights"]["snippet"] or "" for hit in result["hits"]).lower()
    assert "<mark>government" in marked


def test_typos_off_finds_the_same_for_a_known_word(reuters_client: Any, rare_words: list) -> None:
    word, _ = rare_words[0]
    assert slugs(search(reuters_client, word)) == slugs(search(reuters_client, word, typos="false"))


# -- completions --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def titles_only_client(reuters_index: Any) -> Iterator[Any]:
    """The Reuters index without analytics: completions from the titles alone, not from the popular
    queries other tests' searches leave in the shared client's analytics (they take up to half the list)."""
    with api_client(reuters_index.index_dir, analytics=False) as client:
        yield client


def completions(client: Any, typed: str) -> list[str]:
    response = client.get("/suggest", params={"q": typed})
    assert response.status_code == 200, response.text
    return [s["text"] for s in response.json()["suggestions"]]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("central b", "central bank"),
        ("central ba", "central bank"),
        ("central bank r", "central bank reserves"),
        ("bank of", "bank of england"),
        ("Bank of Ja", "Bank of japan"),
        ("oil pri", "oil prices"),
        ("west ger", "West Germany"),
    ],
)
def test_completions_continue_multi_word_text(titles_only_client: Any, typed: str, expected: str) -> None:
    assert expected in completions(titles_only_client, typed)


@pytest.mark.parametrize("typed", ["central b", "bank of", "ope", "opec", "U.S. tr", "west ger", "st", "Zürich b"])
def test_every_completion_begins_with_what_was_typed_and_none_differ_only_in_case(
    reuters_client: Any, typed: str
) -> None:
    found = completions(reuters_client, typed)
    folded = [normalize_query(text) for text in found]
    assert all(text.startswith(normalize_query(typed)) for text in folded), found
    assert len(folded) == len(set(folded)), found


def test_pins_and_all_word_matches_first_page_together(tmp_path: Path) -> None:
    """A pinned article keeps its position in a fallback ranking; every other hit still comes once,
    the articles holding every word before the rest."""
    records = [article(f"alpha-bravo-{i}", f"Alpha bravo alpha bravo report {i}.") for i in range(8)]
    records += [article(f"all-three-{i}", f"Alpha, bravo and charlie in one long report {i}. " * 3) for i in range(2)]
    records += [article("unrelated", "Nothing to see here at all.")]
    built = build_index(tmp_path / "index", [write_jsonl(tmp_path / "articles.jsonl", records)])
    with api_client(built.index_dir, admin_key="k") as client:
        rule = {"id": "p", "query": "alpha bravo charlie", "pin": [{"slug": "unrelated", "position": 2}]}
        put = client.put("/admin/rules", json={"rules": [rule]}, headers={"Authorization": "Bearer k"})
        assert put.status_code == 200, put.text
        pages = [search(client, "alpha bravo charlie", per_page=3, page=p) for p in (1, 2, 3, 4)]
    every = [slug for page in pages for slug in slugs(page)]
    assert len(every) == len(set(every)) == 11 == pages[0]["total"]
    assert every[1] == "unrelated"
    assert set(every[0:1] + every[2:3]) == {"all-three-0", "all-three-1"}
    assert pages[0]["all_words"] == 2
