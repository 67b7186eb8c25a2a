"""Freshness ranking ([ranking.freshness]): decay functions, config checks, and /search over real indexes.

Paging is checked against BM25's own ranking (freshness=off): the freshness ranking must be a
reordering of BM25's best `window` hits followed by BM25's hits after them, page by page.
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tantivy
from conftest import SHIPPED_CONFIG, api_client, build_index, load_seed, write_jsonl

from search_service.config import FreshnessConfig, load_config, parse_config
from search_service.errors import ConfigError
from search_service.index.indexer import Indexer
from search_service.index.reader import IndexReader
from search_service.index.report import IndexerOptions
from search_service.search.engine import SearchEngine, SearchRequest
from search_service.search.freshness import current_now, decay_value

NOW = datetime(2026, 6, 1, tzinfo=UTC)
PAGED = 330  # articles matching the paging query: more than any window tested plus a page of 100
FILLER = ["tide", "crane", "quay", "ferry", "cargo", "berth", "pilot", "dock"]


def mutated(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    raw = copy.deepcopy(tomllib.loads(SHIPPED_CONFIG.read_text(encoding="utf-8")))
    change(raw)
    return raw


def config_error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "test-schema.toml")
    return caught.value.message


def article(slug: str, title: str, body: str, published: datetime) -> dict[str, Any]:
    record = load_seed()
    stamp = published.isoformat().replace("+00:00", "Z")
    record.update(
        slug=slug, title=title, summary="", body_md=f"# {title}\n\n{body}", published_at=stamp, updated_at=stamp
    )
    record.update(topics=[], entities=[], alternates={})
    return record


def search(client: Any, q: str, **params: Any) -> dict[str, Any]:
    response = client.get("/search", params={"q": q, "facets": "", **params})
    assert response.status_code == 200, response.text
    return response.json()


def every_page(client: Any, q: str, per_page: int, **params: Any) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = []
    for page in range(1, PAGED + 2):
        result = search(client, q, page=page, per_page=per_page, **params)
        assert result["total"] == PAGED
        if not result["hits"]:
            break
        hits.extend(result["hits"])
    return hits


# -- the decay functions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "halfway"),
    [("gauss", 0.5**0.25), ("exp", 0.5**0.5), ("linear", 0.75)],
)
def test_decay_is_one_up_to_the_offset_equals_decay_at_offset_plus_scale_and_vanishes_far_away(
    function: str, halfway: float
) -> None:
    config = FreshnessConfig(function=function, scale_days=7, offset_days=2, decay=0.5)
    assert decay_value(config, 0) == 1.0
    assert decay_value(config, -3) == 1.0  # dated in the future: as fresh as can be
    assert decay_value(config, 2) == 1.0
    assert decay_value(config, 2 + 7) == pytest.approx(0.5, abs=1e-12)
    # Elasticsearch's formulas halfway through the scale: decay^(1/4), decay^(1/2), 1 - (1 - decay) / 2.
    assert decay_value(config, 2 + 3.5) == pytest.approx(halfway, abs=1e-12)
    assert decay_value(config, 10_000) < 1e-9
    assert decay_value(config, None) == 0.0
    ages = [i / 4 for i in range(200)]
    values = [decay_value(config, age) for age in ages]
    assert values == sorted(values, reverse=True)
    assert all(0.0 <= v <= 1.0 for v in values)


def test_linear_decay_reaches_zero_where_elasticsearch_says() -> None:
    config = FreshnessConfig(function="linear", scale_days=10, offset_days=1, decay=0.25)
    # s = scale / (1 - decay): zero at offset + s.
    zero_at = 1 + 10 / 0.75
    assert decay_value(config, zero_at - 0.01) > 0
    assert decay_value(config, zero_at) == pytest.approx(0.0, abs=1e-12)
    assert decay_value(config, zero_at + 5) == 0.0


def test_now_steps_up_to_the_next_minute() -> None:
    assert current_now(120.0) == datetime.fromtimestamp(120, UTC)
    assert current_now(120.001) == datetime.fromtimestamp(180, UTC)
    assert current_now(179.999) == datetime.fromtimestamp(180, UTC)


# -- config -------------------------------------------------------------------------------------


def test_shipped_freshness_is_exp_with_a_week_scale_and_a_third_of_the_score() -> None:
    freshness = load_config().ranking.freshness
    assert freshness == FreshnessConfig(
        function="exp", scale_days=7.0, offset_days=0.0, decay=0.5, weight=0.3, window=200
    )
    assert freshness.enabled


def test_old_recency_keys_are_rejected_with_the_freshness_table_to_write_instead() -> None:
    message = config_error(mutated(lambda r: r["ranking"].update(recency_weight=0.5, recency_half_life_days=14.0)))
    assert "recency_weight and recency_half_life_days are gone" in message
    assert "ranking.freshness" in message
    assert 'function = "exp", scale_days = 14.0, offset_days = 0, decay = 0.5' in message
    assert "unknown keys" not in message
    off = config_error(mutated(lambda r: r["ranking"].update(recency_weight=0.0)))
    assert "recency_weight is gone" in off
    assert 'function = "none"' in off


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"function": "sigmoid"}, "ranking.freshness.function must be one of 'gauss', 'exp', 'linear', 'none'"),
        ({"scale_days": 0}, "ranking.freshness.scale_days must be a number of days above 0 (got 0)"),
        ({"scale_days": "7d"}, "ranking.freshness.scale_days must be a number of days above 0 (got '7d')"),
        ({"offset_days": -1}, "ranking.freshness.offset_days must be a number of days, 0 or more (got -1)"),
        ({"decay": 1}, "ranking.freshness.decay must be a number strictly between 0 and 1"),
        ({"decay": 0.0}, "ranking.freshness.decay must be a number strictly between 0 and 1"),
        ({"weight": 1.5}, "ranking.freshness.weight must be a number from 0 (pure relevance) to 1"),
        ({"weight": True}, "ranking.freshness.weight must be a number"),
        ({"window": 0}, "ranking.freshness.window must be a whole number of hits from 1 to 10000 (got 0)"),
        ({"window": 20.5}, "ranking.freshness.window must be a whole number of hits"),
        ({"half_life": 3}, "ranking.freshness: unknown keys half_life (known: function, scale_days"),
    ],
)
def test_invalid_freshness_settings_are_config_errors_naming_key_and_value(
    change: dict[str, Any], expected: str
) -> None:
    assert expected in config_error(mutated(lambda r: r["ranking"]["freshness"].update(change)))


def test_freshness_that_is_not_a_table_is_a_config_error() -> None:
    assert "ranking.freshness must be a table" in config_error(mutated(lambda r: r["ranking"].update(freshness=3)))


def test_freshness_needs_a_published_at_date_field_unless_it_is_off() -> None:
    def drop_published(raw: dict[str, Any]) -> None:
        del raw["fields"]["published_at"]

    assert "ranking.freshness needs a date field built from published_at" in config_error(mutated(drop_published))

    def drop_and_turn_off(raw: dict[str, Any]) -> None:
        drop_published(raw)
        raw["ranking"]["freshness"]["function"] = "none"

    assert not parse_config(mutated(drop_and_turn_off)).ranking.freshness.enabled


def test_a_missing_freshness_table_means_the_defaults() -> None:
    assert parse_config(mutated(lambda r: r["ranking"].pop("freshness"))).ranking.freshness == FreshnessConfig()


# -- /search ------------------------------------------------------------------------------------


@pytest.fixture
def same_text_index(tmp_path: Path) -> Any:
    """Three articles with the same text, imported oldest first (so BM25's tie order is oldest first)."""
    now = datetime.now(UTC)
    records = [
        article(
            f"harbour-{age}h",
            "Harbour strike ends",
            "Dock workers returned after the strike.",
            now - timedelta(hours=age),
        )
        for age in (74, 26, 2)
    ]
    records.append(article("unrelated", "Cocoa harvest", "Rain helped the crop.", now))
    path = write_jsonl(tmp_path / "same.jsonl", records)
    return build_index(tmp_path / "index", [path], options=IndexerOptions(threads=1))


def test_equal_text_articles_a_day_apart_come_newest_first_and_in_bm25_order_with_freshness_off(
    same_text_index: Any,
) -> None:
    index = same_text_index.open()
    everything = index.searcher().search(tantivy.Query.all_query(), 10).hits
    stored = [index.searcher().doc(address).get_first("slug") for _, address in everything]
    tantivy_order = [slug for slug in stored if slug.startswith("harbour")]
    assert tantivy_order == ["harbour-74h", "harbour-26h", "harbour-2h"]
    with api_client(same_text_index.index_dir) as client:
        fresh = search(client, "harbour strike")
        plain = search(client, "harbour strike", freshness="off")
    assert [hit["slug"] for hit in fresh["hits"]] == ["harbour-2h", "harbour-26h", "harbour-74h"]
    assert fresh["freshness"] is True
    scores = [hit["score"] for hit in fresh["hits"]]
    assert scores[0] > scores[1] > scores[2]
    # Equal BM25 scores: only freshness tells them apart; without it, tantivy's tie order.
    assert [hit["slug"] for hit in plain["hits"]] == tantivy_order
    assert plain["freshness"] is False
    assert len({hit["score"] for hit in plain["hits"]}) == 1


def test_freshness_applies_only_to_relevance_and_off_is_validated(same_text_index: Any) -> None:
    with api_client(same_text_index.index_dir) as client:
        assert search(client, "harbour", sort="newest")["freshness"] is False
        assert search(client, "")["freshness"] is False
        bad = client.get("/search", params={"q": "harbour", "freshness": "maybe"})
    assert bad.status_code == 422
    assert "freshness" in bad.json()["error"]["message"]


@pytest.fixture(scope="module")
def paging_index(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """PAGED articles about a harbour with many distinct BM25 scores (and ties), dated over 40 days
    before NOW (ties there too), imported in an order unrelated to either; and some that do not match."""
    root = tmp_path_factory.mktemp("freshness-paging")
    records = []
    for i in range(PAGED):
        words = ["harbour"] * (1 + i % 4) + FILLER[: (i * 5) % 9]
        published = NOW - timedelta(hours=(i * 7919) % (24 * 40))
        records.append(article(f"dispatch-{i}", f"Dispatch {i}", " ".join(words), published))
    records += [article(f"other-{i}", f"Other {i}", "cocoa crop", NOW - timedelta(days=i)) for i in range(20)]
    built = build_index(root / "index", [write_jsonl(root / "paging.jsonl", records)])
    # Two indexing threads write two segments: tie order and offsets are checked across segments.
    assert built.searcher().num_segments > 1
    return built


def config_with_window(tmp_path: Path, window: int) -> Path:
    text = SHIPPED_CONFIG.read_text(encoding="utf-8")
    assert "window = 200\n" in text
    path = tmp_path / "schema.toml"
    path.write_text(text.replace("window = 200\n", f"window = {window}\n"), encoding="utf-8")
    return path


@pytest.mark.parametrize("window", [155, 200])
def test_pages_with_freshness_are_exact_for_any_page_size_across_the_window_edge(
    paging_index: Any, tmp_path: Path, window: int
) -> None:
    config_path = config_with_window(tmp_path, window)
    with api_client(paging_index.index_dir, config_path=config_path, freshness_now=NOW) as client:
        bm25 = every_page(client, "harbour", 100, freshness="off")
        ranked = {per_page: every_page(client, "harbour", per_page) for per_page in (100, 10, 7, 1)}
    bm25_slugs = [hit["slug"] for hit in bm25]
    assert len(bm25_slugs) == len(set(bm25_slugs)) == PAGED
    reference = [hit["slug"] for hit in ranked[100]]
    for per_page, hits in ranked.items():
        # No overlap and no gap: every page size gives the same sequence, each hit once.
        assert [hit["slug"] for hit in hits] == reference, per_page
    assert len(reference) == len(set(reference)) == PAGED
    # The window is a reordering of BM25's best `window`; after it, BM25's own order.
    assert set(reference[:window]) == set(bm25_slugs[:window])
    assert reference[window:] == bm25_slugs[window:]
    assert reference[:window] != bm25_slugs[:window]
    shown = [hit["score"] for hit in ranked[100][:window]]
    assert shown == sorted(shown, reverse=True)
    # Every score is the documented blend of the hit's BM25 score and its age.
    freshness = load_config(config_path).ranking.freshness
    bm25_scores = {hit["slug"]: hit["score"] for hit in bm25}
    top = bm25[0]["score"]
    for hit in ranked[100]:
        age = (NOW - datetime.fromisoformat(hit["published_at"].replace("Z", "+00:00"))).total_seconds() / 86400
        expected = (1 - freshness.weight) * bm25_scores[hit["slug"]] / top + freshness.weight * decay_value(
            freshness, age
        )
        # Scores are shown rounded to 4 decimals: BM25's rounding moves the blend by at most this much.
        rounding = 5e-5 + (1 - freshness.weight) * 5e-5 * (1 / top + bm25_scores[hit["slug"]] / top**2)
        assert math.isclose(hit["score"], expected, abs_tol=rounding + 1e-9), hit["slug"]


def test_a_cached_answer_is_reused_only_for_the_same_now_and_the_same_freshness_switch(paging_index: Any) -> None:
    config = load_config()
    engine = SearchEngine(IndexReader(paging_index.store, config, interval=3600), config, cache_size=16)
    request = SearchRequest(q="harbour", per_page=20, facets=(), now=NOW)
    first = engine.search(request)
    assert engine.search(request)["cached"] is True
    week_later = engine.search(SearchRequest(q="harbour", per_page=20, facets=(), now=NOW + timedelta(days=7)))
    assert week_later["cached"] is False
    off = engine.search(SearchRequest(q="harbour", per_page=20, facets=(), now=NOW, freshness=False))
    assert off["cached"] is False
    assert off["freshness"] is False
    # A week on, every article has aged alike, but relevance now outweighs the smaller freshness gaps.
    assert [h["slug"] for h in week_later["hits"]] != [h["slug"] for h in first["hits"]]


def test_tantivy_returns_the_hits_after_a_top_k_with_an_offset_in_the_same_order_ties_included(
    tmp_path: Path,
) -> None:
    """What exact paging across the window's end rests on, over several segments and many equal scores."""
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body", stored=True)
    index = tantivy.Index(builder.build(), path=str(tmp_path))
    writer = index.writer(50_000_000, 1)
    for segment in range(5):
        for i in range(120):
            writer.add_document(tantivy.Document(body="harbour crane" if (segment + i) % 3 else "harbour"))
        writer.commit()
    writer.wait_merging_threads()
    index.reload()
    searcher = index.searcher()
    assert searcher.num_segments > 1
    query = index.parse_query("harbour crane", ["body"])
    full = [(a.segment_ord, a.doc) for _, a in searcher.search(query, 1000).hits]
    assert len(full) == 600
    for window in (1, 7, 155, 200, 401):
        assert [(a.segment_ord, a.doc) for _, a in searcher.search(query, window).hits] == full[:window]
        after = searcher.search(query, 1000, offset=window).hits
        assert [(a.segment_ord, a.doc) for _, a in after] == full[window:]


def test_a_generation_recorded_with_the_old_recency_keys_still_migrates_to_a_new_config(
    sample_index: Any, tmp_path: Path, seed_record: dict[str, Any]
) -> None:
    """Generations keep the config that built them; one from before [ranking.freshness] has the old
    keys, which a live config may not have, but its articles must still be carried over."""
    recorded = sample_index.store.current().path / "index_config.toml"
    text = recorded.read_text(encoding="utf-8")
    start, end = text.index("[ranking.freshness]"), text.index("[ranking.fallback_boosts]")
    old_text = text[:start].replace("[ranking]\n", "[ranking]\nrecency_weight = 0.0\nrecency_half_life_days = 30.0\n")
    recorded.write_text(old_text + text[end:], encoding="utf-8")
    with pytest.raises(ConfigError, match="recency_weight and recency_half_life_days are gone"):
        load_config(recorded)
    section = '[fields.lang]\nkind = "keyword"\n'
    changed = tmp_path / "schema.toml"
    changed.write_text(SHIPPED_CONFIG.read_text(encoding="utf-8").replace(section, section + "facet = true\n"))
    new_config = load_config(changed)
    assert new_config.fingerprint != sample_index.config.fingerprint
    before = sample_index.searcher().num_docs
    report = Indexer(sample_index.store, new_config).upsert([str(write_jsonl(tmp_path / "new.jsonl", [seed_record]))])
    assert report.generation != sample_index.report.generation
    assert report.documents == before + 1


# -- the evaluator ------------------------------------------------------------------------------


@pytest.fixture
def dated_collection(tmp_path: Path) -> dict[str, Path]:
    """Two equal-text articles a week apart, the older imported first and judged relevant."""
    records = [
        article("ferry-old", "Ferry timetable", "The ferry timetable changes.", NOW - timedelta(days=7)),
        article("ferry-new", "Ferry timetable", "The ferry timetable changes.", NOW),
    ]
    queries = tmp_path / "queries.tsv"
    queries.write_text("q1\tferry timetable\n")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\tferry-old\t1\n")
    corpus = write_jsonl(tmp_path / "articles.jsonl", records)
    # One indexing thread, one segment: BM25's tie order is the import order, older first.
    built = build_index(tmp_path / "index", [corpus], options=IndexerOptions(threads=1))
    return {"index": built.index_dir, "queries": queries, "qrels": qrels}


def evaluate_json(collection: dict[str, Path], *options: str) -> Any:
    from typer.testing import CliRunner

    from search_service.cli import app

    paths = ["--index-dir", str(collection["index"]), "--queries", str(collection["queries"])]
    result = CliRunner().invoke(app, ["evaluate", *paths, "--qrels", str(collection["qrels"]), "--json", *options])
    return result


def test_evaluate_takes_freshness_off_and_a_pinned_now(dated_collection: dict[str, Path]) -> None:
    on = evaluate_json(dated_collection, "--now", NOW.isoformat())
    off = evaluate_json(dated_collection, "--freshness", "off", "--now", NOW.isoformat())
    assert on.exit_code == off.exit_code == 0, on.output + off.output
    # Freshness puts the new article first, the relevant old one second: nDCG 1/log2(3).
    assert json.loads(on.stdout)["ndcg@10"] == pytest.approx(1 / math.log2(3), abs=1e-4)
    assert json.loads(off.stdout)["ndcg@10"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("options", "expected"),
    [(["--freshness", "maybe"], "--freshness must be on or off"), (["--now", "yesterday"], "--now: 'yesterday'")],
)
def test_evaluate_rejects_a_bad_freshness_switch_or_now(
    dated_collection: dict[str, Path], options: list[str], expected: str
) -> None:
    result = evaluate_json(dated_collection, *options)
    assert result.exit_code != 0
    assert expected in result.output
