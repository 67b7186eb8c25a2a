"""Fusion variants of semantic ranking on SciFact train, through the service's own evaluator.

The figures of docs/relevance.md ("Semantic ranking") come from this script. It needs an index of
SciFact built with [semantic] enabled (embedding 5,183 articles takes 10-20 minutes of CPU here;
later rebuilds reuse every vector):

  sed 's/^enabled = false/enabled = true/; s/^threads = 1/threads = 2/' index_config/schema.toml > /tmp/semantic.toml
  .venv/bin/search-service reindex --config /tmp/semantic.toml --index-dir /tmp/sem-scifact/index \\
      ../shared/corpora/scifact/articles.jsonl
  .venv/bin/python scripts/experiments/semantic_fusion.py --config /tmp/semantic.toml --index-dir /tmp/sem-scifact/index

Fusion settings are read at query time, so every variant runs on the same index; query vectors
are computed once and shared by the variants (the ranker's cache).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import time
from pathlib import Path

from search_service.config import load_config
from search_service.evaluate import add_typos, evaluate, read_qrels, read_queries
from search_service.index.reader import IndexReader
from search_service.index.store import IndexStore
from search_service.search.engine import SearchEngine

SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "scifact"
VARIANTS = [
    ("lexical only (semantic=off)", None),
    ("convex 0.3 lexical / 0.7 cosine, depth 100 (default)", {}),
    ("convex 0.2 / 0.8", {"lexical_weight": 0.2}),
    ("convex 0.4 / 0.6", {"lexical_weight": 0.4}),
    ("convex 0.5 / 0.5", {"lexical_weight": 0.5}),
    ("convex 0.3 / 0.7, depth 50", {"depth": 50}),
    ("convex 0.3 / 0.7, depth 200", {"depth": 200}),
    ("rrf k 60, depth 100", {"fusion": "rrf", "rrf_k": 60.0}),
    ("rrf k 20, depth 100", {"fusion": "rrf", "rrf_k": 20.0}),
    ("convex 0.3 / 0.7 + vector feedback: 3 best hits, weight 0.5", {"feedback_docs": 3, "feedback_weight": 0.5}),
    ("convex 0.3 / 0.7 + vector feedback: 3 best hits, weight 1.0", {"feedback_docs": 3, "feedback_weight": 1.0}),
    ("convex 0.3 / 0.7 + vector feedback: 5 best hits, weight 0.5", {"feedback_docs": 5, "feedback_weight": 0.5}),
    ("convex 0.3 / 0.7 + vector feedback: 1 best hit, weight 0.5", {"feedback_docs": 1, "feedback_weight": 0.5}),
]


def halves(qids: list[str]) -> tuple[set[str], set[str]]:
    """The same two random halves as docs/relevance.md's earlier blocks (seed 7)."""
    ordered = sorted(qids, key=lambda q: int(q) if q.isdigit() else q)
    random.Random(7).shuffle(ordered)
    return set(ordered[: len(ordered) // 2]), set(ordered[len(ordered) // 2 :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="an index config with [semantic] enabled")
    parser.add_argument("--index-dir", required=True, help="SciFact built with that config")
    parser.add_argument("--typos", type=int, default=1, help="seed of the typo'd run of the default and of off")
    parser.add_argument("--only", help="comma-separated variant numbers (1-based) to run")
    args = parser.parse_args()

    config = load_config(args.config)
    engine = SearchEngine(IndexReader(IndexStore(args.index_dir), config, interval=3600), config)
    queries = read_queries(SCIFACT / "queries.train.tsv")
    qrels = read_qrels(SCIFACT / "qrels.train.tsv")
    half_a, half_b = halves(list(queries))
    ranker = engine.semantic
    chosen = {int(i) for i in args.only.split(",")} if args.only else None
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    header = "| variant | nDCG@10 | MAP@100 | R@100 | nDCG A / B | R@100 A / B | ms/query |"
    rows = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    for number, (name, change) in enumerate(VARIANTS, start=1):
        if chosen and number not in chosen:
            continue
        ranker.semantic = dataclasses.replace(config.semantic, **(change or {}))
        on = change is not None
        started = time.perf_counter()
        whole = evaluate(engine, queries, qrels, semantic=on)
        a = evaluate(engine, {q: t for q, t in queries.items() if q in half_a}, qrels, semantic=on)
        b = evaluate(engine, {q: t for q, t in queries.items() if q in half_b}, qrels, semantic=on)
        m = whole.metrics
        rows.append(
            f"| {name} | {m['ndcg@10']:.4f} | {m['map@100']:.4f} | {m['recall@100']:.4f} | "
            f"{a.metrics['ndcg@10']:.3f} / {b.metrics['ndcg@10']:.3f} | "
            f"{a.metrics['recall@100']:.3f} / {b.metrics['recall@100']:.3f} | {whole.median_query_ms:.1f} |"
        )
        print(rows[-1], f"({time.perf_counter() - started:.0f} s)", flush=True)
    if args.typos is not None:
        typoed = {qid: add_typos(text, args.typos) for qid, text in queries.items()}
        ranker.semantic = config.semantic
        for label, on in (("default", True), ("semantic=off", False)):
            clean = evaluate(engine, queries, qrels, semantic=on).metrics
            typo = evaluate(engine, typoed, qrels, semantic=on)
            ratio = typo.metrics["ndcg@10"] / clean["ndcg@10"]
            rows.append(
                f"| `--typos {args.typos}`, {label} | {typo.metrics['ndcg@10']:.4f} | {typo.metrics['map@100']:.4f} | "
                f"{typo.metrics['recall@100']:.4f} | ratio to clean {ratio:.2f} | | {typo.median_query_ms:.1f} |"
            )
            print(rows[-1], flush=True)
    print()
    print("\n".join(rows))
    print(
        f"\nload average {os.getloadavg()[0]:.2f}; command: scripts/experiments/semantic_fusion.py --config "
        f"{args.config} --index-dir {args.index_dir}"
    )


if __name__ == "__main__":
    main()
