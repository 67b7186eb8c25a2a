"""parse_article: normalization of valid records and one reason naming every problem of bad ones."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest

from search_service.config import Limits
from search_service.ingest.article import Article, ImportContext, RecordRejected, parse_article


def parse(record: dict[str, Any], limits: Limits | None = None, **changes: Any) -> tuple[Article, list[str]]:
    context = ImportContext(limits or Limits())
    article = parse_article(record | changes, context)
    return article, context.warnings


def rejection(record: Any, limits: Limits | None = None, **changes: Any) -> RecordRejected:
    data = record | changes if isinstance(record, dict) else record
    with pytest.raises(RecordRejected) as caught:
        parse_article(data, ImportContext(limits or Limits()))
    return caught.value


# -- the seed record ----------------------------------------------------------------------------


def test_seed_record_parses_unchanged(seed_record):
    article, warnings = parse(seed_record)
    assert warnings == []
    assert article.slug == seed_record["slug"]
    assert article.title == seed_record["title"]
    assert article.body_md == seed_record["body_md"]
    assert article.topics == seed_record["topics"]
    assert article.entities == seed_record["entities"]
    assert article.alternates == seed_record["alternates"]
    assert article.published_at == datetime(2026, 6, 18, 3, 24, 17, 296659, tzinfo=UTC)


def test_unknown_keys_are_ignored(seed_record):
    article, _ = parse(seed_record, author="someone", _internal_score=0.7)
    assert not hasattr(article, "author")


# -- text normalization -------------------------------------------------------------------------


def test_text_is_normalized_to_nfc(seed_record):
    nfd = unicodedata.normalize("NFD", "Café Zürich")
    assert nfd != "Café Zürich"
    article, _ = parse(seed_record, title=nfd, summary=nfd, body_md=f"# {nfd}\n\n{nfd}")
    assert article.title == "Café Zürich"
    assert article.summary == "Café Zürich"
    assert article.body_md == "# Café Zürich\n\nCafé Zürich"


@pytest.mark.parametrize("text", ["ascii only", "non-ascii é"])
def test_control_characters_are_stripped_but_newline_and_tab_kept(seed_record, text: str):
    dirty = f"a\x00b\x07c\x1b[31md\n\te {text}"
    article, _ = parse(seed_record, summary=dirty, body_md=dirty)
    assert article.summary == f"abc[31md\n\te {text}"
    assert article.body_md == f"abc[31md\n\te {text}"


def test_control_characters_are_stripped_from_titles_and_whitespace_collapsed(seed_record):
    article, _ = parse(seed_record, title="  STANDARD\x00 OIL\x07 <SRD>\x1b[31m\n\tUNIT  ")
    assert article.title == "STANDARD OIL <SRD>[31m UNIT"


def test_crlf_becomes_lf_in_bodies(seed_record):
    article, _ = parse(seed_record, body_md="one\r\ntwo\rthree")
    assert article.body_md == "one\ntwo\nthree"


def test_zero_width_space_is_removed_but_zwj_in_emoji_is_kept(seed_record):
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    article, _ = parse(seed_record, title=f"zero\u200bwidth {family} word\u2060joiner\ufeff")
    assert article.title == f"zerowidth {family} wordjoiner"
    assert "\u200d" in article.title
    assert "\u200b" not in article.title


def test_facet_values_are_trimmed_deduplicated_and_empties_dropped(seed_record):
    article, _ = parse(
        seed_record,
        topics=["  grain ", "grain", "", "   ", "wheat", "corn\u200b", "wheat"],
        entities=["\u00a0USA ", "USA", "Caf\u00e9", "Cafe\u0301", "B  P\tNorth"],
    )
    assert article.topics == ["grain", "wheat", "corn"]
    assert article.entities == ["USA", "Café", "B P North"]


def test_titles_and_facet_values_collapse_inner_whitespace(seed_record):
    article, _ = parse(seed_record, title="  Two  spaces   inside ", topics=["a  b", " c "], entities=[])
    assert article.title == "Two spaces inside"
    assert article.topics == ["a b", "c"]
    assert article.entities == []


@pytest.mark.parametrize("text", ["line\nbreaks only", "tab\tand\nnewline", "line\x0bvertical tab", "nul\x00\nbyte"])
def test_multiline_ascii_bodies_lose_only_unwanted_controls(seed_record, text: str):
    article, _ = parse(seed_record, body_md=text)
    assert article.body_md == text.replace("\x0b", "").replace("\x00", "")


# -- lang ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"), [("EN", "en"), ("en", "en"), ("pt-br", "pt-BR"), ("PT-BR", "pt-BR"), (" de ", "de")]
)
def test_lang_is_normalized(seed_record, given: str, stored: str):
    assert parse(seed_record, lang=given)[0].lang == stored


def test_long_lang_codes_are_normalized_like_short_ones(seed_record):
    long_code = "EN-" + "-".join(["Latn", "US", "abcdefgh"] * 8)
    assert len(long_code) > 64
    expected = "en-" + "-".join(["Latn", "US", "abcdefgh"] * 8)
    assert parse(seed_record, lang=long_code)[0].lang == expected
    assert parse(seed_record, lang=long_code)[0].lang == expected


def test_lang_is_normalized_the_same_when_seen_again(seed_record):
    assert [parse(seed_record, lang="pt-br")[0].lang for _ in range(3)] == ["pt-BR"] * 3
    assert [parse(seed_record, lang=" de ")[0].lang for _ in range(2)] == ["de"] * 2


@pytest.mark.parametrize("lang", ["english", "e", "", "en_US", "12"])
def test_lang_that_is_not_a_language_code_is_rejected(seed_record, lang: str):
    assert "lang:" in rejection(seed_record, lang=lang).reason


def test_invalid_lang_is_rejected_every_time(seed_record):
    reasons = [rejection(seed_record, lang="english").reason for _ in range(2)]
    assert reasons[0] == reasons[1]
    assert "'english' is not a language code" in reasons[0]


# -- dates --------------------------------------------------------------------------------------


def test_z_and_offset_dates_are_converted_to_utc(seed_record):
    article, warnings = parse(
        seed_record, published_at="1987-03-09T04:48:52Z", updated_at="1987-02-26T22:05:16.02+05:30"
    )
    assert warnings == []
    assert article.published_at == datetime(1987, 3, 9, 4, 48, 52, tzinfo=UTC)
    assert article.published_at.utcoffset().total_seconds() == 0
    assert article.updated_at == datetime(1987, 2, 26, 16, 35, 16, 20000, tzinfo=UTC)
    assert article.updated_at.tzinfo == UTC


def test_negative_offset_moves_the_utc_date_forward(seed_record):
    article, _ = parse(seed_record, published_at="1987-02-25T22:10:44.6-05:00")
    assert article.published_at == datetime(1987, 2, 26, 3, 10, 44, 600000, tzinfo=UTC)


def test_naive_date_is_taken_as_utc_with_a_warning(seed_record):
    article, warnings = parse(seed_record, published_at="1987-02-26 15:17:11")
    assert article.published_at == datetime(1987, 2, 26, 15, 17, 11, tzinfo=UTC)
    assert len(warnings) == 1
    assert "published_at" in warnings[0] and "no timezone" in warnings[0]


@pytest.mark.parametrize(
    "value", ["yesterday afternoon", "1987-02-30 16:35:16+00:00", "26-FEB-1987 15:17:11.20", 541_267_200]
)
def test_unparseable_or_non_string_date_is_rejected(seed_record, value: Any):
    reason = rejection(seed_record, published_at=value).reason
    assert reason.startswith("published_at:")
    assert "ISO 8601" in reason


# -- rejection ----------------------------------------------------------------------------------


def test_several_problems_are_reported_in_one_reason(seed_record):
    error = rejection(seed_record, title="   ", url="ftp://example.com/a", lang="english", topics="earn")
    for field in ("title:", "url:", "lang:", "topics:"):
        assert field in error.reason
    assert error.reason.count("; ") == 3
    assert error.slug == seed_record["slug"]


def test_all_missing_keys_are_named_in_one_reason(seed_record):
    record = {k: v for k, v in seed_record.items() if k not in ("summary", "lang", "alternates")}
    assert rejection(record).reason == "missing required keys: summary, lang, alternates"


def test_javascript_url_is_rejected(seed_record):
    reason = rejection(seed_record, url="javascript:alert(1)").reason
    assert reason == "url: 'javascript:alert(1)' is not an http(s) URL"


def test_javascript_url_in_alternates_is_rejected(seed_record):
    alternates = seed_record["alternates"] | {"html": "javascript:alert(1)"}
    assert "alternates" in rejection(seed_record, alternates=alternates).reason


def test_too_many_entities_is_rejected_with_the_counts(seed_record):
    reason = rejection(seed_record, entities=[f"Entity {i}" for i in range(501)]).reason
    assert reason == "entities: too many entities (501 > limit 500)"


def test_entity_limit_comes_from_the_config_and_counts_distinct_values(seed_record):
    limits = Limits(max_entities=3)
    article, _ = parse(seed_record, limits, entities=["A", "B", "C", "A ", " B"])
    assert article.entities == ["A", "B", "C"]
    reason = rejection(seed_record, limits, entities=["A", "B", "C", "D"]).reason
    assert "too many entities (4 > limit 3)" in reason


def test_record_that_is_not_an_object_is_rejected():
    assert rejection(["a", "b"]).reason == "record must be a JSON object, got array"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"topics": "earn"}, "topics: expected a list of strings, got string"),
        ({"title": 42}, "title: expected a string, got number"),
        ({"body_md": None}, "body_md: expected a string, got null"),
        ({"alternates": ["https://example.com"]}, "alternates: expected an object of strings, got array"),
    ],
)
def test_wrong_types_are_rejected_not_coerced(seed_record, changes: dict[str, Any], reason: str):
    assert rejection(seed_record, **changes).reason == reason


@pytest.mark.parametrize("slug", ["Bad-Slug", "a/b", "../../etc/passwd", "a--b", "-a", "a b"])
def test_invalid_slug_is_rejected_not_rewritten(seed_record, slug: str):
    error = rejection(seed_record, slug=slug)
    assert error.reason.startswith("slug:")
    assert error.slug == slug


def test_oversized_body_is_rejected_with_its_size(seed_record):
    limits = Limits(max_body_bytes=1000)
    reason = rejection(seed_record, limits, body_md="x" * 1001).reason
    assert reason == "body_md: is 1,001 bytes (limit 1,000)"
