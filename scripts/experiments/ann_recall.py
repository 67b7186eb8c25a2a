"""Experiment: recall@100 of the service's ANN graph (search_service/ann.py) against the exact top 100,
on real SciFact vectors, per ann_expansion_search, with the time of each way.

    .venv/bin/python scripts/experiments/ann_recall.py [--index-dir DIR] [--limit N] [--queries N]

Needs the `semantic` extra. Without --index-dir it builds one in a temporary directory from the
first --limit SciFact articles with [semantic] on (the real model: ~7 articles/s on this machine,
so all 5,183 take 15-30 minutes); with --index-dir it reads the vectors of an index built with
[semantic] on. The graph is built by ann.update_graph with the shipped parameters into a copy of
the vectors, and searched through ann.GraphView as the workers do (candidates rescored from the
float32 vectors). Two kinds of query: the SciFact train queries embedded by the model (hybrid
search), and article vectors themselves (related articles; the article's own row counts).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DATA = ROOT.parent / "shared" / "corpora" / "scifact"
CORPUS = DATA / "articles.jsonl"
QUERIES = DATA / "queries.train.tsv"
K = 100


def build_index(index_dir: Path, config, limit: int, work: Path) -> None:
    from search_service.index.indexer import Indexer
    from search_service.index.store import IndexStore

    corpus = work / "scifact.jsonl"
    with open(CORPUS, encoding="utf-8") as src, open(corpus, "w", encoding="utf-8") as out:
        for n, line in enumerate(src):
            if n >= limit:
                break
            out.write(line)
    started = time.perf_counter()
    report = Indexer(IndexStore(index_dir), config).rebuild([str(corpus)])
    print(f"built {report.indexed} articles, {report.embedded} embedded in {time.perf_counter() - started:.0f} s")


def recall_rows(view, graph, vectors, ef: int) -> tuple[float, float, float]:
    """Mean recall@K of the graph's rows, and p50 ms of the graph's and the exact way."""
    graph._index.expansion_search = ef
    recalls, graph_ms, exact_ms = [], [], []
    for vector in vectors:
        started = time.perf_counter()
        exact = {row for row, _ in view.nearest(vector, K)}
        exact_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        found = {row for row, _ in graph.nearest(view, vector, K)}
        graph_ms.append((time.perf_counter() - started) * 1000)
        recalls.append(len(exact & found) / len(exact))
    return statistics.mean(recalls), statistics.median(graph_ms), statistics.median(exact_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=10**9, help="SciFact articles to embed without --index-dir")
    parser.add_argument("--queries", type=int, default=400, help="queries of each kind")
    parser.add_argument("--ef", default="50,100,200,400", help="ann_expansion_search values")
    args = parser.parse_args()

    import numpy as np

    from search_service.config import load_config
    from search_service.index.store import IndexStore
    from search_service.semantic.ann import GraphView, update_graph
    from search_service.semantic.embedder import Embedder
    from search_service.semantic.registry import MODELS
    from search_service.semantic.vectors import KEYS, MODEL, VECTORS, VectorReader, embeddings_dir

    base = load_config()
    config = dataclasses.replace(base, semantic=dataclasses.replace(base.semantic, enabled=True, ann_min_vectors=1))
    spec = MODELS[config.semantic.model]
    with tempfile.TemporaryDirectory(prefix="ann-recall-") as tmp:
        work = Path(tmp)
        index_dir = args.index_dir
        if index_dir is None:
            index_dir = work / "index"
            build_index(index_dir, config, args.limit, work)
        source = embeddings_dir(IndexStore(index_dir).current().path)
        directory = work / "graph"
        directory.mkdir()
        for name in (VECTORS, KEYS, MODEL):
            shutil.copyfile(source / name, directory / name)
        view = VectorReader(directory, spec.name, spec.dimension)
        started = time.perf_counter()
        run = update_graph(directory, config.semantic, spec.dimension, view.rows, threads=2)
        semantic = config.semantic
        print(f"graph over {view.rows:,} vectors: {run.action} in {time.perf_counter() - started:.1f} s, "
              f"connectivity {semantic.ann_connectivity}, expansion_add {semantic.ann_expansion_add}")  # fmt: skip
        graph = GraphView(directory, spec.dimension, config.semantic.ann_expansion_search)
        graph.refresh(view)
        assert graph.problem is None, graph.problem

        texts = [line.split("\t", 1)[1].strip() for line in QUERIES.read_text(encoding="utf-8").splitlines()]
        texts = [t for t in texts if t][: args.queries]
        queries = Embedder(spec, config.semantic.max_tokens, 1).embed(texts)
        rng = np.random.default_rng(7)
        articles = [np.asarray(view.matrix[row]) for row in rng.choice(view.rows, min(args.queries, view.rows), False)]

        rows = []
        for ef in [int(x) for x in args.ef.split(",")]:
            for kind, vectors in (("queries", queries), ("articles", articles)):
                recall, graph_ms, exact_ms = recall_rows(view, graph, vectors, ef)
                rows.append({"ef": ef, "kind": kind, "n": len(vectors), "recall@100": round(recall, 4),
                             "graph p50 ms": round(graph_ms, 2), "exact p50 ms": round(exact_ms, 2)})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
        print(f"\n| ef | query | n | recall@{K} | graph p50 ms | exact p50 ms |\n|---:|---|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['ef']} | {r['kind']} | {r['n']} | {r['recall@100']:.3f} | {r['graph p50 ms']:.2f} "
                  f"| {r['exact p50 ms']:.2f} |")  # fmt: skip
    print("command: " + " ".join([sys.executable, *sys.argv]))


if __name__ == "__main__":
    main()
