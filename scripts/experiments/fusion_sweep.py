"""Fusion formulas for semantic ranking, swept offline on SciFact train from the service's own inputs.

`semantic_fusion.py` runs each variant through the whole search path, which takes minutes a
variant. This script records, once, what the service's fusion stage receives for every query (the
lexical top `--depth` with BM25 scores, after typo corrections, and the vector of the query text
the model reads), then re-fuses those inputs with each formula in numpy against every article's
vector (the index's own file) and scores the top 100 with ir-measures. The first variant is the
shipped formula; it must reproduce `semantic_fusion.py`'s figure for it, which checks the replay.

  .venv/bin/python scripts/experiments/fusion_sweep.py --config /tmp/semantic.toml --index-dir /tmp/sem-scifact/index

(the index built as in semantic_fusion.py). Inputs are cached in `--cache` (an .npz), so a second
run only re-fuses.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ir_measures
import numpy as np
import tantivy

from search_service.config import load_config
from search_service.evaluate import MEASURES, add_typos, read_qrels, read_queries
from search_service.index.reader import IndexReader
from search_service.index.store import IndexStore
from search_service.search.engine import SearchEngine, SearchRequest
from search_service.semantic.registry import EMBEDDING_FIELD
from search_service.semantic.vectors import VectorReader, embeddings_dir

SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "scifact"
TOP = 100


@dataclasses.dataclass
class Inputs:
    slugs: list[str]  # one per document
    matrix: np.ndarray  # each document's vector (unit length), in the same order
    queries: dict[str, tuple[list[int], np.ndarray, np.ndarray]]  # qid -> (lexical documents, BM25, query vector)
    passages: np.ndarray | None = None  # window vectors (passage_vectors.py), if loaded
    owners: np.ndarray | None = None  # each window's document


def record(config_path: str, index_dir: str, depth: int, typos: int | None) -> Inputs:
    """What the fusion stage is given for each train query, replayed through SearchEngine.search."""
    config = load_config(config_path)
    config = dataclasses.replace(config, semantic=dataclasses.replace(config.semantic, depth=depth))
    engine = SearchEngine(IndexReader(IndexStore(index_dir), config, interval=3600), config)
    ranker = engine.semantic
    searcher = engine.reader.searcher()
    view = VectorReader(embeddings_dir(IndexStore(index_dir).current().path), ranker.spec.name, ranker.spec.dimension)
    key = config.key_field.name
    # Candidates are documents (two articles with the same embedded text share a vector row).
    everything = searcher.search(tantivy.Query.all_query(), 100_000, count=False).hits
    addresses = [a for _, a in everything]
    rows = view.rows_of(searcher.fast_field_values(EMBEDDING_FIELD, addresses))
    assert (rows >= 0).all(), "every article needs its vector"
    number = {(a.segment_ord, a.doc): n for n, a in enumerate(addresses)}
    slugs = [searcher.doc(a)[key][0] for a in addresses]
    seen: dict[str, tuple[str, list[tuple[float, Any]]]] = {}
    original = ranker.top

    def spy(searcher, schema, path, text, head, *rest):  # the ranker's own signature
        seen["last"] = (text, head[0])
        return original(searcher, schema, path, text, head, *rest)

    ranker.top = spy
    queries = read_queries(SCIFACT / "queries.train.tsv")
    if typos is not None:
        queries = {qid: add_typos(text, typos) for qid, text in queries.items()}
    out = {}
    for qid, text in queries.items():
        seen.clear()
        engine.search(SearchRequest(q=text, per_page=TOP, facets=(), highlight=False))
        if "last" not in seen:
            continue
        read, head = seen["last"]
        lexical = [number[(a.segment_ord, a.doc)] for _, a in head]
        scores = np.array([s for s, _ in head], dtype=np.float64)
        out[qid] = (lexical, scores, ranker.query_vector(read))
    return Inputs(slugs, np.asarray(view.matrix, dtype=np.float32)[rows], out)


# -- normalizations and fusions (inputs: numpy arrays over candidate rows) --------------------------


def minmax(x: np.ndarray) -> np.ndarray:
    low, high = x.min(), x.max()
    return np.ones_like(x) if high <= low else (x - low) / (high - low)


def zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return np.zeros_like(x) if sd <= 0 else (x - x.mean()) / sd


@dataclasses.dataclass(frozen=True)
class Convex:
    """weight * norm(BM25) + (1 - weight) * norm(cosine) over the union of the lexical top `depth`
    and the dense top `depth`; a dense-only candidate takes the lowest normalized lexical value
    (minmax's 0). `dense_over` "union" normalizes the cosines over the union, "own" over the dense
    top `depth` (lexical candidates below it held at its floor). `feedback` = (docs, weight): the
    query vector moved towards its best fused hits' mean, then fused again. `passages`: score an
    article by `max_weight` * its best window's cosine + the rest * its one vector's."""

    weight: float
    depth: int = 100
    norm: Callable[[np.ndarray], np.ndarray] = minmax
    lex_norm: Callable[[np.ndarray], np.ndarray] | None = None
    dense_over: str = "union"
    feedback: tuple[int, float] = (0, 0.0)
    max_weight: float = 0.0

    def __call__(self, inputs: Inputs, lexical: list[int], bm25: np.ndarray, query: np.ndarray) -> list[int]:
        order = self.once(lexical, bm25, self.cosines(inputs, query))
        if self.feedback[0]:
            moved = query + self.feedback[1] * inputs.matrix[order[: self.feedback[0]]].mean(axis=0)
            order = self.once(lexical, bm25, self.cosines(inputs, moved / np.linalg.norm(moved)))
        return order

    def cosines(self, inputs: Inputs, query: np.ndarray) -> np.ndarray:
        whole = inputs.matrix @ query
        if not self.max_weight:
            return whole
        best = np.full(len(whole), -1.0, dtype=np.float32)
        np.maximum.at(best, inputs.owners, inputs.passages @ query)
        return self.max_weight * best + (1 - self.max_weight) * whole

    def once(self, lexical: list[int], bm25: np.ndarray, cos_all: np.ndarray) -> list[int]:
        lex_rows, lex_scores = lexical[: self.depth], bm25[: self.depth]
        dense = np.argsort(-cos_all, kind="stable")[: self.depth]
        union = np.array(list(dict.fromkeys([*lex_rows, *dense.tolist()])))
        lex_n = (self.lex_norm or self.norm)(lex_scores)
        lex_val = np.full(len(union), lex_n.min())
        lex_val[: len(lex_rows)] = lex_n
        cos = cos_all[union]
        if self.dense_over == "union":
            cos_n = self.norm(cos)
        else:
            own = cos_all[dense]
            cos_n = np.maximum(self.norm(np.concatenate([own, cos]))[len(own) :], self.norm(own).min())
        fused = self.weight * lex_val + (1 - self.weight) * cos_n
        return union[np.argsort(-fused, kind="stable")[:TOP]].tolist()


@dataclasses.dataclass(frozen=True)
class RRF:
    """lex_weight / (k + lexical rank) + 1 / (k + cosine rank among the union)."""

    k: float
    depth: int = 100
    lex_weight: float = 1.0

    def __call__(self, inputs: Inputs, lexical: list[int], bm25: np.ndarray, query: np.ndarray) -> list[int]:
        cos_all = inputs.matrix @ query
        scores = {row: self.lex_weight / (self.k + rank) for rank, row in enumerate(lexical[: self.depth], 1)}
        union = set(lexical[: self.depth]) | set(np.argsort(-cos_all)[: self.depth].tolist())
        for rank, row in enumerate(sorted(union, key=lambda r: -cos_all[r]), start=1):
            scores[row] = scores.get(row, 0.0) + 1 / (self.k + rank)
        return sorted(scores, key=lambda r: -scores[r])[:TOP]


def by_top(x: np.ndarray) -> np.ndarray:
    """Each score as a share of the best (BM25's scale kept, the floor not stretched to 0)."""
    return x / x.max() if x.max() > 0 else np.ones_like(x)


Fusion = Callable[[Inputs, list[int], np.ndarray, np.ndarray], list[int]]


def variants() -> list[tuple[str, Fusion]]:
    out: list[tuple[str, Fusion]] = [("convex minmax 0.3 (shipped)", Convex(0.3))]
    out += [(f"convex minmax {w}", Convex(w)) for w in (0.2, 0.25, 0.35, 0.4)]
    out += [(f"convex zscore {w}", Convex(w, norm=zscore)) for w in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)]
    for w in (0.3, 0.4):
        out.append((f"convex zscore {w}, depth 200", Convex(w, depth=200, norm=zscore)))
        out.append((f"convex minmax {w}, depth 200", Convex(w, depth=200)))
        out.append(
            (f"convex zscore {w}, cosines normalized over the dense top 100", Convex(w, norm=zscore, dense_over="own"))
        )
        out.append((f"convex minmax {w}, cosines normalized over the dense top 100", Convex(w, dense_over="own")))
    out += [
        (f"convex zscore {w} + feedback 3 / 0.5", Convex(w, norm=zscore, feedback=(3, 0.5))) for w in (0.3, 0.35, 0.4)
    ]
    out.append(("convex minmax 0.3 + feedback 3 / 0.5", Convex(0.3, feedback=(3, 0.5))))
    out.append(("convex 0.3, zscore(BM25) + minmax(cosine)", Convex(0.3, lex_norm=zscore)))
    out += [(f"convex {w}, BM25 / top + minmax(cosine)", Convex(w, lex_norm=by_top)) for w in (0.3, 0.4, 0.5)]
    for k in (20, 60):
        out.append((f"rrf k {k}", RRF(k)))
        out.append((f"rrf k {k}, lexical ranks x0.5", RRF(k, lex_weight=0.5)))
    return out


def passage_variants() -> list[tuple[str, Fusion]]:
    out: list[tuple[str, Fusion]] = [("convex minmax 0.3 (shipped)", Convex(0.3))]
    for m in (1.0, 0.5):
        out += [(f"convex minmax {w}, max-sim {m}", Convex(w, max_weight=m)) for w in (0.3, 0.4)]
        out.append((f"convex zscore 0.3, max-sim {m}", Convex(0.3, norm=zscore, max_weight=m)))
    out.append(("convex minmax 0.3, max-sim 0.7", Convex(0.3, max_weight=0.7)))
    out.append(("convex minmax 0.3, max-sim 0.5 + feedback 3 / 0.5", Convex(0.3, max_weight=0.5, feedback=(3, 0.5))))
    return out


def halves(qids: list[str]) -> tuple[set[str], set[str]]:
    """The same two random halves as docs/relevance.md (seed 7)."""
    ordered = sorted(qids, key=lambda q: int(q) if q.isdigit() else q)
    random.Random(7).shuffle(ordered)
    return set(ordered[: len(ordered) // 2]), set(ordered[len(ordered) // 2 :])


def score(inputs: Inputs, fuse: Fusion, qrels: list[ir_measures.Qrel], qids: set[str]) -> dict[str, float]:
    run = []
    for qid, (lexical, bm25, query) in inputs.queries.items():
        if qid in qids:
            for rank, row in enumerate(fuse(inputs, lexical, bm25, query)):
                run.append(ir_measures.ScoredDoc(qid, inputs.slugs[row], float(TOP - rank)))
    judged = [q for q in qrels if q.query_id in qids]
    found = ir_measures.calc_aggregate(list(MEASURES.values()), judged, run)
    return {name: float(found.get(m, 0.0)) for name, m in MEASURES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--index-dir", required=True)
    parser.add_argument("--cache", default="/tmp/fusion-sweep.pkl")
    parser.add_argument("--typos", type=int, help="record and sweep typo'd queries (this seed) instead")
    parser.add_argument("--only", help="substring of the variant names to run")
    parser.add_argument("--passages", help="window vectors from passage_vectors.py: adds the max-sim variants")
    args = parser.parse_args()
    cache = Path(args.cache + (f".typos{args.typos}" if args.typos is not None else ""))
    if cache.exists():
        inputs = pickle.loads(cache.read_bytes())
    else:
        inputs = record(args.config, args.index_dir, 200, args.typos)
        cache.write_bytes(pickle.dumps(inputs))
    chosen = variants()
    if args.passages:
        saved = np.load(args.passages)
        number = {slug: n for n, slug in enumerate(inputs.slugs)}
        inputs.owners = np.array([number[str(slug)] for slug in saved["slugs"]])
        inputs.passages = saved["vectors"]
        print(f"{len(inputs.passages)} windows embedded in {float(saved['seconds']):.0f} s")
        chosen = passage_variants()
    qrels = read_qrels(SCIFACT / "qrels.train.tsv")
    queries = read_queries(SCIFACT / "queries.train.tsv")
    half_a, half_b = halves(list(queries))
    print(f"load average {os.getloadavg()[0]:.2f}; {len(inputs.queries)} queries with a lexical match")
    print("| variant | nDCG@10 | MAP@100 | R@100 | nDCG A / B | R@100 A / B |\n|---|---:|---:|---:|---:|---:|")
    for name, fuse in chosen:
        if args.only and args.only not in name:
            continue
        m, a, b = (score(inputs, fuse, qrels, s) for s in (set(queries), half_a, half_b))
        print(
            f"| {name} | {m['ndcg@10']:.4f} | {m['map@100']:.4f} | {m['recall@100']:.4f} | "
            f"{a['ndcg@10']:.3f} / {b['ndcg@10']:.3f} | {a['recall@100']:.3f} / {b['recall@100']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
