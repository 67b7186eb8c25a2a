#!/usr/bin/env python3
"""Month counts from month ranges vs from a 1-day histogram, in-process, both shapes, side by side.

    .venv/bin/python scripts/experiments/bench_date_counts.py --reuters-index DIR --seed-index DIR --seed-corpus FILE
        [--corpus FILE] [--queries 250] [--passes 3]

The indexes are service index dirs (`search-service reindex CORPUS --index-dir DIR`). For each
shape, bench_search's queries (1-3 title words, a quarter with a topic filter, facets
topics,entities,published_at, date_interval=month) through four variants, interleaved query by
query with the order rotating: the service's `SearchEngine.search` + JSON as shipped (one range per
calendar month over the index's date span) and with `date_span` returning None (the 1-day
histogram it used before), and the floor (`scripts/_floor_app.py`) both ways. Also times the two
date aggregations alone over the same queries.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # scripts/: the benchmark harness, the floor
import _bench

_bench.ensure_venv(__file__)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=_bench.DEFAULT_CORPUS, help="Reuters JSONL (its queries)")
    parser.add_argument("--reuters-index", type=Path, required=True)
    parser.add_argument("--seed-corpus", type=Path, required=True)
    parser.add_argument("--seed-index", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=250)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()

    bench_search = _bench.load_script("bench_search")
    import _floor_app
    import orjson
    from _floor_app import Floor

    from search_service.config import load_config
    from search_service.index.reader import IndexReader
    from search_service.index.store import IndexStore
    from search_service.search import counting as search_module
    from search_service.search.engine import SearchEngine, SearchRequest
    from search_service.search.facets import day_histogram_agg, month_ranges_agg

    print(f"command: {_bench.command_line()}")
    print(f"machine: {_bench.machine()} (1/5/15 min: {_bench.load_averages()})")
    config = load_config()
    SHIPPED = search_module.MONTH_RANGES_MIN_MATCHES
    variants = {}
    for shape, corpus, index_dir in (
        ("reuters", args.corpus, args.reuters_index),
        ("seed", args.seed_corpus, args.seed_index),
    ):
        queries = bench_search.draw_queries(corpus, args.queries, 21578)
        requests = [SearchRequest(q=q, filters={"topics": (t,)} if t else {}, facets=_bench.FACETS) for q, t in queries]
        topics = [(t,) if t else () for _, t in queries]
        engine = SearchEngine(IndexReader(IndexStore(index_dir), config), config)
        days = SearchEngine(IndexReader(IndexStore(index_dir), config), config)
        days.counter.date_span = lambda searcher: None
        index = engine.reader.current().index
        searcher = index.searcher()
        floor, floor_days = Floor(index, config), Floor(index, config)
        floor_days._span = [None]
        span = engine.date_span(searcher)
        plans = [engine.plan(r, searcher).query(without="published_at") for r in requests]
        month_agg = {"published_at": month_ranges_agg(engine.counter.seconds_field, *span)}
        day_agg = {"published_at": day_histogram_agg("published_at")}
        print(f"{_bench.SHAPE_NAMES[shape]}: {index_dir}, dates {span[0]} to {span[1]}, {len(queries)} queries")

        def service(engine: SearchEngine, requests: list, threshold: int) -> Callable[[int], object]:
            def run(i: int) -> object:
                search_module.MONTH_RANGES_MIN_MATCHES = threshold
                return orjson.dumps(engine.search(requests[i]))

            return run

        def floor_of(floor: Floor, searcher: object, queries: list, topics: list, threshold: int) -> Callable:
            def run(i: int) -> object:
                _floor_app.MONTH_RANGES_MIN_MATCHES = threshold
                return orjson.dumps(floor.search(searcher, queries[i][0], topics[i], _bench.FACETS))

            return run

        variants[shape] = {
            f"service as shipped (month ranges from {SHIPPED:,} matches)": service(engine, requests, SHIPPED),
            "service, month ranges for every query": service(engine, requests, 0),
            "service, 1-day histogram for every query (before)": service(days, requests, SHIPPED),
            "floor as shipped": floor_of(floor, searcher, queries, topics, SHIPPED),
            "floor, 1-day histogram for every query": floor_of(floor_days, searcher, queries, topics, SHIPPED),
            "date aggregation alone, month ranges": lambda i, s=searcher, p=plans, a=month_agg: s.aggregate(p[i], a),
            "date aggregation alone, 1-day histogram": lambda i, s=searcher, p=plans, a=day_agg: s.aggregate(p[i], a),
        }
    calls = {(shape, name): call for shape, named in variants.items() for name, call in named.items()}
    per_query = _bench.interleaved(
        calls, args.queries, args.passes, progress=lambda n: print(f"  pass {n} done, load {os.getloadavg()[0]:.2f}")
    )
    times = {key: [t for query_times in per_query[key] for t in query_times] for key in calls}
    rows = []
    names = list(variants["reuters"])
    for name in names:
        r, s = (times[(shape, name)] for shape in ("reuters", "seed"))
        rows.append(
            [
                name,
                f"{_bench.median(r):.2f}",
                f"{_bench.percentile(r, 95):.2f}",
                f"{_bench.median(s):.2f}",
                f"{_bench.percentile(s, 95):.2f}",
                f"{_bench.median(s) / _bench.median(r):.2f}x",
            ]
        )
    print()
    header = ["variant", "Reuters p50 ms", "Reuters p95 ms", "seed p50 ms", "seed p95 ms", "seed/Reuters p50"]
    print(_bench.table(header, rows))
    print(f"\nload at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
