"""All-word matches first: a ranking in two tiers, the articles holding every word, then the others.

The any-word fallback (a query whose words are all held by too few articles) ranks by the words
that do match, where BM25 alone can put an article missing a word above one holding them all.
Here the articles holding every word come first, in their own ranking, and the others follow in
theirs, on every page: a page is cut from the concatenation of the two rankings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import tantivy

Hit = tuple[float, Any]


class Page(Protocol):
    hits: list[Hit]
    count: int


# A ranking of one query: (query, offset, limit > 0) -> its hits offset..offset+limit and match count.
Rank = Callable[[tantivy.Query, int, int], Page]


@dataclass(frozen=True)
class TieredPage:
    """A page of the concatenated tiers, shaped like tantivy's SearchResult (hits, count)."""

    hits: list[Hit]
    count: int  # both tiers
    first: int  # the first tier's matches


def holding_all(whole: tantivy.Query, first: tantivy.Query) -> tantivy.Query:
    """The matches of `whole` that the first tier holds, scored by `whole` alone."""
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Must, whole), (tantivy.Occur.Must, tantivy.Query.const_score_query(first, 0.0))]
    )


def rest_of(whole: tantivy.Query, first: tantivy.Query) -> tantivy.Query:
    """The matches of `whole` that the first tier does not hold."""
    return tantivy.Query.boolean_query([(tantivy.Occur.Must, whole), (tantivy.Occur.MustNot, first)])


Count = Callable[[tantivy.Query], int]


def tiered_page(
    rank: Rank, count: Count, first: tantivy.Query, rest: tantivy.Query, offset: int, limit: int
) -> TieredPage:
    """Hits offset..offset+limit of `first`'s ranking followed by `rest`'s (`rest` holding none of
    `first`'s matches, see rest_of). `count` counts a query's matches without ranking them."""
    top = rank(first, offset, limit)
    hits = list(top.hits)
    if len(hits) < limit:
        more = rank(rest, max(0, offset - top.count), limit - len(hits))
        return TieredPage(hits + list(more.hits), top.count + more.count, top.count)
    return TieredPage(hits, top.count + count(rest), top.count)
