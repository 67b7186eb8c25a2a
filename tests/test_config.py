"""index_config/schema.toml: loading, validation messages, the fingerprint, adding a facet."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tantivy
from conftest import SAMPLE, SHIPPED_CONFIG, build_index, doc_count, oracle_counts

from search_service.config import load_config, parse_config
from search_service.errors import ConfigError
from search_service.index.schema import build_analyzers


def shipped_raw() -> dict[str, Any]:
    return tomllib.loads(SHIPPED_CONFIG.read_text(encoding="utf-8"))


def mutated(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    raw = copy.deepcopy(shipped_raw())
    change(raw)
    return raw


def config_error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "test-schema.toml")
    return caught.value.message


# -- the shipped config -------------------------------------------------------------------------


def test_shipped_config_loads_with_its_fields_analyzers_and_facets():
    config = load_config()
    assert config.path == str(SHIPPED_CONFIG)
    assert config.key_field.name == "slug"
    assert set(config.facets) == {"topics", "entities"}
    assert {f.name for f in config.text_fields} == {"title", "summary", "body", "cjk"}
    boosts = config.search_boosts()
    assert set(boosts) == {"title", "summary", "body", "cjk", "entities__text"}
    assert max(boosts, key=boosts.get) == "title"
    # Sentence queries search the same fields, ranked with the body first.
    fallback = config.fallback_search_boosts()
    assert set(fallback) == set(boosts)
    assert max(fallback, key=fallback.get) == "body"
    assert config.snippets.fields == ("body", "summary")
    assert {"lowercase", "stemmer:english"} <= set(config.analyzers["text"].filters)
    assert set(build_analyzers(config)) == {"text", "cjk"}


def test_shipped_config_loaded_from_a_copied_file_equals_the_default(tmp_path: Path):
    copied = tmp_path / "schema.toml"
    copied.write_text(SHIPPED_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_config(copied).fields == load_config().fields
    assert load_config(copied).path == str(copied)


# -- fingerprint --------------------------------------------------------------------------------


def test_fingerprint_is_stable_across_loads():
    first = load_config().fingerprint
    assert first == load_config().fingerprint == parse_config(shipped_raw()).fingerprint
    assert len(first) == 16
    int(first, 16)


def test_fingerprint_changes_when_an_analyzer_changes():
    base = parse_config(shipped_raw()).fingerprint
    no_stemmer = mutated(lambda r: r["analyzers"]["text"].update(filters=["remove_long:40", "lowercase"]))
    other_pattern = mutated(lambda r: r["analyzers"]["text"].update(pattern=r"\w+"))
    assert parse_config(no_stemmer).fingerprint != base
    assert parse_config(other_pattern).fingerprint != base


def test_fingerprint_changes_when_a_field_changes_what_is_indexed():
    base = parse_config(shipped_raw()).fingerprint
    assert parse_config(mutated(lambda r: r["fields"]["lang"].update(facet=True))).fingerprint != base
    assert parse_config(mutated(lambda r: r["fields"]["title"].update(stored=False))).fingerprint != base


def test_fingerprint_ignores_boosts_and_query_time_settings():
    base = parse_config(shipped_raw()).fingerprint
    changes = [
        lambda r: r["fields"]["title"].update(boost=5.0),
        lambda r: r["fields"]["body"].update(boost=0.5),
        lambda r: r["fields"]["topics"].update(query_name="t"),
        lambda r: r["fields"]["lang"].update(filter_param="language"),
        lambda r: r["snippets"].update(max_chars=300),
        lambda r: r["ranking"]["freshness"].update(function="gauss", weight=0.9, window=50),
        lambda r: r["ranking"]["fallback_boosts"].update(title=1.0, body=0.5),
        lambda r: r["limits"].update(max_entities=10),
    ]
    for change in changes:
        assert parse_config(mutated(change)).fingerprint == base


def test_moving_fields_within_the_config_changes_neither_fingerprint_nor_schema(tmp_path: Path):
    built = build_index(tmp_path / "index", [SAMPLE])
    reordered = mutated(lambda r: r.update(fields=dict(reversed(list(r["fields"].items())))))
    config = parse_config(reordered)
    assert list(config.fields) != list(built.config.fields)
    assert config.fingerprint == built.config.fingerprint
    assert doc_count(built.index_dir, config) == doc_count(built.index_dir, built.config) > 0


def test_fingerprint_ignores_a_keyword_search_boost():
    base = parse_config(shipped_raw()).fingerprint
    changed = mutated(lambda r: r["fields"]["entities"].update(search_boost=3.0))
    assert parse_config(changed).fingerprint == base


# -- validation ---------------------------------------------------------------------------------


def test_unknown_field_kind_is_a_config_error_naming_field_and_kind():
    message = config_error(mutated(lambda r: r["fields"]["title"].update(kind="fulltext")))
    assert "test-schema.toml" in message
    assert "fields.title.kind" in message
    assert "'fulltext'" in message


def test_text_field_without_analyzer_is_a_config_error():
    message = config_error(mutated(lambda r: r["fields"]["title"].pop("analyzer")))
    assert "fields.title.analyzer must name one of [analyzers]" in message


def test_text_field_naming_an_undefined_analyzer_is_a_config_error():
    message = config_error(mutated(lambda r: r["fields"]["body"].update(analyzer="nope")))
    assert "fields.body.analyzer" in message
    assert "'nope'" in message


def test_two_key_fields_is_a_config_error():
    message = config_error(mutated(lambda r: r["fields"]["lang"].update(key=True)))
    assert "exactly one keyword field must have key = true (found 2)" in message


def test_no_key_field_is_a_config_error():
    message = config_error(mutated(lambda r: r["fields"]["slug"].pop("key")))
    assert "key = true (found 0)" in message


def test_unknown_key_in_a_field_is_a_config_error_listing_the_known_keys():
    message = config_error(mutated(lambda r: r["fields"]["title"].update(weight=2)))
    assert "fields.title: unknown keys weight" in message
    assert "boost" in message  # the known keys are listed


def test_unknown_key_in_an_analyzer_or_section_is_a_config_error():
    assert "analyzers.text: unknown keys colour" in config_error(
        mutated(lambda r: r["analyzers"]["text"].update(colour="red"))
    )
    assert "ranking: unknown keys typo" in config_error(mutated(lambda r: r["ranking"].update(typo=True)))
    assert "unknown sections: extras" in config_error(mutated(lambda r: r.update(extras={})))


@pytest.mark.parametrize("field", ["lang", "body_md", "missing"])
def test_snippet_field_that_is_not_stored_text_is_a_config_error(field: str):
    message = config_error(mutated(lambda r: r["snippets"].update(fields=[field])))
    assert f"snippets.fields: {field!r} must be a stored text field" in message


def test_snippet_field_that_is_text_but_not_stored_is_a_config_error():
    message = config_error(mutated(lambda r: r["fields"]["summary"].update(stored=False)))
    assert "snippets.fields: 'summary' must be a stored text field" in message


def test_unknown_filter_name_is_a_config_error_listing_known_filters():
    message = config_error(mutated(lambda r: r["analyzers"]["text"].update(filters=["lowercase", "stemer:english"])))
    assert "analyzers.text.filters: unknown filter 'stemer:english'" in message
    assert "stemmer" in message and "lowercase" in message


def test_unknown_tokenizer_is_a_config_error():
    message = config_error(mutated(lambda r: r["analyzers"]["text"].update(tokenizer="icu")))
    assert "analyzers.text.tokenizer" in message and "'icu'" in message


@pytest.mark.parametrize(
    ("boosts", "expected"),
    [
        ({"title": 1.0, "summary": 0.0, "body": 1.0, "entities": 1.0, "cjk": 1.0}, "fallback_boosts must be a table"),
        ({"title": "high", "summary": 1.0, "body": 1.0, "entities": 1.0, "cjk": 1.0}, "must be a table"),
        ({"title": 1.0, "summary": 1.0, "body": 1.0, "entities": 1.0, "cjk": 1.0, "lang": 1.0}, "'lang' is not a"),
        ({"title": 1.0, "summary": 1.0, "body": 1.0, "entities": 1.0, "cjk": 1.0, "nope": 1.0}, "'nope' is not a"),
        ({"title": 1.0, "body": 1.0, "entities": 1.0, "cjk": 1.0}, "missing: summary"),
        ({"body": 1.0}, "missing: cjk, entities, summary, title"),
    ],
)
def test_invalid_fallback_boosts_are_config_errors(boosts: dict[str, Any], expected: str):
    assert expected in config_error(mutated(lambda r: r["ranking"].update(fallback_boosts=boosts)))


def test_without_fallback_boosts_the_fallback_ranks_with_the_search_boosts():
    config = parse_config(mutated(lambda r: r["ranking"].pop("fallback_boosts")))
    assert config.ranking.fallback_boosts == {}
    assert config.fallback_search_boosts() == config.search_boosts()


def test_one_config_error_lists_every_problem_at_once():
    def break_several(raw: dict[str, Any]) -> None:
        raw["fields"]["title"]["kind"] = "fulltext"
        raw["fields"]["lang"]["key"] = True
        raw["fields"]["body"]["colour"] = "red"
        raw["analyzers"]["text"]["filters"] = ["bogus"]
        raw["snippets"]["fields"] = ["lang"]

    message = config_error(mutated(break_several))
    problems = [line for line in message.splitlines() if line.startswith("  - ")]
    assert len(problems) >= 5
    for expected in [
        "fields.title.kind",
        "key = true (found 2)",
        "fields.body: unknown keys colour",
        "unknown filter 'bogus'",
        "snippets.fields: 'lang'",
    ]:
        assert expected in message


def test_unreadable_or_invalid_toml_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read index config"):
        load_config(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[fields\nkind = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


@pytest.mark.parametrize(
    "analyzer",
    [
        {"filters": ["remove_long:abc"]},
        {"filters": ["stemmer"]},
        {"filters": ["stemmer:klingon"]},
        {"tokenizer": "regex", "pattern": "[unclosed"},
    ],
    ids=["remove_long-not-a-number", "stemmer-without-language", "stemmer-unknown-language", "invalid-regex"],
)
def test_invalid_analyzer_arguments_are_config_errors(analyzer: dict[str, Any]):
    raw = mutated(lambda r: r["analyzers"]["text"].update(analyzer))
    with pytest.raises(ConfigError):
        build_analyzers(parse_config(raw))


# -- a config change: a new facet ---------------------------------------------------------------


def test_adding_lang_as_a_facet_counts_documents_per_language(tmp_path: Path):
    text = SHIPPED_CONFIG.read_text(encoding="utf-8")
    section = '[fields.lang]\nkind = "keyword"\n'
    assert section in text
    config_path = tmp_path / "schema.toml"
    config_path.write_text(text.replace(section, section + "facet = true\n"), encoding="utf-8")

    config = load_config(config_path)
    assert set(config.facets) == {"topics", "entities", "lang"}
    assert config.fingerprint != load_config().fingerprint

    built = build_index(tmp_path / "index", [SAMPLE], config)
    searcher = built.searcher()
    result = searcher.aggregate(tantivy.Query.all_query(), {"l": {"terms": {"field": "lang", "size": 100}}})
    counts = {bucket["key"]: bucket["doc_count"] for bucket in result["l"]["buckets"]}

    expected = oracle_counts(SAMPLE, "lang")
    assert len(expected) > 1  # the sample corpus has more than one language
    assert counts == dict(expected)
    assert sum(counts.values()) == searcher.num_docs == built.report.indexed
