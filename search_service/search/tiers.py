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


def tiered_page(
    rank: Rank,
    searcher: tantivy.Searcher,
    filtered: Callable[[tantivy.Query], tantivy.Query],
    whole: tantivy.Query,
    first: tantivy.Query,
    offset: int,
    limit: int,
) -> TieredPage:
    """Hits offset..offset+limit of the matches of `whole` that `first` also matches, in `rank`'s
    order, followed by the others in theirs. `filtered` adds the request's filters to a query."""
    top = rank(filtered(holding_all(whole, first)), offset, limit)
    rest = filtered(rest_of(whole, first))
    hits = list(top.hits)
    if len(hits) < limit:
        more = rank(rest, max(0, offset - top.count), limit - len(hits))
        return TieredPage(hits + list(more.hits), top.count + more.count, top.count)
    return TieredPage(hits, top.count + searcher.search(rest, 1).count, top.count)
