"""Facet counts whose cost is bounded: exact up to [counting] exact_up_to matches, estimated past it.

Counting a facet visits every article it counts over, so on a broad query of a large archive
the counts cost far more than the ranking (tantivy skips non-competitive documents for a top-k,
never for an aggregation). Past `exact_up_to` articles, a facet is counted over a uniform sample
of them instead: the articles whose sample key (`index/schema.py` SAMPLE_FIELD, a hash of the
slug into SAMPLE_SLOTS slots) is below m, a power of two chosen so that about `sample_size` of
the matches fall in it. The sample is one more filter the engine intersects (one posting list,
the articles' sample level: SAMPLE_LEVELS_FIELD), so the cost of counting stops growing with the
number of matches. Each estimate is the sampled count scaled to the whole and carries a 95%
interval (`Estimator`).

Which set a facet counts over: disjunctive facets leave out their own filter, so a facet whose
filter is set counts over more articles than the search's total; its size is then measured on a
small probe sample first (`FacetCounter.size`). In a large index the counting runs beside the
ranked search (engine.py `_count_ahead`), before the total is known, so the search's own set is
probed too, and the counts are scaled once the total is known (`count`, then `shape`). Browse
pages (filters, no words) stay exact: their counts are kept per index version, which never
changes under them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import tantivy

from search_service.cache import LRUCache
from search_service.config import CountingConfig, IndexConfig
from search_service.index.schema import SAMPLE_FIELD, SAMPLE_LEVELS, SAMPLE_LEVELS_FIELD, SAMPLE_SLOTS
from search_service.search.facet_ids import FacetIds
from search_service.search.facets import (
    choose_interval,
    date_buckets,
    day_histogram_agg,
    month_counts,
    month_ranges_agg,
    terms_agg,
    top_values,
)

if TYPE_CHECKING:
    from search_service.search.engine import Plan, SearchRequest

# 95% two-sided normal quantile: every interval a response carries holds the true count 19 times in 20.
Z = 1.96
SAMPLED = "_sampled"  # the aggregation that counts the sample's matches (one sample key per article)
NESTED = "_nested"  # the filter aggregation of a group's smaller sample
DATE_FILTER = "published_at"
# Intervals counted from month buckets rather than day ones (see facets.month_ranges_agg), for
# sets of at least this many articles: below it the day buckets are few and cheaper than the
# ranges (0.44 vs 0.98 ms at the seed shape's median, 10.3 vs 2.0 ms for 9,000 matches over 8 years).
MONTHLY_INTERVALS = ("month", "year")
MONTH_RANGES_MIN_MATCHES = 1_000
# A small index: at most this many times exact_up_to articles. Its counts are cheap, so they run
# after the ranked search in the same thread (handing them to another cost 10% of /search's
# throughput at 20,841 articles: 636 against 716 req/s on Reuters wires, 297 against 325 on the
# seed shape), and a set whose size is not known is counted exactly, without probing its size.
SMALL_INDEX = 4
# Browse pages' exact counts, kept per index version whatever the result cache's size.
BROWSE_CACHE_SIZE = 256


@dataclass(frozen=True)
class Estimator:
    """Turns a count in a sample into an estimate of the count in the whole set, with a 95% interval.

    `fraction` is the share of the set that was sampled: the sample's matches over the set's size
    when that is known exactly (a ratio estimate, consistent with the exact total), else the share
    of sample slots taken. A value found c times is taken to appear in the sample with that
    probability (binomial); the interval is the score (Wilson) interval, which stays honest for
    small c: it solves |c - n f| <= Z sqrt(n f (1 - f)) for the true count n.
    """

    fraction: float
    size: int | None = None  # the set's exact size, when known: no count exceeds it

    def estimate(self, sampled: int) -> tuple[int, list[int]]:
        f = self.fraction
        if f >= 1.0:
            return sampled, [sampled, sampled]
        spread = Z * math.sqrt((1 - f) * (sampled + Z * Z * (1 - f) / 4))
        middle = sampled + Z * Z * (1 - f) / 2
        low = max(sampled, math.floor((middle - spread) / f))
        high = math.ceil((middle + spread) / f)
        if self.size is not None:
            high = min(high, self.size)
        count = min(max(round(sampled / f), low), high)
        return count, [low, high]


def scale(slots: int, size: int | None, sampled: int) -> Estimator | None:
    """How counts over the sample of `slots` slots scale, given its matches (None: they are exact).
    `size`: the exact size of the set sampled, when known (a ratio estimate, consistent with it)."""
    if slots >= SAMPLE_SLOTS:
        return None
    if size and sampled:
        return Estimator(sampled / size, size)
    return Estimator(slots / SAMPLE_SLOTS, size)


@dataclass(frozen=True)
class Group:
    """One aggregation call: the facets it counts over one set of articles (or a sample of it), and
    those counted over a smaller sample within it (`nested`, a filter aggregation), so that one
    evaluation of the query serves both: each evaluation of a broad query over a large archive
    costs more than the counting (13-16 ms for two or three words at 1M articles)."""

    query: tantivy.Query  # restricted to the sample when `slots` < SAMPLE_SLOTS
    names: tuple[str, ...]
    slots: int = SAMPLE_SLOTS  # articles with a sample key below this are counted (SAMPLE_SLOTS: all)
    main: bool = True  # the search's own set (no filter left out): its size is the search's total
    visited: int = 0  # about how many articles the aggregation counts
    nested: tuple[str, ...] = ()  # counted over the sample of `nested_slots` slots only
    nested_slots: int = SAMPLE_SLOTS

    @property
    def exact(self) -> bool:
        return self.slots >= SAMPLE_SLOTS


@dataclass(frozen=True)
class Sample:
    """How one facet was counted: over the sample of `slots` slots (SAMPLE_SLOTS: every article),
    which held `sampled` matches; `main`: over the search's own set, whose size is its total."""

    slots: int
    sampled: int
    main: bool
    limit: int  # the set size up to which this facet must be counted exactly


@dataclass(frozen=True)
class Counted:
    """What a search's counting passes found, before their counts are scaled to the whole."""

    results: dict[str, Any]
    samples: dict[str, Sample]

    def holds_for(self, total: int | None) -> bool:
        """Whether these counts suit a search of `total` matches: counted without the total, the
        set's size was estimated, and a set of at most a facet's exact limit must be counted exactly."""
        return total is None or not any(
            s.main and s.slots < SAMPLE_SLOTS and total <= s.limit for s in self.samples.values()
        )


@dataclass(frozen=True)
class SetSize:
    """How many articles a facet counts over: known exactly, or estimated with 95% bounds."""

    low: float
    high: float
    estimate: float
    known: bool


def sampled_segment_size(facet_size: int) -> int:
    """Values each segment returns for a sampled terms count (exact counts ask for every value).

    A value of the overall top `facet_size` is far inside every segment's top 10 x facet_size + 100,
    and returning every value of a sample cost as much as counting it when values were counted by
    name (10 vs 20 ms on 20,000 seed-shaped articles' entities)."""
    return 10 * facet_size + 100


def sample_filter(schema: tantivy.Schema, slots: int) -> tantivy.Query:
    """Articles whose sample key is below `slots` (a power of two): one sample level's posting
    list (index/schema.py SAMPLE_LEVELS_FIELD), about slots / SAMPLE_SLOTS of the index."""
    level = SAMPLE_LEVELS - (slots.bit_length() - 1)
    if slots != 1 << (slots.bit_length() - 1) or not 1 <= level <= SAMPLE_LEVELS:
        raise ValueError(f"a sample is a power of two of slots below {SAMPLE_SLOTS}, not {slots}")
    return tantivy.Query.term_query(schema, SAMPLE_LEVELS_FIELD, level)


def sample_filter_string(slots: int) -> str:
    """sample_filter as a query string, for a filter aggregation nested in another."""
    return f"{SAMPLE_LEVELS_FIELD}:{SAMPLE_LEVELS - (slots.bit_length() - 1)}"


def slots_for(size: float, sample_size: int) -> int:
    """Sample slots, a power of two (one sample level), that hold about `sample_size` of a set of
    `size` articles (SAMPLE_SLOTS: all): the level nearest the share asked for, so that a sample
    holds 0.71-1.41 times `sample_size` (every article once it would hold more than 71% of them)."""
    if size <= 0:
        return SAMPLE_SLOTS
    wanted = sample_size / size * SAMPLE_SLOTS
    if wanted * math.sqrt(2) >= SAMPLE_SLOTS:
        return SAMPLE_SLOTS
    return 1 << max(0, round(math.log2(wanted)))


def within(query: tantivy.Query, schema: tantivy.Schema, slots: int) -> tantivy.Query:
    """`query` restricted to the sample of `slots` slots (unchanged for all of them)."""
    if slots >= SAMPLE_SLOTS:
        return query
    return tantivy.Query.boolean_query(
        [
            (tantivy.Occur.Must, query),
            (tantivy.Occur.Must, tantivy.Query.const_score_query(sample_filter(schema, slots), 0.0)),
        ]
    )


class FacetCounter:
    """Counts a search's facets and date histogram, exactly or from a bounded sample ([counting])."""

    def __init__(self, config: IndexConfig, schema: tantivy.Schema, version: Callable[[], Any]) -> None:
        self.counting: CountingConfig = config.counting
        self.schema = schema
        self.version = version
        histogram = config.histogram_field
        self.date_field = histogram.name if histogram else None
        self.seconds_field = histogram.seconds_field if histogram else None
        self._date_spans = LRUCache(2)
        self.ids = FacetIds(schema)
        self.browse = LRUCache(BROWSE_CACHE_SIZE)
        self._disjunctive = ThreadPoolExecutor(thread_name_prefix="facets")

    def facets(
        self, searcher: tantivy.Searcher, plan: Plan, request: SearchRequest, total: int | None, exact: bool
    ) -> tuple[dict[str, Any], str | None, bool]:
        """The request's facets (disjunctive: each counted under every filter except its own), the date
        histogram's interval (chosen here for date_interval=auto), and whether every count is exact.

        `total`: the exact number of articles the fully filtered query matches, when known. `exact`:
        count every article whatever their number (exhaustive=true; browse pages)."""
        return self.shape(searcher, plan, request, self.count(searcher, plan, request, total, exact), total)

    def count(
        self, searcher: tantivy.Searcher, plan: Plan, request: SearchRequest, total: int | None, exact: bool
    ) -> Counted:
        """The counting passes of `facets`. With `total` unknown (counting beside the ranked search),
        the size of the search's set is estimated like that of a disjunctive facet's."""
        owners = self.owners(plan, request)
        # A facet whose own filter is set counts over another set: its own evaluation of the query,
        # run beside the others in a large index (tantivy releases the GIL). This pool's tasks never
        # wait on it.
        work = [functools.partial(self.count_group, searcher, plan, request, without, names, total, exact)
                for without, names in owners.items()]  # fmt: skip
        if self.small(searcher):
            return self.merged([task() for task in work])
        pending = [self._disjunctive.submit(task) for task in work[1:]]
        parts = [work[0]()] if work else []
        parts.extend(future.result() for future in pending)
        return self.merged(parts)

    def small(self, searcher: tantivy.Searcher) -> bool:
        """Whether the index is small (SMALL_INDEX): its counts run in the search's own thread."""
        return searcher.num_docs <= SMALL_INDEX * self.counting.exact_up_to

    @staticmethod
    def merged(parts: list[tuple[dict[str, Any], dict[str, Sample]]]) -> Counted:
        """The groups' counts as one."""
        results: dict[str, Any] = {}
        samples: dict[str, Sample] = {}
        for found, sampled in parts:
            results.update(found)
            samples.update(sampled)
        return Counted(results, samples)

    def owners(self, plan: Plan, request: SearchRequest) -> dict[str | None, tuple[str, ...]]:
        """The facets asked for by the filter they leave out (None: none, the search's own set)."""
        owners: dict[str | None, tuple[str, ...]] = {}
        for name in request.facets:
            own = DATE_FILTER if name == self.date_field else name
            key = own if own in plan.filters else None
            owners[key] = (*owners.get(key, ()), name)
        return owners

    def count_group(
        self,
        searcher: tantivy.Searcher,
        plan: Plan,
        request: SearchRequest,
        without: str | None,
        names: tuple[str, ...],
        total: int | None,
        exact: bool,
    ) -> tuple[dict[str, Any], dict[str, Sample]]:
        """The counts of the facets `names` that leave out the filter `without`, and how each was sampled."""
        group = self.group(searcher, plan.query(without=without), names, without is None, total, exact)
        monthly = request.date_interval in MONTHLY_INTERVALS
        span = self.date_span(searcher) if monthly and group.visited >= MONTH_RANGES_MIN_MATCHES else None
        aggs = {name: self.agg(name, request.facet_size, span, not group.exact) for name in group.names}
        if not group.exact:
            aggs[SAMPLED] = {"value_count": {"field": SAMPLE_FIELD}}
        if group.nested:
            inner = {name: self.agg(name, request.facet_size, span, True) for name in group.nested}
            aggs[NESTED] = {"filter": sample_filter_string(group.nested_slots), "aggs": inner}
        found = searcher.aggregate(group.query, aggs)
        nested = found.pop(NESTED, None) or {}
        found.update((name, nested.get(name, {})) for name in group.nested)
        for name in group.names + group.nested:
            if name != self.date_field and name in found:
                found[name] = self.ids.named(searcher, name, found[name])
        if span is not None and self.date_field in found:
            days = month_counts(found[self.date_field])
            if days is None:  # articles outside the span: it is older than this searcher
                query = group.query
                if self.date_field in group.nested:
                    query = within(query, self.schema, group.nested_slots)
                day_aggs = {self.date_field: day_histogram_agg(self.date_field)}
                days = searcher.aggregate(query, day_aggs).get(self.date_field, {})
            found[self.date_field] = days
        samples: dict[str, Sample] = {}
        sampled = int((found.pop(SAMPLED, None) or {}).get("value") or 0)
        for name in group.names:
            samples[name] = Sample(group.slots, sampled, group.main, self.exact_limit(name))
        sampled = int(nested.get("doc_count") or 0)
        for name in group.nested:
            samples[name] = Sample(group.nested_slots, sampled, group.main, self.exact_limit(name))
        return found, samples

    def shape(
        self, searcher: tantivy.Searcher, plan: Plan, request: SearchRequest, counted: Counted, total: int | None
    ) -> tuple[dict[str, Any], str | None, bool]:
        """`facets`' answer from its counts: estimates scaled to the whole (by the search's exact
        total where it is their set's size), selected values listed, the date buckets rolled up."""
        results = counted.results
        scales = {name: scale(s.slots, total if s.main else None, s.sampled) for name, s in counted.samples.items()}
        out: dict[str, Any] = {}
        interval = None
        for name in request.facets:
            estimator = scales.get(name)
            if name == self.date_field:
                days = results.get(name, {})
                interval = choose_interval(days) if request.date_interval == "auto" else request.date_interval
                out[name] = scaled(date_buckets(days, interval), estimator)
                continue
            values = scaled(top_values(results.get(name, {}), request.facet_size), estimator)
            shown = {v["value"] for v in values}
            for value in request.filters.get(name, ()):
                if value not in shown:  # a selected value is always listed, with its own exact count
                    shown.add(value)
                    values.append({"value": value, "count": self.count_with(searcher, plan, name, value)})
            out[name] = values
        return out, interval, all(estimator is None for estimator in scales.values())

    def group(
        self,
        searcher: tantivy.Searcher,
        query: tantivy.Query,
        names: tuple[str, ...],
        main: bool,
        total: int | None,
        exact: bool,
    ) -> Group:
        """The aggregation call that counts `names` over `query`'s articles. Dates are cheap per
        article and have many small buckets, so they are counted over a larger sample ([counting]
        date_sample_size) than the terms facets, which are then nested in the same call."""
        size = self.size(searcher, query, total if main else None, exact)
        parts = []
        for part in ([n for n in names if n != self.date_field], [n for n in names if n == self.date_field]):
            if part:
                limit = self.exact_limit(part[0])
                wanted = self.counting.date_sample_size if part[0] == self.date_field else self.counting.sample_size
                slots = SAMPLE_SLOTS if exact or size.low <= limit else slots_for(size.estimate, wanted)
                parts.append((tuple(part), slots, wanted))
        parts.sort(key=lambda p: -p[1])  # the larger sample is the call's set, the smaller nested
        counted, slots, wanted = parts[0]
        nested, nested_slots = (), SAMPLE_SLOTS
        if len(parts) > 1 and parts[1][1] == slots:
            counted += parts[1][0]
        elif len(parts) > 1:
            nested, nested_slots = parts[1][0], parts[1][1]
        visited = round(size.high if slots >= SAMPLE_SLOTS else min(size.estimate, wanted))
        return Group(within(query, self.schema, slots), counted, slots, main, visited, nested, nested_slots)

    def exact_limit(self, name: str) -> int:
        """Up to how many articles `name` is counted exactly ([counting])."""
        return self.counting.date_sample_size if name == self.date_field else self.counting.exact_up_to

    def size(self, searcher: tantivy.Searcher, query: tantivy.Query, total: int | None, exact: bool) -> SetSize:
        """How many articles `query` matches: `total` when known; else nothing needed for exact
        counting, or in a small index (SMALL_INDEX: every count
        exact); else estimated on a probe of about sample_size articles of the whole index (which
        holds at most that many of the set's), one count over the probe."""
        if total is not None:
            return SetSize(total, total, total, True)
        everything = SetSize(0, searcher.num_docs, searcher.num_docs, False)
        if exact or self.small(searcher):
            return everything
        probe = slots_for(searcher.num_docs, self.counting.sample_size)
        if probe >= SAMPLE_SLOTS:
            return everything
        sampled = sample_count(searcher, within(query, self.schema, probe))
        low, high = Estimator(probe / SAMPLE_SLOTS).estimate(sampled)[1]
        return SetSize(low, high, sampled * SAMPLE_SLOTS / probe, False)

    def agg(self, name: str, facet_size: int, span: tuple[date, date] | None, sampled: bool = False) -> dict[str, Any]:
        """A terms facet counted by its values' ids (search/facet_ids.py), or the dates' histogram."""
        if name != self.date_field:
            if sampled:  # counts are estimates already: each segment's top values are enough
                return FacetIds.agg(name, facet_size, sampled_segment_size(facet_size))
            return FacetIds.agg(name, facet_size)
        return month_ranges_agg(self.seconds_field, *span) if span else day_histogram_agg(name)

    def count_with(self, searcher: tantivy.Searcher, plan: Plan, name: str, value: str) -> int:
        """The exact number of articles with `value` under every filter but the facet's own."""
        query = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, plan.query(without=name)),
                (tantivy.Occur.Must, tantivy.Query.term_query(self.schema, name, value)),
            ]
        )
        return searcher.search(query, 1, count=True).count

    def values(
        self, searcher: tantivy.Searcher, query: tantivy.Query, name: str, exact: bool
    ) -> tuple[dict[str, Any], Estimator | None]:
        """Every value of one facet over `query`'s articles (browsing and typeahead), and their scale."""
        size = self.size(searcher, query, None, exact)
        small = exact or size.low <= self.counting.exact_up_to
        slots = SAMPLE_SLOTS if small else slots_for(size.estimate, self.counting.sample_size)
        aggs: dict[str, Any] = {name: terms_agg(name)}
        if slots < SAMPLE_SLOTS:
            aggs[SAMPLED] = {"value_count": {"field": SAMPLE_FIELD}}
        found = searcher.aggregate(within(query, self.schema, slots), aggs)
        return found.get(name, {}), scale(slots, None, int((found.get(SAMPLED) or {}).get("value") or 0))

    def date_span(self, searcher: tantivy.Searcher) -> tuple[date, date] | None:
        """The first and last publication dates (UTC) in the index, for as long as it does not change."""
        if self.seconds_field is None:
            return None
        field = self.seconds_field
        return self._date_spans.get_or_compute(self.version(), lambda: index_date_span(searcher, field))


def scaled(counts: list[dict[str, Any]], estimator: Estimator | None) -> list[dict[str, Any]]:
    """Facet values or date buckets with their sampled counts turned into estimates and intervals."""
    if estimator is None:
        return counts
    out = []
    for item in counts:
        count, interval = estimator.estimate(item["count"])
        out.append(item | {"count": count, "interval": interval})
    return out


def sample_count(searcher: tantivy.Searcher, query: tantivy.Query) -> int:
    """How many articles `query` matches (one sample key each), without scoring them."""
    found = searcher.aggregate(query, {SAMPLED: {"value_count": {"field": SAMPLE_FIELD}}})
    return int(found[SAMPLED]["value"] or 0)


def index_date_span(searcher: tantivy.Searcher, seconds_field: str) -> tuple[date, date] | None:
    """The UTC days of the earliest and latest values of a date's seconds field; None in an index without any."""
    found = searcher.aggregate(
        tantivy.Query.all_query(),
        {"first": {"min": {"field": seconds_field}}, "last": {"max": {"field": seconds_field}}},
    )
    first, last = found.get("first", {}).get("value"), found.get("last", {}).get("value")
    if first is None or last is None:
        return None
    return datetime.fromtimestamp(first, UTC).date(), datetime.fromtimestamp(last, UTC).date()
