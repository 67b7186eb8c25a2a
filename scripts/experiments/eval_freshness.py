#!/usr/bin/env python3
"""What freshness ranking costs in relevance when an article's age says nothing about it.

    .venv/bin/python scripts/experiments/eval_freshness.py [--corpus A --queries Q --qrels R]
        [--spread-days N] [--seed S]

SciFact's articles all carry one date (2020-04-30), so on the real collection freshness cannot
move a hit (every article has the same freshness; docs/relevance.md). Here every article gets a
date drawn uniformly, deterministically by slug and seed, from the --spread-days before a fixed
"now", and the judged queries are scored with freshness off and with several [ranking.freshness]
settings, all on one index, through the service's own evaluator (the /search code path). The
dates are independent of the judgments, so every point lost is the price of freshness with no
benefit: a worst case for a news site, where the newest story is often the one a reader wants.

"fresh@10" is the share of the top 10 hits published within the last 7 days (by chance: 7/N).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the benchmark harness
import _bench

_bench.ensure_venv(__file__)

SCIFACT = _bench.REPO.parent / "shared" / "corpora" / "scifact"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
FRESH_DAYS = 7
VARIANTS = [
    ("off (relevance alone)", None),
    ("exp, scale 7, weight 0.1", {"function": "exp", "scale_days": 7.0, "weight": 0.1}),
    ("exp, scale 7, weight 0.2", {"function": "exp", "scale_days": 7.0, "weight": 0.2}),
    ("**exp, scale 7, weight 0.3 (shipped)**", {"function": "exp", "scale_days": 7.0, "weight": 0.3}),
    ("exp, scale 7, weight 0.5", {"function": "exp", "scale_days": 7.0, "weight": 0.5}),
    ("exp, scale 30, weight 0.3", {"function": "exp", "scale_days": 30.0, "weight": 0.3}),
    ("gauss, scale 7, weight 0.3", {"function": "gauss", "scale_days": 7.0, "weight": 0.3}),
    ("linear, scale 7, weight 0.3", {"function": "linear", "scale_days": 7.0, "weight": 0.3}),
]


def main() -> int:
    args = parse_args()
    from search_service.config import load_config
    from search_service.evaluate import evaluate, read_qrels, read_queries
    from search_service.index.indexer import Indexer
    from search_service.index.reader import IndexReader
    from search_service.index.report import IndexerOptions
    from search_service.index.store import IndexStore
    from search_service.search.engine import SearchEngine, SearchRequest

    command = _bench.print_header()
    queries, qrels = read_queries(args.queries), read_qrels(args.qrels)
    base = load_config()
    with _bench.work_dir("eval_freshness-") as work:
        corpus = redate(args.corpus, work / "articles.jsonl", args.spread_days, args.seed)
        store = IndexStore(work / "index")
        Indexer(store, base, IndexerOptions()).rebuild([str(corpus)])
        print(
            f"\n{len(queries)} queries, articles dated uniformly over the {args.spread_days} days before "
            f"{NOW.date()} (seed {args.seed}); by chance fresh@10 = {FRESH_DAYS / args.spread_days:.3f}\n"
        )
        rows = []
        for name, change in VARIANTS:
            freshness = dataclasses.replace(base.ranking.freshness, **(change or {}))
            config = dataclasses.replace(base, ranking=dataclasses.replace(base.ranking, freshness=freshness))
            engine = SearchEngine(IndexReader(store, config, interval=3600), config, now=NOW)
            result = evaluate(engine, queries, qrels, freshness=change is not None)
            fresh = fresh_share(engine, SearchRequest, queries, change is not None)
            m = result.metrics
            rows.append([name, *(f"{m[k]:.4f}" for k in ("ndcg@10", "map@100", "recall@100")), f"{fresh:.3f}"])
        # No latency column: the variants run one after another, not interleaved (bench_search times freshness).
        header = ["[ranking.freshness]", "nDCG@10", "MAP@100", "R@100", "fresh@10"]
        print(_bench.table(header, rows))
    _bench.print_footer(command)
    return 0


def redate(source: Path, target: Path, spread_days: int, seed: int) -> Path:
    """The corpus with each article's dates replaced by one drawn from its slug and the seed."""
    with open(source, encoding="utf-8") as lines, open(target, "w", encoding="utf-8") as out:
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            digest = hashlib.sha256(f"{seed}:{record['slug']}".encode()).digest()
            fraction = int.from_bytes(digest[:8], "big") / 2**64
            stamp = (NOW - timedelta(days=spread_days * fraction)).isoformat().replace("+00:00", "Z")
            record["published_at"] = record["updated_at"] = stamp
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return target


def fresh_share(engine: object, request_type: type, queries: dict[str, str], freshness: bool) -> float:
    """Mean share, over queries with hits, of the top 10 published within FRESH_DAYS of NOW."""
    shares = []
    for text in queries.values():
        hits = engine.search(request_type(q=text, per_page=10, facets=(), highlight=False, freshness=freshness))["hits"]
        if hits:
            ages = [NOW - datetime.fromisoformat(hit["published_at"].replace("Z", "+00:00")) for hit in hits]
            shares.append(sum(age <= timedelta(days=FRESH_DAYS) for age in ages) / len(hits))
    return sum(shares) / len(shares) if shares else 0.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=SCIFACT / "articles.jsonl")
    parser.add_argument("--queries", type=Path, default=SCIFACT / "queries.train.tsv")
    parser.add_argument("--qrels", type=Path, default=SCIFACT / "qrels.train.tsv")
    parser.add_argument("--spread-days", type=int, default=365, help="dates drawn from this many days (default 365)")
    parser.add_argument("--seed", type=int, default=11, help="date drawing seed")
    args = parser.parse_args()
    for path in (args.corpus, args.queries, args.qrels):
        if not path.is_file():
            _bench.fail(f"{path} not found")
    if args.spread_days < FRESH_DAYS:
        _bench.fail(f"--spread-days must be at least {FRESH_DAYS}")
    return args


if __name__ == "__main__":
    sys.exit(main())
