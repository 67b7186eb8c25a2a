"""GET /search over the Reuters index: sorting, paging and the search-box syntax.

Expected hits are chosen from articles.jsonl (decoded with the stdlib): rare title words, known
phrases, words whose presence in a record is checked against the record itself.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from typing import Any

import pytest

Record = dict[str, Any]

_WORD = re.compile(r"[^\W_]+")

BAHIA_COCOA = "reuters-1-bahia-cocoa-review"
ROSSIGNOL = "reuters-1480-rossignol-unit-buys-canadian-ski-boot-maker"
RINDERPEST = "reuters-443-health-experts-urge-eradication-of-rinderpest"
MUNSINGWEAR = "reuters-202-munsingwear-inc-mun-4th-qtr-jan-3-loss"
BINGO = "reuters-664-status-game-stgm-to-introduce-video-bingo"
OKUMA = "reuters-1827-okuma-machinery-works-builds-plant-in-u-s"
SPIELBERG = "reuters-1707-mca-mca-names-spielberg-creative-consultant"
DAISY = "reuters-746-daisy-systems-dazy-introduces-workstations"


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def search(client: Any, q: str = "", **params: Any) -> dict[str, Any]:
    response = client.get("/search", params={"q": q, "facets": "", **params})
    assert response.status_code == 200, response.text
    return response.json()


def slugs(result: dict[str, Any]) -> list[str]:
    return [hit["slug"] for hit in result["hits"]]


def all_hits(client: Any, q: str = "", per_page: int = 100, **params: Any) -> list[dict[str, Any]]:
    """Every hit of a query, page by page, until an empty page."""
    hits: list[dict[str, Any]] = []
    for page in range(1, 10_000 // per_page + 1):
        batch = search(client, q, page=page, per_page=per_page, **params)["hits"]
        if not batch:
            break
        hits.extend(batch)
    return hits


def words(text: str) -> list[str]:
    """Words as the index's tokenizer splits ASCII text, lowercased (no stemming)."""
    return _WORD.findall(text.lower())


def record_words(record: Record, fields: tuple[str, ...] = ("title", "summary", "body_md")) -> set[str]:
    out = set(words(" ".join(record[f] for f in fields)))
    return out | set(words(" ".join(record["entities"])))


def osa(a: str, b: str) -> int:
    """Edit distance with adjacent transpositions (what 'one typo' means)."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


@pytest.fixture(scope="module")
def by_slug(reuters_records: list[Record]) -> dict[str, Record]:
    return {record["slug"]: record for record in reuters_records}


# -- sorting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["newest", "oldest"])
def test_date_sorts_are_monotonic_and_match_the_jsonl_order(
    reuters_client: Any, reuters_records: list[Record], sort: str
) -> None:
    hits = all_hits(reuters_client, topic="crude", sort=sort)
    crude = [r for r in reuters_records if "crude" in r["topics"]]
    assert len(hits) == len(crude)
    times = [utc(hit["published_at"]) for hit in hits]
    expected = sorted((utc(r["published_at"]) for r in crude), reverse=sort == "newest")
    assert times == expected
    assert all(hit["score"] is None for hit in hits)


def test_date_sort_applies_to_a_text_query_too(reuters_client: Any) -> None:
    result = search(reuters_client, "cocoa", sort="oldest", per_page=100)
    assert result["sort"] == "oldest"
    times = [utc(hit["published_at"]) for hit in result["hits"]]
    assert times == sorted(times)


def test_default_sort_is_newest_without_q(reuters_client: Any, reuters_records: list[Record]) -> None:
    result = search(reuters_client, per_page=20)
    assert result["sort"] == "newest"
    newest = sorted((utc(r["published_at"]) for r in reuters_records), reverse=True)[:20]
    assert [utc(hit["published_at"]) for hit in result["hits"]] == newest
    assert all(hit["score"] is None for hit in result["hits"])


@pytest.mark.parametrize("q", ["cocoa", "oil prices", "interest rates japan", '"buffer stock"', "cocoa OR coffee"])
def test_default_sort_is_relevance_with_q_and_scores_never_increase(reuters_client: Any, q: str) -> None:
    hits = all_hits(reuters_client, q)[:300]
    result = search(reuters_client, q)
    assert result["sort"] == "relevance"
    scores = [hit["score"] for hit in hits]
    assert all(isinstance(score, float) for score in scores)
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("q", ["   ", "*", '"', "-", "~ \\ %", "\x00", "\U0001f600"])
def test_q_without_searchable_words_counts_as_no_query(
    reuters_client: Any, reuters_records: list[Record], q: str
) -> None:
    result = search(reuters_client, q, per_page=1)
    assert result["sort"] == "newest"
    assert result["total"] == len(reuters_records)


# -- paging -------------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{"q": "coffee"}, {"topic": "coffee", "sort": "oldest"}], ids=["relevance", "date"])
def test_pages_never_overlap_and_together_give_the_whole_result(reuters_client: Any, params: dict[str, Any]) -> None:
    total = search(reuters_client, per_page=1, **params)["total"]
    assert 100 < total < 250
    by_50 = [hit["slug"] for hit in all_hits(reuters_client, per_page=50, **params)]
    by_100 = [hit["slug"] for hit in all_hits(reuters_client, per_page=100, **params)]
    by_7 = [hit["slug"] for hit in all_hits(reuters_client, per_page=7, **params)]
    assert len(by_50) == len(set(by_50)) == total
    assert by_50 == by_100 == by_7
    count = -(-total // 50) + 1
    pages = [search(reuters_client, page=page, per_page=50, **params) for page in range(1, count + 1)]
    assert [len(p["hits"]) for p in pages] == [50] * (count - 2) + [total - 50 * (count - 2), 0]
    assert all(p["total"] == total and p["per_page"] == 50 for p in pages)
    assert [p["page"] for p in pages] == list(range(1, count + 1))
    seen: set[str] = set()
    for p in pages:
        page_slugs = {hit["slug"] for hit in p["hits"]}
        assert not page_slugs & seen
        seen |= page_slugs


def test_the_deepest_allowed_page_answers(reuters_client: Any) -> None:
    result = search(reuters_client, page=100, per_page=100, sort="oldest")
    assert len(result["hits"]) == 100
    assert result["page"] == 100


# -- query syntax -------------------------------------------------------------------------------


def test_quoted_phrase_needs_the_adjacent_words(reuters_client: Any) -> None:
    phrase = search(reuters_client, '"cocoa zone"')
    assert slugs(phrase) == [BAHIA_COCOA]
    assert phrase["total"] == 1
    assert search(reuters_client, "cocoa zone")["total"] > 1


def test_every_phrase_hit_has_the_words_adjacent_and_total_matches_jsonl(
    reuters_client: Any, reuters_records: list[Record], by_slug: dict[str, Record]
) -> None:
    def adjacent(record: Record) -> bool:
        for field in ("title", "summary", "body_md"):
            tokens = words(record[field])
            if any(a == "buffer" and b in ("stock", "stocks") for a, b in itertools.pairwise(tokens)):
                return True
        return False

    hits = all_hits(reuters_client, '"buffer stock"')
    assert hits
    assert all(adjacent(by_slug[hit["slug"]]) for hit in hits)
    assert len(hits) == sum(1 for record in reuters_records if adjacent(record))


def test_excluded_word_removes_every_article_containing_it(reuters_client: Any, by_slug: dict[str, Record]) -> None:
    with_word = all_hits(reuters_client, "cocoa")
    without = all_hits(reuters_client, "cocoa -bahia")
    assert without
    assert not any("bahia" in record_words(by_slug[hit["slug"]]) for hit in without)
    containing = [hit for hit in with_word if "bahia" in record_words(by_slug[hit["slug"]])]
    assert containing
    assert {hit["slug"] for hit in without} == {hit["slug"] for hit in with_word} - {h["slug"] for h in containing}


def test_excluding_a_word_of_the_top_hit_drops_it(reuters_client: Any) -> None:
    assert slugs(search(reuters_client, "bahia cocoa review"))[0] == BAHIA_COCOA
    assert BAHIA_COCOA not in slugs(search(reuters_client, "bahia cocoa review -temporao", per_page=100))


def test_only_excluded_words_return_everything_else(reuters_client: Any, reuters_records: list[Record]) -> None:
    containing = sum(1 for r in reuters_records if "rinderpest" in record_words(r))
    assert search(reuters_client, "-rinderpest")["total"] == len(reuters_records) - containing


def test_or_finds_either_word(reuters_client: Any) -> None:
    result = search(reuters_client, "rinderpest OR rossignol")
    assert set(slugs(result)) == {RINDERPEST, ROSSIGNOL}
    assert result["total"] == 2


@pytest.mark.parametrize("typos", ["true", "false"])
@pytest.mark.parametrize(("a", "b"), [("cocoa", "coffee"), ("opec", "saudi")])
def test_or_total_is_the_union_of_the_single_word_totals(reuters_client: Any, a: str, b: str, typos: str) -> None:
    only_a = search(reuters_client, a, typos=typos)["total"]
    only_b = search(reuters_client, b, typos=typos)["total"]
    both = search(reuters_client, f"{a} {b}", typos=typos)["total"]
    either = search(reuters_client, f"{a} OR {b}", typos=typos)["total"]
    assert either == only_a + only_b - both
    assert either >= max(only_a, only_b)


def test_title_field_only_matches_titles(
    reuters_client: Any, reuters_records: list[Record], by_slug: dict[str, Record]
) -> None:
    exact = all_hits(reuters_client, "title:cocoa", typos="false")
    in_title = [r for r in reuters_records if {"cocoa", "cocoas"} & set(words(r["title"]))]
    assert {hit["slug"] for hit in exact} == {r["slug"] for r in in_title}
    # With typo tolerance a title may hold a near miss instead, but never only the body; and the
    # exact title matches rank first.
    tolerant = all_hits(reuters_client, "title:cocoa")
    assert all(min(osa(word, "cocoa") for word in words(by_slug[h["slug"]]["title"])) <= 1 for h in tolerant)
    assert {h["slug"] for h in tolerant[: len(exact)]} == {h["slug"] for h in exact}
    assert search(reuters_client, "cocoa", typos="false")["total"] > len(exact)


def test_title_field_phrase(reuters_client: Any) -> None:
    result = search(reuters_client, 'title:"bahia cocoa"')
    assert BAHIA_COCOA in slugs(result)
    assert all("BAHIA COCOA" in hit["title"] for hit in result["hits"])


@pytest.mark.parametrize(
    ("q", "facet", "value"),
    [
        ("topic:crude", "topics", "crude"),
        ("entity:japan", "entities", "Japan"),
        ('entity:"west germany"', "entities", "West Germany"),
    ],
)
def test_keyword_fields_in_the_search_box(
    reuters_client: Any, reuters_records: list[Record], q: str, facet: str, value: str
) -> None:
    result = search(reuters_client, q, per_page=100)
    assert result["total"] == sum(1 for r in reuters_records if value in r[facet])
    assert all(value in hit[facet] for hit in result["hits"])


@pytest.mark.parametrize(
    ("typo", "slug"),
    [
        ("rosignol", ROSSIGNOL),  # deletion
        ("rossignlo", ROSSIGNOL),  # transposition
        ("bixgo", BINGO),  # substitution
        ("biengo", BINGO),  # insertion
        ("okmua", OKUMA),  # transposition in a short word
        ("rinderpst", RINDERPEST),
        ("spielbreg", SPIELBERG),
        ("munsngwaer", MUNSINGWEAR),  # two edits in a word of 8+ letters
        ("rindepset", RINDERPEST),  # two edits
        ("spilebreg", SPIELBERG),  # two transpositions
    ],
)
def test_misspelled_distinctive_title_word_still_finds_the_article(reuters_client: Any, typo: str, slug: str) -> None:
    assert slug in slugs(search(reuters_client, typo, per_page=3))


def test_typos_false_turns_typo_tolerance_off(reuters_client: Any) -> None:
    assert search(reuters_client, "rosignol", typos="false")["total"] == 0
    assert search(reuters_client, "rosignol")["total"] >= 1


def test_exact_matches_outrank_typo_matches(reuters_client: Any, by_slug: dict[str, Record]) -> None:
    """Articles holding a real form of the word come before articles that only hold a near miss."""
    hits = all_hits(reuters_client, "cocoa")
    exact = [bool({"cocoa", "cocoas"} & record_words(by_slug[h["slug"]])) for h in hits]
    assert exact and exact[0]
    first_miss = exact.index(False) if False in exact else len(exact)
    assert not any(exact[first_miss:])


@pytest.mark.parametrize("typo", ["daisey", "dasiy"])
def test_one_edit_typo_of_a_word_ending_in_y_finds_the_article(reuters_client: Any, typo: str) -> None:
    assert osa(typo, "daisy") == 1
    assert DAISY in slugs(search(reuters_client, typo, per_page=3))


@pytest.mark.parametrize(("typed", "slug"), [("munsi", MUNSINGWEAR), ("rinde", RINDERPEST)])
def test_prefix_completes_the_last_word(reuters_client: Any, typed: str, slug: str) -> None:
    assert slug not in slugs(search(reuters_client, typed, per_page=100))
    assert slugs(search(reuters_client, typed, prefix="true", per_page=3))[0] == slug


def test_prefix_applies_to_the_last_word_of_several(reuters_client: Any) -> None:
    assert slugs(search(reuters_client, "machinery oku", prefix="true", per_page=3))[0] == OKUMA


def test_long_natural_language_query_falls_back_to_any_word(reuters_client: Any, by_slug: dict[str, Record]) -> None:
    sentence = "ski and tennis equipment maker agreed to buy a canadian boot manufacturer for an undisclosed sum"
    body = record_words(by_slug[ROSSIGNOL])
    assert len(sentence.split()) >= 15
    assert not set(sentence.split()) <= body  # not every word is in the article
    result = search(reuters_client, sentence, per_page=3)
    assert result["matched"] == "any"
    assert ROSSIGNOL in slugs(result)
    assert result["total"] > 3


def test_all_words_query_reports_matched_all(reuters_client: Any, by_slug: dict[str, Record]) -> None:
    result = search(reuters_client, "cocoa buffer stock", per_page=100)
    assert result["matched"] == "all"
    for hit in result["hits"][:20]:
        assert {"cocoa", "buffer", "stock"} <= record_words(by_slug[hit["slug"]]), hit["slug"]


def test_query_with_fewer_than_five_full_matches_falls_back_but_ranks_the_full_match_first(
    reuters_client: Any,
) -> None:
    result = search(reuters_client, "canadian ski boot maker", per_page=3)
    assert result["matched"] == "any"
    assert slugs(result)[0] == ROSSIGNOL


MALFORMED = [
    '"cocoa zone',
    'cocoa "',
    "(cocoa",
    "cocoa)",
    "((cocoa OR coffee",
    "-",
    "cocoa -",
    "- - -",
    "foo:bar",
    "foo:",
    "title:",
    ":",
    "title:-",
    "OR OR",
    "OR",
    "cocoa OR",
    "OR cocoa",
    "🛢️",
    "👨‍👩‍👧 oil",
    "oil 💥💥",
    "cocoa\x00\x07\x1b[31m",
    "\x00",
    "\u200b\u200f\ufeff",
    "*",
    "cocoa*",
    "title:*",
    "\\",
    '"',
    '""',
    '"" -""',
    "~~~",
    "+cocoa",
    "a" * 1000,
    ("cocoa " * 200)[:1000],
    " ".join(f"w{i}" for i in range(200))[:1000],
    "<script>alert(1)</script>",
    "%00%27%22",
    "'; DROP TABLE articles; --",
    "ｃｏｃｏａ",
    "可可 OR 咖啡",
]


@pytest.mark.parametrize("q", MALFORMED, ids=range(len(MALFORMED)))
@pytest.mark.parametrize("prefix", ["false", "true"])
def test_malformed_query_answers_200_never_500(reuters_client: Any, q: str, prefix: str) -> None:
    response = reuters_client.get("/search", params={"q": q, "prefix": prefix, "per_page": 5})
    assert response.status_code == 200, response.text
    result = response.json()
    assert isinstance(result["total"], int) and result["total"] >= 0
    assert len(result["hits"]) <= 5
    assert result["matched"] in ("all", "any")


def test_unbalanced_quote_degrades_to_plain_words(reuters_client: Any) -> None:
    assert search(reuters_client, '"cocoa zone')["total"] == search(reuters_client, "cocoa zone")["total"]


def test_unknown_field_degrades_to_plain_words(reuters_client: Any) -> None:
    assert search(reuters_client, "foo:cocoa")["total"] == search(reuters_client, "foo cocoa")["total"]


def test_query_string_that_is_not_utf8_answers_without_a_server_error(reuters_client: Any) -> None:
    for raw in ("%ED%A0%BD", "%FF%FE", "cocoa%C3", "%00"):
        response = reuters_client.get(f"/search?q={raw}")
        assert response.status_code in (200, 422), (raw, response.text)
        if response.status_code == 422:
            assert response.json()["error"]["code"] == "invalid_parameter"
