"""Freshness ranking: how much an article's age counts beside its relevance ([ranking.freshness]).

The decay functions are Elasticsearch's (function_score `gauss`, `exp`, `linear`) over the age of
an article, `now - published_at`, in days, with `d = max(0, age - offset_days)`:

    gauss   decay ** ((d / scale_days) ** 2)
    exp     decay ** (d / scale_days)
    linear  max(0, 1 - (1 - decay) * d / scale_days)

All three are 1 up to `offset_days` and equal `decay` at `offset_days + scale_days`. One of the best
`window` BM25 hits of a query scores

    (1 - weight) * bm25 / top_bm25 + weight * freshness

where `top_bm25` is the query's best BM25 score, so relevance and freshness both lie in [0, 1]
and `weight` is the share of the score that freshness controls. The window is re-sorted by that
score (ties keep BM25 order); hits past it keep BM25 order, which keeps paging exact (see `page`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import tantivy

from search_service.config import FreshnessConfig, IndexConfig

DAY_S = 86_400.0
# "now" advances in steps of this many seconds, so that a cached response stays exact for one step
# (the step is part of the request's cache key): at a scale of days, a minute moves no score visibly.
NOW_STEP_S = 60

Hit = tuple[float, tantivy.DocAddress]


def decay_value(config: FreshnessConfig, age_days: float | None) -> float:
    """Freshness in [0, 1] of an article `age_days` old; an article without a date is not fresh.

    Unlike Elasticsearch's distance, the age of an article dated in the future counts as 0 (it is
    as fresh as can be), not as a distance that decays.
    """
    return decay_values(config, [age_days])[0]


def decay_values(config: FreshnessConfig, ages_days: list[float | None]) -> list[float]:
    """decay_value for many ages: the constants are worked out once (a window is hundreds of hits)."""
    if config.function == "none":
        return [1.0] * len(ages_days)
    offset = config.offset_days
    pasts = [max(age - offset, 0.0) if age is not None else None for age in ages_days]
    if config.function == "linear":
        slope = (1.0 - config.decay) / config.scale_days
        return [max(0.0, 1.0 - slope * past) if past is not None else 0.0 for past in pasts]
    # decay ** (past / scale) and decay ** ((past / scale) ** 2), as exponentials.
    rate = math.log(config.decay) / config.scale_days
    if config.function == "exp":
        return [math.exp(rate * past) if past is not None else 0.0 for past in pasts]
    rate /= config.scale_days
    return [math.exp(rate * past * past) if past is not None else 0.0 for past in pasts]


def current_now(clock: float | None = None) -> datetime:
    """The clock rounded up to the next NOW_STEP_S: every article already published has an age above 0."""
    seconds = time.time() if clock is None else clock
    return datetime.fromtimestamp(math.ceil(seconds / NOW_STEP_S) * NOW_STEP_S, UTC)


@dataclass(frozen=True)
class FreshnessRanker:
    """Re-ranks a query's best `window` BM25 hits by relevance and freshness; one page at a time."""

    config: FreshnessConfig
    seconds_field: str  # the published_at date's integer companion: one fast read per hit

    @classmethod
    def from_config(cls, config: IndexConfig) -> FreshnessRanker | None:
        """None when freshness is off in the config (function "none" or weight 0)."""
        if not config.ranking.freshness.enabled:
            return None
        published = next(f for f in config.fields.values() if f.kind == "date" and f.source == "published_at")
        return cls(config.ranking.freshness, published.seconds_field)

    def page(
        self, searcher: tantivy.Searcher, query: tantivy.Query, offset: int, limit: int, now: datetime
    ) -> tuple[list[Hit], int]:
        """Hits offset..offset+limit of the freshness ranking, and the number of matches.

        The window is BM25's top `window` set, so the hits after it are exactly BM25 ranks
        window+1 on, which tantivy returns with `offset=window` in the same order as a longer
        top-k would (ties by segment and document): a page inside the window comes from the
        re-ranked window, a page past it from BM25 with an offset, and a page across the edge is
        stitched from both, with no hit twice and none left out.
        """
        window = self.config.window
        moment = now.timestamp()
        if offset >= window:
            tail = searcher.search(query, limit, count=True, offset=offset)
            best = searcher.search(query, 1, count=False).hits
            return self._scored(searcher, tail.hits, best[0][0] if best else 0.0, moment), tail.count
        best = searcher.search(query, window, count=True)
        top = best.hits[0][0] if best.hits else 0.0
        ranked = self._scored(searcher, best.hits, top, moment)
        # sort() is stable: equal scores keep BM25's (tantivy's) order.
        ranked.sort(key=lambda hit: -hit[0])
        hits = ranked[offset : offset + limit]
        missing = offset + limit - window
        if missing > 0 and best.count > window:
            tail = searcher.search(query, missing, count=False, offset=window)
            hits.extend(self._scored(searcher, tail.hits, top, moment))
        return hits, best.count

    def _scored(self, searcher: tantivy.Searcher, hits: list[Hit], top: float, now: float) -> list[Hit]:
        """Each hit with its combined score, in the given order."""
        if not hits:
            return []
        published = searcher.fast_field_values(self.seconds_field, [address for _, address in hits])
        ages = [(now - seconds) / DAY_S if seconds is not None else None for seconds in published]
        weight = self.config.weight
        # All scores 0 (nothing tells hits apart by relevance): relevance counts as equal, 1 each.
        per_point, floor = ((1 - weight) / top, 0.0) if top > 0 else (0.0, 1 - weight)
        return [
            (floor + per_point * score + weight * fresh, address)
            for (score, address), fresh in zip(hits, decay_values(self.config, ages), strict=True)
        ]
