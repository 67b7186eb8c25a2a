"""Content rules ([content] in schema.toml): named sections and matching paragraphs leave the indexed
text and the snippets, never the stored article; the seed feed's promo and Scoring Rationale go."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE, SHIPPED_CONFIG, api_client, build_index, load_seed, write_jsonl

from search_service.config import ContentConfig, parse_config
from search_service.errors import ConfigError
from search_service.ingest.content import ContentRules, required_literal
from search_service.ingest.render import markdown_to_text


def shipped_raw() -> dict[str, Any]:
    return tomllib.loads(SHIPPED_CONFIG.read_text(encoding="utf-8"))


def with_content(**content: Any) -> dict[str, Any]:
    raw = copy.deepcopy(shipped_raw())
    raw["content"] = content
    return raw


def text(markdown: str, sections: tuple[str, ...] = (), paragraphs: tuple[str, ...] = ()) -> str:
    return markdown_to_text(markdown, "", ContentRules.from_config(ContentConfig(sections, paragraphs)))


NESTED = """# Title

Intro.

## Keep A

A text.

## Drop me

Dropped one.

### Under the dropped one

Dropped two.

## Keep B

B text.

### drop   ME

Dropped three.

#### Deeper still

Dropped four.

# Higher

Higher text.

## Tail

Tail text.
"""


# -- sections -------------------------------------------------------------------------------------


def test_a_section_runs_to_the_next_heading_of_the_same_or_a_higher_level():
    assert text(NESTED, sections=("Drop me",)).split("\n\n") == [
        "Title",
        "Intro.",
        "Keep A",
        "A text.",
        # "## Drop me" and its "###" went; the next "##" ends it.
        "Keep B",
        "B text.",
        # "### drop ME" (case and spacing ignored) and its "####" went; the next "#" ends it.
        "Higher",
        "Higher text.",
        "Tail",
        "Tail text.",
    ]


def test_a_dropped_section_at_the_end_runs_to_the_end():
    assert text(NESTED, sections=("Tail",)).endswith("Higher\n\nHigher text.")


def test_a_dropped_top_level_section_takes_all_its_subsections():
    assert text(NESTED, sections=("Higher",)).endswith("Dropped four.")


def test_heading_text_is_compared_without_markup_and_must_be_whole():
    markdown = "Lead.\n\n## The **Scoring** Rationale &amp; more\n\nGone.\n\n## Scoring\n\nKept."
    assert text(markdown, sections=("The Scoring Rationale & more",)) == "Lead.\n\nScoring\n\nKept."
    assert text(markdown, sections=("Rationale",)) == text(markdown)


def test_without_rules_the_text_is_as_before():
    assert text(NESTED) == markdown_to_text(NESTED) == markdown_to_text(NESTED, "", None)


# -- paragraphs -----------------------------------------------------------------------------------


def test_exactly_the_paragraphs_a_pattern_finds_are_dropped():
    markdown = "Keep one.\n\nSponsored: buy now\nat a discount.\n\nKeep two, not sponsored.\n\n- Try 25 free problems\n"
    assert text(markdown, paragraphs=("^Sponsored:", r"^Try \d+ free problems$")) == (
        "Keep one.\n\nKeep two, not sponsored."
    )


def test_a_pattern_anchored_at_a_paragraph_start_does_not_fire_mid_paragraph():
    markdown = "First line\nSponsored: not at the start of the paragraph."
    assert text(markdown, paragraphs=("^Sponsored:",)) == text(markdown)


# -- validation and the fingerprint ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"drop_paragraphs": ["(unclosed"]}, "content.drop_paragraphs[0]: '(unclosed' is not a regular expression"),
        ({"drop_paragraphs": ["x*"]}, "matches an empty paragraph"),
        ({"drop_sections": "Scoring Rationale"}, "content.drop_sections must be a list of strings"),
        ({"drop_sections": ["ok", " "]}, "content.drop_sections[1] must be a non-empty string"),
        ({"drop_sections": [3]}, "content.drop_sections[0] must be a non-empty string"),
        ({"drop_heading": ["x"]}, "content: unknown keys drop_heading"),
    ],
)
def test_invalid_rules_are_reported_with_what_to_fix(content: dict[str, Any], message: str):
    with pytest.raises(ConfigError) as info:
        parse_config(with_content(**content))
    assert message in str(info.value)


def test_changing_the_rules_changes_the_fingerprint():
    shipped = parse_config(shipped_raw())
    assert shipped.content.drop_sections == ("Scoring Rationale",)
    fingerprints = {
        shipped.fingerprint,
        parse_config(with_content()).fingerprint,
        parse_config(with_content(drop_sections=["Scoring Rationale", "Related"])).fingerprint,
        parse_config(with_content(drop_paragraphs=["^Sponsored"])).fingerprint,
    }
    assert len(fingerprints) == 4


def test_a_config_without_rules_keeps_the_fingerprint_it_had_before_rules_existed():
    raw = shipped_raw()
    del raw["content"]
    assert parse_config(raw).fingerprint == parse_config(with_content(drop_sections=[])).fingerprint


# -- the seed feed, end to end --------------------------------------------------------------------


@pytest.fixture
def seed_client(tmp_path: Path) -> Any:
    seed = load_seed()
    # A second article of the same feed: the same trailing section and promo, another story.
    other = copy.deepcopy(seed) | {"slug": "another-story-of-the-feed", "title": "Another story"}
    other["body_md"] = "# Another story\n\nSomething else happened.\n\n## " + seed["body_md"].split("\n\n## ", 1)[1]
    articles = write_jsonl(tmp_path / "feed.jsonl", [seed, other])
    built = build_index(tmp_path / "index", [articles, SAMPLE])
    assert built.report.rejected == 0
    with api_client(built.index_dir) as client:
        yield client


def search(client: Any, q: str) -> dict[str, Any]:
    response = client.get("/search", params={"q": q, "facets": ""})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_seed_story_is_found_first(seed_client: Any):
    hits = search(seed_client, "ByteDance Azure revenue")["hits"]
    assert hits[0]["slug"] == load_seed()["slug"]
    assert "Practice" not in hits[0]["highlights"]["snippet"]


@pytest.mark.parametrize(
    "q",
    [
        '"practice interview problems"',
        '"try 250 free problems"',
        '"industry datasets"',
        '"scoring rationale"',
        '"frontier research or product breakthrough"',
    ],
)
def test_the_feed_promo_and_scoring_rationale_are_not_searchable(seed_client: Any, q: str):
    assert search(seed_client, q)["total"] == 0


def test_the_stored_article_is_returned_exactly_as_imported(seed_client: Any):
    seed = load_seed()
    article = seed_client.get(f"/articles/{seed['slug']}").json()
    assert article["body_md"] == seed["body_md"]
    assert "Practice interview problems based on real data" in article["body_md"]
    for key in ("slug", "title", "summary", "url", "canonical_source", "lang", "topics", "entities", "alternates"):
        assert article[key] == seed[key], key


def test_a_pattern_without_a_leading_literal_is_still_searched():
    markdown = "Keep.\n\n250 free problems\n\nKeep too."
    assert text(markdown, paragraphs=(r"^\d+ free problems$",)) == "Keep.\n\nKeep too."


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        ("^Practice interview$", "Practice interview"),
        (r"SQL & Python problems across \d+", "SQL & Python problems across "),
        (r"^Try \d+ free problems$", " free problems"),
        ("colou?r", "colo"),
        ("(?i)sponsored", ""),
        ("sponsored|advert", ""),
        ("^(?:Sponsored|Ad): buy", ""),
        (r"^[)a-z]+ now", " now"),
        ("^(?:Sponsored): buy", ": buy"),
        (r"^[a-z]+ now", " now"),
        (r"^\d+", ""),
    ],
)
def test_the_literal_a_pattern_is_tested_for_is_one_every_match_contains(pattern: str, literal: str):
    assert required_literal(pattern) == literal


def test_the_promo_patterns_alone_drop_the_seed_promo_and_keep_its_rationale():
    seed = load_seed()
    patterns = parse_config(shipped_raw()).content.drop_paragraphs
    kept = text(seed["body_md"], paragraphs=patterns)
    assert "Scoring Rationale\n\nThe story documents material commercial adoption" in kept
    for promo in ("Practice interview problems", "SQL & Python problems", "Try 250 free problems"):
        assert promo in markdown_to_text(seed["body_md"]) and promo not in kept
    # Exactly the three promo paragraphs went.
    assert len(markdown_to_text(seed["body_md"]).split("\n\n")) - len(kept.split("\n\n")) == 3
