"""Keyword facets counted by their values' ids, and the ids named again.

Counting a keyword facet by its text values makes tantivy look every counted value up in each
segment's term dictionary, a cost that grows with the number of distinct values in the index,
not with the matches: at 200,000 seed-shaped articles the entities of `quantum`'s 2,744 matches
took 10.5 ms against 1.1 ms for their topics. Each article also carries its facet values as
64-bit ids (index/document.py `value_id`, a hash; index/schema.py `value_ids_field`), and
counting ids needs no dictionary (20,841 seed-shaped articles, 12,417 entities: 0.18 against
1.55 ms for 282 matches, 2.07 against 4.20 ms for 6,686). The ids a response shows are named
again from an article holding them, and kept by name for the life of the process.

Among values tied at the last place of a top-n list, tantivy keeps the smallest ids (the order it
gives equal counts): naming every tied value to keep the first by name would cost more than the
count. The values shown are ordered by count, then by name.
"""

from __future__ import annotations

from typing import Any

import tantivy

from search_service.cache import LRUCache
from search_service.index.document import value_id
from search_service.index.schema import value_ids_field

# Enough for every value of a segment: an exact count must see them all (ids cost 8 bytes each).
ALL_IDS = 10_000_000
# Values one id aggregation returns at most: tantivy refuses a request whose results hold more
# than 65,000 buckets in all (topics and entities are asked together). /search asks for 100 at most.
MOST_VALUES = 30_000
# Names kept per process: every entity of a 1M-article archive (178,799) with room to spare.
NAMES_KEPT = 400_000


class FacetIds:
    """Terms aggregations over a facet's id column, and their buckets named."""

    def __init__(self, schema: tantivy.Schema, kept: int = NAMES_KEPT) -> None:
        self.schema = schema
        self._names = LRUCache(kept)

    @staticmethod
    def agg(field: str, size: int, segment_size: int = ALL_IDS) -> dict[str, Any]:
        """The `size` (at most MOST_VALUES) most frequent ids of `field`; exact with the default `segment_size`."""
        size = min(size, MOST_VALUES)
        return {"terms": {"field": value_ids_field(field), "size": size, "segment_size": segment_size}}

    def named(self, searcher: tantivy.Searcher, field: str, result: dict[str, Any]) -> dict[str, Any]:
        """An id aggregation's result with every bucket keyed by its value, by count then value."""
        buckets = []
        for bucket in result.get("buckets", []):
            name = self.name(searcher, field, int(bucket["key"]))
            if name is not None:
                buckets.append({"key": name, "doc_count": bucket["doc_count"]})
        buckets.sort(key=lambda b: (-b["doc_count"], b["key"]))
        return {**result, "buckets": buckets}

    def name(self, searcher: tantivy.Searcher, field: str, ident: int) -> str | None:
        """The value of `field` whose id is `ident`, read from an article holding it (None: none does)."""
        key = (field, ident)
        found = self._names.get(key)
        if found is not None:
            return found
        query = tantivy.Query.term_query(self.schema, value_ids_field(field), ident)
        for _, address in searcher.search(query, 1).hits:
            for value in searcher.doc(address).get_all(field):
                if value_id(value) == ident:
                    self._names.put(key, value)
                    return value
        return None
