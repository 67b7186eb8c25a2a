"""The approximate nearest-neighbour graph (search_service/ann.py) with the real model on a real index:
used past ann_min_vectors with the exact results, the exact tail and its folding in, fallback to
exact search for a missing, mismatched or corrupt graph, reuse across a rebuild, writes through the
HTTP API, and what stats report.

The test config lowers ann_min_vectors and ann_tail_rows so that a few dozen articles (what the
model embeds in seconds here) are past the threshold; scripts/bench_semantic measures 100k.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI, api_client, cli_env, engine_for, reuters, semantic_config, write_jsonl

from search_service.config import IndexConfig
from search_service.index.indexer import Indexer
from search_service.index.reader import index_stats
from search_service.index.store import IndexStore
from search_service.search.engine import SearchRequest
from search_service.semantic.ann import META, graph_name
from search_service.semantic.vectors import embeddings_dir

ARTICLES = 30
MIN_VECTORS = 20
TAIL_ROWS = 6
KEY = "ann-test-key"


def ann_config(tmp_path: Path, **semantic: Any) -> IndexConfig:
    return semantic_config(tmp_path, ann_min_vectors=MIN_VECTORS, ann_tail_rows=TAIL_ROWS, **semantic)


def exact_twin(config: IndexConfig) -> IndexConfig:
    """The same config with the graph never used: the oracle for the graph's results."""
    return dataclasses.replace(config, semantic=dataclasses.replace(config.semantic, ann_min_vectors=10**9))


def embeddings(index_dir: Path) -> Path:
    return embeddings_dir(IndexStore(index_dir).current().path)


def meta(index_dir: Path) -> dict[str, Any]:
    return json.loads((embeddings(index_dir) / META).read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, IndexConfig, list[dict[str, Any]], Any]:
    """ARTICLES Reuters articles, every vector embedded and the graph built. Read-only: copy it (`copy`)."""
    tmp = tmp_path_factory.mktemp("ann")
    config = ann_config(tmp)
    records = reuters(ARTICLES)
    report = Indexer(IndexStore(tmp / "index"), config).rebuild([str(write_jsonl(tmp / "a.jsonl", records))])
    return tmp / "index", config, records, report


@pytest.fixture
def copy(built, tmp_path: Path) -> tuple[Path, IndexConfig, list[dict[str, Any]]]:
    """A copy of the module's index (generations and CURRENT) that the test may change."""
    index_dir, config, records, _ = built
    shutil.copytree(index_dir, tmp_path / "index")
    return tmp_path / "index", config, records


def queries(records: list[dict[str, Any]]) -> list[str]:
    return [record["title"] for record in records[:8]] + ["oil prices", "bank interest rates", "coffee exports"]


def slugs(engine: Any, query: str, **request: Any) -> list[str]:
    return [hit["slug"] for hit in engine.search(SearchRequest(q=query, per_page=30, **request))["hits"]]


# -- used past the threshold, with the exact results ---------------------------------------------


def test_past_ann_min_vectors_the_graph_answers_with_the_exact_ranking(built):
    index_dir, config, records, report = built
    assert (report.ann, report.ann_rows) == ("built", ARTICLES)
    assert meta(index_dir)["rows"] == ARTICLES and meta(index_dir)["file"] == graph_name(ARTICLES)
    assert meta(index_dir)["params"] == {"dtype": "f16", "metric": "ip", "dimension": 384} | {
        "connectivity": 16, "expansion_add": 128}  # fmt: skip
    graph, exact = engine_for(index_dir, config), engine_for(index_dir, exact_twin(config))
    for query in queries(records):
        assert slugs(graph, query) == slugs(exact, query), query
    assert graph.semantic.dense_searches["ann"] >= len(queries(records))
    assert exact.semantic.dense_searches["ann"] == 0
    # expansion_search is read by the workers: a new value applies to the same graph, no reindex.
    wider = engine_for(index_dir, dataclasses.replace(config, semantic=dataclasses.replace(
        config.semantic, ann_expansion_search=7)))  # fmt: skip
    wider.search(SearchRequest(q="oil prices"))
    graph_view = wider.semantic.graph(wider.semantic.view(IndexStore(index_dir).current().path))
    assert graph_view._index.expansion_search == 7 and wider.semantic.dense_searches["ann"]
    # The graph's cosines are the float32 ones (to rounding), not float16's (off by ~1e-3).
    view = graph.semantic.view(IndexStore(index_dir).current().path)
    vector = graph.semantic.query_vector("oil prices")
    approximate, exact_rows = graph.semantic.graph(view).nearest(view, vector, 10, 5), view.nearest(vector, 10, 5)
    assert [row for row, _ in approximate] == [row for row, _ in exact_rows]
    assert max(abs(a - b) for (_, a), (_, b) in zip(approximate, exact_rows, strict=True)) < 1e-6


def test_below_ann_min_vectors_no_graph_is_built_and_search_is_exact(tmp_path: Path):
    config = semantic_config(tmp_path, ann_min_vectors=9, ann_tail_rows=TAIL_ROWS)
    index_dir = tmp_path / "index"
    indexer = Indexer(IndexStore(index_dir), config)
    report = indexer.rebuild([str(write_jsonl(tmp_path / "a.jsonl", reuters(8)))])
    assert (report.ann, report.ann_rows) == ("exact", 0)
    assert not (embeddings(index_dir) / META).exists()
    engine = engine_for(index_dir, config)
    assert engine.search(SearchRequest(q="oil"))["semantic"]
    assert engine.semantic.dense_searches["ann"] == 0 and engine.semantic.dense_searches["exact"] >= 1
    # The ninth vector crosses the threshold: the whole graph is built by that write.
    report = indexer.upsert([str(write_jsonl(tmp_path / "b.jsonl", reuters(1, start=8)))])
    assert (report.ann, report.ann_rows) == ("built", 9)


# -- the exact tail --------------------------------------------------------------------------------


def test_rows_written_since_the_graph_are_searched_exactly_then_folded_in(copy, tmp_path: Path):
    index_dir, config, records = copy
    indexer = Indexer(IndexStore(index_dir), config)
    engine, exact = engine_for(index_dir, config), engine_for(index_dir, exact_twin(config))
    new = reuters(TAIL_ROWS, start=ARTICLES)
    report = indexer.upsert([str(write_jsonl(tmp_path / "b.jsonl", new[:3]))])
    assert (report.embedded, report.ann, report.ann_rows) == (3, "kept", ARTICLES)
    for record in new[:3]:  # only in the tail: found by the exact product past the graph's rows
        assert slugs(engine, record["title"])[0] == record["slug"]
        assert slugs(engine, record["title"]) == slugs(exact, record["title"])
    assert engine.semantic.graph(engine.semantic.view(IndexStore(index_dir).current().path)).rows == ARTICLES

    report = indexer.upsert([str(write_jsonl(tmp_path / "c.jsonl", new[3:]))])
    assert (report.ann, report.ann_rows) == ("extended", ARTICLES + TAIL_ROWS)
    files = sorted(p.name for p in embeddings(index_dir).glob("ann-*"))
    # The new graph is live; the one it replaced stays until the next switch (a worker may be opening it).
    assert meta(index_dir)["file"] == graph_name(ARTICLES + TAIL_ROWS)
    assert files == sorted([graph_name(ARTICLES), graph_name(ARTICLES + TAIL_ROWS)])
    for query in [r["title"] for r in new] + queries(records):
        assert slugs(engine, query) == slugs(exact, query), query
    assert engine.semantic.graph(engine.semantic.view(IndexStore(index_dir).current().path)).rows == ARTICLES + 6


# -- fallback to exact search ----------------------------------------------------------------------


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _remove_meta(directory: Path) -> None:
    (directory / META).unlink()


def _other_rows(directory: Path) -> None:
    described = json.loads((directory / META).read_text())
    (directory / META).write_text(json.dumps(described | {"keys_sha256": "0" * 64}))


def _garbage(directory: Path) -> None:
    path = directory / json.loads((directory / META).read_text())["file"]
    path.write_bytes(b"\x00not a graph" * (path.stat().st_size // 12) + b"\x00" * (path.stat().st_size % 12))


def _missing_file(directory: Path) -> None:
    (directory / json.loads((directory / META).read_text())["file"]).unlink()


@pytest.mark.parametrize("damage", [_remove_meta, _other_rows, _garbage, _missing_file])
def test_a_missing_mismatched_or_corrupt_graph_falls_back_to_exact_search_and_says_so(
    copy, tmp_path: Path, damage: Any
):
    index_dir, config, records = copy
    damage(embeddings(index_dir))
    engine, exact = engine_for(index_dir, config), engine_for(index_dir, exact_twin(config))
    # A handler on the module's logger itself: the service's logging setup may stop propagation.
    logger, records_logged = logging.getLogger("search_service.ann"), Collected()
    logger.addHandler(records_logged)
    try:
        for query in queries(records):
            result = engine.search(SearchRequest(q=query, per_page=30))
            assert result["semantic"] is True
            assert [h["slug"] for h in result["hits"]] == slugs(exact, query)
    finally:
        logger.removeHandler(records_logged)
    assert engine.semantic.dense_searches["ann"] == 0
    warnings = [r for r in records_logged.records if r.getMessage() == "ann graph not used: exact search"]
    assert len(warnings) == 1, "logged once, not once per search"
    assert engine.related(records[0]["slug"], 5)
    assert index_stats(IndexStore(index_dir), config)["ann_rows"] == 0

    # The next write builds a graph that matches the rows again.
    report = Indexer(IndexStore(index_dir), config).upsert([str(write_jsonl(tmp_path / "b.jsonl", reuters(1, 40)))])
    assert (report.ann, report.ann_rows) == ("built", ARTICLES + 1)
    assert slugs(engine, records[2]["title"]) == slugs(exact, records[2]["title"])
    assert engine.semantic.dense_searches["ann"] > 0


# -- rebuilds --------------------------------------------------------------------------------------


def test_a_rebuild_over_the_same_rows_links_the_previous_graph(copy, tmp_path: Path):
    index_dir, config, records = copy
    before = embeddings(index_dir) / graph_name(ARTICLES)
    corpus = write_jsonl(tmp_path / "a.jsonl", records)
    report = Indexer(IndexStore(index_dir), config).rebuild([str(corpus)])
    assert (report.embedded, report.vectors_reused) == (0, ARTICLES)
    assert (report.ann, report.ann_rows) == ("linked", ARTICLES)
    after = embeddings(index_dir) / graph_name(ARTICLES)
    assert after != before and after.stat().st_ino == before.stat().st_ino  # one file, two names
    engine = engine_for(index_dir, config)
    assert slugs(engine, records[1]["title"]) == slugs(engine_for(index_dir, exact_twin(config)), records[1]["title"])
    assert engine.semantic.dense_searches["ann"] > 0

    # One article changed: the rebuild keeps every row where it was (ImportVectors), so the graph is
    # linked again and the changed article's new row is searched exactly, in the tail.
    records[4] = records[4] | {"summary": "A summary written since."}
    report = Indexer(IndexStore(index_dir), config).rebuild([str(write_jsonl(tmp_path / "a.jsonl", records))])
    assert (report.embedded, report.ann, report.ann_rows) == (1, "linked", ARTICLES)
    engine = engine_for(index_dir, config)
    query = records[4]["summary"]
    assert slugs(engine, query) == slugs(engine_for(index_dir, exact_twin(config)), query)
    assert records[4]["slug"] in slugs(engine, query)
    # Other graph parameters: built afresh.
    sparser = ann_config(tmp_path, ann_connectivity=8)
    report = Indexer(IndexStore(index_dir), sparser).rebuild([str(corpus)])
    assert report.ann == "built" and meta(index_dir)["params"]["connectivity"] == 8


# -- the write API ---------------------------------------------------------------------------------


def test_writes_through_the_http_api_go_to_the_tail_then_into_the_graph(copy):
    index_dir, config, _ = copy
    new = reuters(TAIL_ROWS, start=ARTICLES)
    auth = {"Authorization": f"Bearer {KEY}"}
    with api_client(index_dir, config_path=Path(config.path), admin_key=KEY) as client:
        first = client.put(f"/articles/{new[0]['slug']}", json=new[0], headers=auth)
        assert first.status_code == 201, first.text
        assert meta(index_dir)["rows"] == ARTICLES  # one row in the tail
        batch = client.post("/articles", json=new[1:], headers=auth)
        assert batch.status_code == 200, batch.text
        assert meta(index_dir)["rows"] == ARTICLES + TAIL_ROWS
        for record in new:
            found = client.get("/search", params={"q": record["title"]}).json()
            assert found["semantic"] and found["hits"][0]["slug"] == record["slug"]
            assert client.get(f"/articles/{record['slug']}").status_code == 200
    assert index_stats(IndexStore(index_dir), config)["ann_rows"] == ARTICLES + TAIL_ROWS


# -- stats -----------------------------------------------------------------------------------------


def test_stats_report_the_rows_the_graph_covers(built):
    index_dir, config, _, _ = built
    run = subprocess.run(
        [*CLI, "stats", "--json", "--index-dir", str(index_dir), "--config", config.path],
        capture_output=True, text=True, env=cli_env(), timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    stats = json.loads(run.stdout)
    assert (stats["ann_rows"], stats["vector_rows"]) == (ARTICLES, ARTICLES)
