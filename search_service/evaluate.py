"""Relevance evaluation: run judged queries through the /search code path and score the rankings.

Metrics come from ir-measures (backed by pytrec_eval), not from hand-written formulas.
"""

from __future__ import annotations

import dataclasses
import random
import re
import string
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import ir_measures
from ir_measures import AP, R, nDCG

from search_service.config import IndexConfig
from search_service.errors import InputError
from search_service.index.indexer import Indexer
from search_service.index.reader import IndexReader
from search_service.index.report import IndexerOptions
from search_service.index.store import IndexStore
from search_service.search.engine import SearchEngine, SearchRequest

MEASURES = {"ndcg@10": nDCG @ 10, "map@100": AP @ 100, "recall@100": R @ 100}
DEPTH = 100
_WORD_RE = re.compile(r"[^\W\d_]{5,}")


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    queries: int
    judged: int
    seconds: float
    median_query_ms: float


def read_queries(path: str | Path) -> dict[str, str]:
    return dict(_tsv(path, 2, "qid<TAB>text"))


def read_qrels(path: str | Path) -> list[ir_measures.Qrel]:
    return [ir_measures.Qrel(qid, doc, int(grade)) for qid, doc, grade in _tsv(path, 3, "qid<TAB>slug<TAB>grade")]


def _tsv(path: str | Path, columns: int, layout: str) -> Iterable[list[str]]:
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != columns:
            raise InputError(f"{path}:{number}: expected {layout}")
        yield parts


def add_typos(text: str, seed: int) -> str:
    """One edit (substitute, delete, insert or swap) in every word of 5+ letters, deterministic by seed."""
    rng = random.Random(f"{seed}:{text}")

    def perturb(match: re.Match[str]) -> str:
        word = match.group(0)
        i = rng.randrange(1, len(word) - 1)
        op = rng.choice(("substitute", "delete", "insert", "swap"))
        letter = rng.choice([c for c in string.ascii_lowercase if c != word[i].lower()])
        if op == "substitute":
            return word[:i] + letter + word[i + 1 :]
        if op == "delete":
            return word[:i] + word[i + 1 :]
        if op == "insert":
            return word[:i] + letter + word[i:]
        if word[i - 1] == word[i]:  # swapping equal letters would change nothing
            return word[:i] + letter + word[i + 1 :]
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]

    return _WORD_RE.sub(perturb, text)


def evaluate(
    engine: SearchEngine,
    queries: dict[str, str],
    qrels: list[ir_measures.Qrel],
    freshness: bool = True,
    semantic: bool = True,
) -> Evaluation:
    started = time.perf_counter()
    run: list[ir_measures.ScoredDoc] = []
    timings: list[float] = []
    for qid, text in queries.items():
        request = SearchRequest(
            q=text, per_page=DEPTH, facets=(), highlight=False, freshness=freshness, semantic=semantic
        )
        t0 = time.perf_counter()
        result = engine.search(request)
        timings.append((time.perf_counter() - t0) * 1000)
        # Scores are replaced by rank so ties keep the engine's order in the evaluation too.
        run.extend(
            ir_measures.ScoredDoc(qid, hit["slug"], float(DEPTH - rank)) for rank, hit in enumerate(result["hits"])
        )
    judged = {q.query_id for q in qrels}
    relevant_qrels = [q for q in qrels if q.query_id in queries]
    scores = ir_measures.calc_aggregate(list(MEASURES.values()), relevant_qrels, run)
    timings.sort()
    return Evaluation(
        metrics={name: round(float(scores.get(measure, 0.0)), 4) for name, measure in MEASURES.items()},
        queries=len(queries),
        judged=len(judged & queries.keys()),
        seconds=round(time.perf_counter() - started, 3),
        median_query_ms=round(timings[len(timings) // 2], 3) if timings else 0.0,
    )


def evaluate_corpus(
    config: IndexConfig,
    queries_path: str | Path,
    qrels_path: str | Path,
    corpus: list[str] | None = None,
    index_dir: str | Path | None = None,
    typo_seed: int | None = None,
    freshness: bool = True,
    now: datetime | None = None,
    semantic: bool | None = None,
) -> Evaluation:
    """Index `corpus` into a temporary index (or use `index_dir`), then evaluate.

    `freshness=False` ranks by relevance alone; `now` pins the moment articles' ages are measured from.
    `semantic`: True turns [semantic] on (the index must be built with it: embedding at import),
    False ranks lexically (per request, so an index built with vectors is measured both ways),
    None takes the config as it is."""
    if semantic:
        config = dataclasses.replace(config, semantic=dataclasses.replace(config.semantic, enabled=True))
    queries = read_queries(queries_path)
    if typo_seed is not None:
        queries = {qid: add_typos(text, typo_seed) for qid, text in queries.items()}
    qrels = read_qrels(qrels_path)
    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        root = Path(index_dir) if index_dir else Path(tmp)
        store = IndexStore(root)
        if corpus:
            Indexer(store, config, IndexerOptions()).rebuild(corpus)
        engine = SearchEngine(IndexReader(store, config, interval=3600), config, now=now)
        return evaluate(engine, queries, qrels, freshness, semantic=semantic is not False)
