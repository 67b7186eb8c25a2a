"""Paragraphs repeated across a share of the live articles: where to look for the next content rule.

Paragraphs are those of the stored body text, which is the text as indexed (after today's content
rules), split at blank lines and compared with their spacing collapsed; an article counts once per
paragraph however often it repeats it. Memory is bounded by a number of counters, never by the
paragraphs of the index, so it runs on a 1M-article index:

1. Every live article's distinct paragraphs, as 64-bit hashes, go through the Misra-Gries
   "frequent items" count with at most 2 * CAPACITY counters: when they are full, every count is
   lowered by the CAPACITY-th largest one and those left at zero or below go. A paragraph in more
   than m / CAPACITY articles (m: paragraph occurrences read) is certain to survive this pass, and
   that bound is checked against the threshold asked for.
2. The survivors (at most 2 * CAPACITY) are counted exactly in a second pass, which keeps the text
   of each once; those at or above the threshold are the answer.

Articles are read in slug ranges of at most CHUNK (a prefix of the slug, narrowed until its range
is small enough), so no pass holds the addresses of the whole index either.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import tantivy

from search_service.errors import InputError

CAPACITY = 20_000
CHUNK = 20_000
# Slugs are lowercase letters, digits and hyphens; anything else in a key falls in one more range.
KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-"


@dataclass(frozen=True)
class Repeated:
    text: str
    count: int
    share: float


@dataclass(frozen=True)
class BoilerplateReport:
    articles: int
    min_share: float
    paragraphs: list[Repeated]
    occurrences: int  # paragraph occurrences read (distinct per article)

    def as_dict(self) -> dict[str, Any]:
        return {
            "articles": self.articles,
            "min_share": self.min_share,
            "paragraphs": [{"count": p.count, "share": round(p.share, 4), "text": p.text} for p in self.paragraphs],
        }


class ShareTooSmall(InputError):
    """--min-share asks for paragraphs rarer than the counters can find for certain."""

    code = "share_too_small"


def repeated_paragraphs(
    searcher: tantivy.Searcher,
    schema: tantivy.Schema,
    key_field: str,
    body_field: str,
    min_share: float = 0.05,
    capacity: int = CAPACITY,
    chunk: int = CHUNK,
) -> BoilerplateReport:
    """Paragraphs found in at least `min_share` of the live articles, most common first."""
    articles = searcher.num_docs
    if not 0 < min_share <= 1:
        raise InputError(f"--min-share must be a share of the articles, above 0 and at most 1 (got {min_share})")
    threshold = max(1, math.ceil(min_share * articles))  # "at least that share"
    counts: dict[int, int] = {}
    occurrences = 0
    for doc in live_documents(searcher, schema, key_field, chunk):
        for key in {hash(p) for p in paragraphs(doc.get_first(body_field) or "")}:
            occurrences += 1
            counts[key] = counts.get(key, 0) + 1
        if len(counts) >= 2 * capacity:
            counts = _lowered(counts, capacity)
    if occurrences / capacity >= threshold:
        raise ShareTooSmall(
            f"a share of {min_share} is {threshold} articles, too few to be found for certain among "
            f"{occurrences:,} paragraphs with {capacity:,} counters; ask for at least "
            f"{(occurrences / capacity + 1) / max(articles, 1):.4f}"
        )
    exact: dict[int, list[Any]] = {key: [0, ""] for key in counts}
    for doc in live_documents(searcher, schema, key_field, chunk):
        for text in set(paragraphs(doc.get_first(body_field) or "")):
            entry = exact.get(hash(text))
            if entry is not None:
                entry[0] += 1
                entry[1] = entry[1] or text
    found = [Repeated(text, count, count / articles) for count, text in exact.values() if count >= threshold]
    found.sort(key=lambda r: (-r.count, r.text))
    return BoilerplateReport(articles, min_share, found, occurrences)


def paragraphs(text: str) -> Iterator[str]:
    for paragraph in text.split("\n\n"):
        normalized = " ".join(paragraph.split())
        if normalized:
            yield normalized


def _lowered(counts: dict[int, int], capacity: int) -> dict[int, int]:
    """Misra-Gries, in batches: all counts minus the capacity-th largest; the rest are dropped."""
    cut = sorted(counts.values(), reverse=True)[capacity - 1]
    return {key: count - cut for key, count in counts.items() if count > cut}


def live_documents(
    searcher: tantivy.Searcher, schema: tantivy.Schema, key_field: str, chunk: int = CHUNK
) -> Iterator[tantivy.Document]:
    """Every live (not deleted) document once, read in key ranges of at most `chunk` documents."""
    yield from _range(searcher, schema, key_field, "", chunk)


def _range(
    searcher: tantivy.Searcher, schema: tantivy.Schema, key_field: str, prefix: str, chunk: int
) -> Iterator[tantivy.Document]:
    if prefix:
        query = tantivy.Query.regex_query(schema, key_field, re.escape(prefix) + ".*")
    else:
        query = tantivy.Query.all_query()
    count = searcher.search(query, 1, count=True).count
    if count <= chunk:
        yield from _documents(searcher, query, count)
        return
    if prefix:  # the key that is the prefix itself, which no narrower range holds
        yield from _documents(searcher, tantivy.Query.term_query(schema, key_field, prefix), 1)
    for letter in KEY_ALPHABET:
        yield from _range(searcher, schema, key_field, prefix + letter, chunk)
    others = tantivy.Query.regex_query(schema, key_field, re.escape(prefix) + f"[^{re.escape(KEY_ALPHABET)}].*")
    yield from _documents(searcher, others, searcher.search(others, 1, count=True).count)


def _documents(searcher: tantivy.Searcher, query: tantivy.Query, count: int) -> Iterator[tantivy.Document]:
    if count:
        for _, address in searcher.search(query, count, count=False).hits:
            yield searcher.doc(address)
