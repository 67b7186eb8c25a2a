"""Highlights and snippets in GET /search: <mark> placement, length, escaping, hostile and non-Latin text.

The only markup a highlight may carry is <mark>...</mark>; everything else from the article
(Reuters' literal <TICKER> markers, HTML in bad.jsonl) must come out escaped.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from typing import Any

import pytest
from conftest import BAD

MARK = re.compile(r"<mark>(.*?)</mark>", re.DOTALL)
ELLIPSIS = "…"

SWEEP = [
    "cocoa",
    "rates",
    "oil prices",
    '"standard oil"',
    "SRD",
    "standard oil",
    "interest rates japan",
    "opec -saudi",
    "title:sugar",
    "tempraoo",
    "munsingwaer",
    "ski boot maker canadian tennis equipment undisclosed",
]


def search(client: Any, q: str, **params: Any) -> dict[str, Any]:
    response = client.get("/search", params={"q": q, "facets": "", **params})
    assert response.status_code == 200, response.text
    return response.json()


def marked(text: str) -> list[str]:
    return MARK.findall(text)


def without_marks(text: str) -> str:
    return text.replace("<mark>", "").replace("</mark>", "")


def plain(text: str) -> str:
    """What a reader sees: tags removed, entities unescaped."""
    return html.unescape(without_marks(text))


def assert_only_mark_markup(text: str) -> None:
    rest = without_marks(text)
    assert "<" not in rest and ">" not in rest, text
    assert text.count("<mark>") == text.count("</mark>"), text
    # Escaped text round-trips: nothing was escaped twice.
    assert "&amp;lt;" not in rest and "&amp;amp;" not in rest, text


def assert_clean_unicode(text: str) -> None:
    assert "\ufffd" not in text, text
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in text), text
    text.encode("utf-8")  # strict: no lone surrogates


def bad_line(number: int) -> dict[str, Any]:
    """One physical line of bad.jsonl (split on \\n only; other lines may not even be UTF-8)."""
    line = BAD.read_bytes().split(b"\n")[number - 1]
    return json.loads(line.decode("utf-8-sig"))


# -- marks ----------------------------------------------------------------------------------------


def test_query_word_and_its_stemmed_forms_are_marked(reuters_client: Any) -> None:
    hits = search(reuters_client, "rates", per_page=30)["hits"]
    words = [w.lower() for hit in hits for text in hit["highlights"].values() for w in marked(text)]
    assert "rate" in words and "rates" in words
    # Every marked word is a form of "rate" (the stem), never an unrelated word.
    assert set(words) <= {"rate", "rates", "rated", "rating", "ratings"}, set(words)


def test_every_hit_of_a_plain_query_marks_the_word(reuters_client: Any) -> None:
    for hit in search(reuters_client, "cocoa", per_page=50, typos="false")["hits"]:
        marks = [w.lower() for text in hit["highlights"].values() for w in marked(text)]
        assert marks and all(w.startswith("cocoa") for w in marks), hit["slug"]


def test_phrase_is_marked_as_one_span(reuters_client: Any) -> None:
    hit = search(reuters_client, '"cocoa zone"')["hits"][0]
    assert "<mark>cocoa zone</mark>" in hit["highlights"]["snippet"]


def test_typo_query_marks_the_correct_word(reuters_client: Any) -> None:
    hit = search(reuters_client, "rosignol", per_page=1)["hits"][0]
    assert hit["slug"] == "reuters-1480-rossignol-unit-buys-canadian-ski-boot-maker"
    assert "<mark>ROSSIGNOL</mark>" in hit["highlights"]["title"]
    assert "Rossignol" in marked(hit["highlights"]["snippet"])


def test_two_typo_query_marks_the_correct_word(reuters_client: Any) -> None:
    hit = search(reuters_client, "munsngwaer", per_page=1)["hits"][0]
    assert "<mark>MUNSINGWEAR</mark>" in hit["highlights"]["title"]


def test_prefix_query_marks_the_completed_word(reuters_client: Any) -> None:
    hit = search(reuters_client, "rinde", prefix="true", per_page=1)["hits"][0]
    assert "<mark>RINDERPEST</mark>" in hit["highlights"]["title"]
    assert "Rinderpest" in marked(hit["highlights"]["snippet"])


def test_no_query_means_no_marks(reuters_client: Any) -> None:
    for hit in search(reuters_client, "", per_page=20)["hits"]:
        assert "<mark>" not in hit["highlights"]["title"] + hit["highlights"]["snippet"]


def test_excluded_words_are_not_marked(reuters_client: Any) -> None:
    for hit in search(reuters_client, "cocoa -bahia", per_page=30)["hits"]:
        assert all(w.lower() != "bahia" for text in hit["highlights"].values() for w in marked(text))


# -- length ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("q", SWEEP)
def test_snippet_length_stays_within_max_chars(
    reuters_client: Any, reuters_index: Any, reuters_records: list[dict[str, Any]], q: str
) -> None:
    max_chars = reuters_index.config.snippets.max_chars
    summaries = {r["slug"]: r["summary"] for r in reuters_records}
    for hit in search(reuters_client, q, per_page=50)["hits"]:
        text = plain(hit["highlights"]["snippet"])
        longest_word = max((len(w) for w in text.split()), default=0)
        assert len(text) <= max_chars + longest_word + 2 * len(ELLIPSIS), (hit["slug"], len(text), text)
        # Only a title-only brief (no summary, body_md just the heading) has nothing to show.
        assert text or not summaries[hit["slug"]], hit["slug"]


def test_title_highlight_is_the_whole_title(reuters_client: Any) -> None:
    for q in SWEEP:
        for hit in search(reuters_client, q, per_page=20)["hits"]:
            assert plain(hit["highlights"]["title"]) == hit["title"]


# -- escaping -------------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["SRD", '"standard oil"', "standard oil", "kuwait petroleum", "ticker"])
def test_ticker_brackets_are_escaped_in_highlights(reuters_client: Any, q: str) -> None:
    hits = search(reuters_client, q, per_page=50)["hits"]
    assert hits
    escaped = 0
    for hit in hits:
        for text in hit["highlights"].values():
            assert_only_mark_markup(text)
        if "<" in hit["title"]:
            assert "&lt;" in hit["highlights"]["title"]
        escaped += "&lt;" in hit["highlights"]["title"] + hit["highlights"]["snippet"]
    assert escaped, "the query should reach some text with a literal <"
    if q == "SRD":
        assert any("&lt;<mark>SRD</mark>&gt;" in hit["highlights"]["title"] for hit in hits)


@pytest.mark.parametrize("q", SWEEP)
def test_highlights_carry_no_markup_but_mark(reuters_client: Any, q: str) -> None:
    for hit in search(reuters_client, q, per_page=50)["hits"]:
        for text in hit["highlights"].values():
            assert_only_mark_markup(text)


# -- hostile records (bad.jsonl) ------------------------------------------------------------------


def hit_for(client: Any, q: str, slug_prefix: str, **params: Any) -> dict[str, Any]:
    hits = search(client, q, per_page=100, **params)["hits"]
    found = [hit for hit in hits if hit["slug"].startswith(slug_prefix)]
    assert found, (q, [h["slug"] for h in hits])
    return found[0]


def test_script_tag_in_a_title_is_escaped(hostile_client: Any) -> None:
    hit = hit_for(hostile_client, "alert", "bad-32-")
    assert hit["title"].startswith("<script>alert(1)</script>")  # stored as text
    title = hit["highlights"]["title"]
    assert title.startswith("&lt;script&gt;<mark>alert</mark>(1)&lt;/script&gt;")
    assert_only_mark_markup(title)
    assert_only_mark_markup(hit["highlights"]["snippet"])
    assert "<script" not in title.lower()


@pytest.mark.parametrize("q", ["cookie", "evil", "champion products stock split", "read more", "fetch"])
def test_raw_html_and_javascript_in_a_body_never_reach_a_snippet_unescaped(hostile_client: Any, q: str) -> None:
    hits = search(hostile_client, q, per_page=100)["hits"]
    assert any(hit["slug"].startswith("bad-33-") for hit in hits)
    for hit in hits:
        for text in hit["highlights"].values():
            assert_only_mark_markup(text)
            lowered = text.lower()
            assert "<script" not in lowered and "<img" not in lowered and "<iframe" not in lowered
            assert not re.search(r"<[^>]*onerror", lowered)
        if hit["slug"].startswith("bad-33-"):
            assert "javascript:" not in hit["highlights"]["snippet"].lower()


def test_markup_in_facet_values_comes_back_as_literal_strings(hostile_client: Any) -> None:
    record = bad_line(34)
    result = search(hostile_client, "", per_page=100, facets="topics,entities", facet_size=100)
    topics = {item["value"] for item in result["facets"]["topics"]}
    entities = {item["value"] for item in result["facets"]["entities"]}
    assert '"><svg onload=alert(1)>' in topics
    assert "<b onmouseover=alert(1)>Reserve Bank</b>" in entities
    # Filtering by the literal value finds exactly that record; its highlights stay escaped.
    filtered = search(hostile_client, "reserve bank", topic='"><svg onload=alert(1)>')
    assert [hit["slug"] for hit in filtered["hits"]] == [record["slug"]]
    assert filtered["hits"][0]["topics"] == record["topics"]
    assert filtered["hits"][0]["entities"] == record["entities"]
    for text in filtered["hits"][0]["highlights"].values():
        assert_only_mark_markup(text)


def test_facet_value_with_slashes_stays_one_literal_value(hostile_client: Any) -> None:
    result = search(hostile_client, "", per_page=1, facets="topics", facet_size=100)
    topics = {item["value"]: item["count"] for item in result["facets"]["topics"]}
    assert topics["economy/new-zealand"] == 1
    assert topics["rates\\/fx"] == 1
    assert "economy" not in topics
    assert search(hostile_client, "", topic="economy/new-zealand")["total"] == 1


def test_control_characters_are_gone_from_stored_title_and_highlights(hostile_client: Any) -> None:
    hit = hit_for(hostile_client, "standard oil", "bad-27-")
    assert hit["title"] == "STANDARD OIL <SRD> TO FORM FINANCIAL[31m UNIT"
    for text in (hit["title"], *hit["highlights"].values()):
        assert not any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text), repr(text)


@pytest.mark.parametrize("q", ["bahia cocoa", "chart", "reuter", "arrivals", ""])
def test_inline_base64_image_never_reaches_a_snippet(hostile_client: Any, q: str) -> None:
    hit = hit_for(hostile_client, q, "bad-49-")
    snippet = plain(hit["highlights"]["snippet"])
    assert "base64" not in snippet and "iVBORw0KGgo" not in snippet
    assert max((len(word) for word in snippet.split()), default=0) <= 40, snippet
    assert len(snippet) <= 200 + 2 * len(ELLIPSIS) + 40
    assert "iVBORw0KGgo" not in hit["summary"]


# -- CJK, right-to-left, emoji ----------------------------------------------------------------------


@pytest.mark.parametrize("q", ["可可", "巴伊亚", "干旱", "周报"])
def test_cjk_substring_of_the_title_finds_the_zh_record(hostile_client: Any, q: str) -> None:
    result = search(hostile_client, q)
    assert [hit["slug"] for hit in result["hits"]] == [bad_line(37)["slug"]]
    hit = result["hits"][0]
    assert hit["lang"] == "zh"
    assert hit["title"] == bad_line(37)["title"]
    assert f"<mark>{q}</mark>" in hit["highlights"]["title"]
    for text in hit["highlights"].values():
        assert_clean_unicode(text)
        assert_only_mark_markup(text)


@pytest.mark.parametrize("q", ["株価", "東京証券取引所", "증권거래소", "缓解"])
def test_cjk_in_the_body_is_searchable_with_clean_snippets(hostile_client: Any, q: str) -> None:
    result = search(hostile_client, q)
    assert [hit["slug"] for hit in result["hits"]] == [bad_line(37)["slug"]]
    for text in result["hits"][0]["highlights"].values():
        assert_clean_unicode(text)
        assert_only_mark_markup(text)


def test_cjk_query_is_an_exact_substring_not_any_of_its_characters(hostile_client: Any) -> None:
    # 可 is in the zh record, 可乐 is not: a CJK query is a phrase of characters.
    assert search(hostile_client, "可")["total"] == 1
    assert search(hostile_client, "可乐")["total"] == 0
    assert search(hostile_client, "旱干")["total"] == 0  # the record has 干旱, in that order


@pytest.mark.parametrize("q", ["نيوزيلندا", "المصرفية", "בינואר", "الودائع المصرفية"])
def test_rtl_record_is_found_and_its_snippets_are_intact(hostile_client: Any, q: str) -> None:
    record = bad_line(38)
    hit = hit_for(hostile_client, q, record["slug"])
    assert hit["title"] == record["title"]
    for text in hit["highlights"].values():
        assert_clean_unicode(text)
        assert_only_mark_markup(text)
        # Every visible character of the snippet comes from the record, in order.
        shown = plain(text).strip(ELLIPSIS)
        assert shown.replace("\n", " ") in (record["title"] + " " + record["body_md"]).replace("\n", " ") or (
            shown in record["summary"]
        )


def test_rtl_body_keeps_its_right_to_left_mark(hostile_client: Any) -> None:
    record = bad_line(38)
    stored = hostile_client.get(f"/articles/{record['slug']}").json()
    assert "\u200f" in stored["body_md"]
    assert stored["body_md"] == record["body_md"]


@pytest.mark.parametrize("q", ["café", "Café", "standard oil financial unit", "cafe"])
def test_emoji_record_is_found_and_emoji_stay_whole(hostile_client: Any, q: str) -> None:
    hit = hit_for(hostile_client, q, "bad-39-")
    title = hit["highlights"]["title"]
    assert "🛢️" in without_marks(title)
    assert "👨‍👩‍👧" in without_marks(title)
    assert_clean_unicode(title)
    assert_only_mark_markup(title)
    assert hit["entities"] == ["Standard Oil", "BP North America", "Café"]


@pytest.mark.parametrize("q", ["🛢️", "standard oil 🛢️", "👨‍👩‍👧 café", "unit 👨‍👩‍👧"])
def test_highlight_never_splits_an_emoji_from_its_variation_selector_or_joiners(hostile_client: Any, q: str) -> None:
    title = unicodedata.normalize("NFC", bad_line(39)["title"])  # the importer stores NFC
    for hit in search(hostile_client, q, per_page=100)["hits"]:
        for text in hit["highlights"].values():
            assert "<mark>\ufe0f" not in text and "<mark>\u200d" not in text, text
            for match in re.finditer("<mark>|</mark>", text):
                following = text[match.end() : match.end() + 1]
                assert not following or unicodedata.category(following) not in ("Mn", "Me", "Mc", "Cf"), text
        if hit["slug"].startswith("bad-39-"):
            assert without_marks(hit["highlights"]["title"]) == html.escape(title)


def test_non_latin_query_on_the_reuters_index_answers_cleanly(reuters_client: Any) -> None:
    for q in ("可可", "نيوزيلندا", "🛢️", "café"):
        result = search(reuters_client, q, per_page=5)
        for hit in result["hits"]:
            for text in hit["highlights"].values():
                assert_clean_unicode(text)
                assert_only_mark_markup(text)
