"""Passage vectors of SciFact for the max-sim experiment (docs/relevance.md, "passage max-sim").

Each article is cut into windows of `--window` tokens (MiniLM was trained on 128): the title's
tokens, then the next stretch of the abstract, so every window says what the article is about and
together they cover the whole abstract (the service's one vector per article reads only its first
256 tokens, and 78% of SciFact's abstracts are longer). Vectors are the service's Embedder's
(mean pooling, unit length), written with their article's slug to `--out` (.npz); the time taken
is printed (the import cost of the variant).

  .venv/bin/python scripts/experiments/passage_vectors.py --out /tmp/passages.npz
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from search_service.semantic.embedder import Embedder

SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "scifact"


def windows(tokenizer, title: str, text: str, window: int, title_tokens: int) -> list[list[int]]:
    head = tokenizer.encode(title, add_special_tokens=False).ids[:title_tokens]
    body = tokenizer.encode(text, add_special_tokens=False).ids
    room = window - 2 - len(head)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    return [[cls, *head, *body[i : i + room], sep] for i in range(0, max(len(body), 1), room)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--title-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    embedder = Embedder(threads=1)
    tokenizer = embedder._tokenizer
    slugs, ids = [], []
    for line in (SCIFACT / "articles.jsonl").open(encoding="utf-8"):
        record = json.loads(line)
        body = record["body_md"]
        if body.startswith("# "):  # the title heading; the title leads every window already
            body = body.split("\n", 1)[1] if "\n" in body else ""
        for window in windows(tokenizer, record["title"], " ".join(body.split()), args.window, args.title_tokens):
            slugs.append(record["slug"])
            ids.append(window)
    print(f"{len(set(slugs))} articles, {len(ids)} windows, {sum(map(len, ids))} tokens", flush=True)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    vectors = np.empty((len(ids), embedder.dimension), dtype=np.float32)
    started = time.perf_counter()
    for n, start in enumerate(range(0, len(order), args.batch_size)):
        chunk = order[start : start + args.batch_size]
        width = max(len(ids[i]) for i in chunk)
        batch = np.zeros((len(chunk), width), dtype=np.int64)
        mask = np.zeros_like(batch)
        for j, i in enumerate(chunk):
            batch[j, : len(ids[i])] = ids[i]
            mask[j, : len(ids[i])] = 1
        feeds = {"input_ids": batch, "attention_mask": mask, "token_type_ids": np.zeros_like(batch)}
        hidden = embedder._session.run(None, {k: v for k, v in feeds.items() if k in embedder._inputs})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
        vectors[chunk] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        if n % 50 == 0:
            print(f"{start + len(chunk)} windows, {time.perf_counter() - started:.0f} s", flush=True)
    seconds = time.perf_counter() - started
    print(f"embedded {len(ids)} windows in {seconds:.0f} s ({len(ids) / seconds:.1f} windows/s)")
    np.savez(args.out, slugs=np.array(slugs), vectors=vectors, seconds=seconds)


if __name__ == "__main__":
    main()
