"""Warming a generation before it serves: touch what the first queries would otherwise load.

Tantivy opens a segment's structures lazily: the fast-field columns that facets, dates and the
sample key are counted from, the term dictionaries and posting lists, the field norms that BM25
reads, the document store's blocks. Each is a memory map whose pages the first query that reads
them faults in, which on a large archive made the first queries after a start or a switch several
times slower than the next ones. `warm` does that work once, before the generation is served
(`IndexReader` calls it between opening a generation and switching to it): an aggregation over
every article of every counted column, a ranked search of the newest articles' title words in
every searched field (dictionary, postings, norms), and their stored documents.
"""

from __future__ import annotations

import re
import time
from typing import Any

import tantivy

from search_service.config import IndexConfig
from search_service.index.schema import SAMPLE_FIELD, value_ids_field

# How many of the newest articles' titles become warm-up searches, and words taken from each.
WARM_ARTICLES = 20
WARM_WORDS = 3
_WORD = re.compile(r"[^\W\d_]{3,}")


def warm(index: tantivy.Index, config: IndexConfig) -> dict[str, Any]:
    """Touch the columns, dictionaries, postings, norms and stored documents queries read; the
    time each step took, in ms (the reader logs nothing, callers may)."""
    searcher = index.searcher()
    took: dict[str, Any] = {"documents": searcher.num_docs}
    if not searcher.num_docs:
        return took
    started = time.perf_counter()
    aggs: dict[str, Any] = {SAMPLE_FIELD: {"value_count": {"field": SAMPLE_FIELD}}}
    for name in config.facets:
        aggs[name] = {"terms": {"field": name, "size": 1, "segment_size": 1}}
        aggs[f"{name}:ids"] = {"terms": {"field": value_ids_field(name), "size": 1, "segment_size": 1}}
    histogram = config.histogram_field
    if histogram is not None:
        aggs["_first"] = {"min": {"field": histogram.seconds_field}}
    searcher.aggregate(tantivy.Query.all_query(), aggs)
    took["columns_ms"] = _ms(started)

    started = time.perf_counter()
    newest = (
        searcher.search(tantivy.Query.all_query(), WARM_ARTICLES, order_by_field=histogram.name).hits
        if histogram is not None
        else searcher.search(tantivy.Query.all_query(), WARM_ARTICLES).hits
    )
    title = next((f.name for f in config.text_fields if f.source == "title" and f.stored), None)
    words: list[str] = []
    for _, address in newest:
        doc = searcher.doc(address)
        text = (doc.get_first(title) if title else None) or ""
        words.extend(_WORD.findall(text.lower())[:WARM_WORDS])
    took["documents_ms"] = _ms(started)

    started = time.perf_counter()
    fields = list(config.search_boosts())
    for word in dict.fromkeys(words):
        query = index.parse_query(word, fields)
        searcher.search(query, 10, count=True)
    took["postings_ms"] = _ms(started)
    took["words"] = len(set(words))
    return took


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
