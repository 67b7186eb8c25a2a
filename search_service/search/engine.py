"""One search: plan the queries (pure), run them on a searcher, shape plain results.

The API, the evaluator and the benchmarks all call `SearchEngine.search`, so they share one
code path for query building, ranking, fallbacks, facets and snippets.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
import tantivy

from search_service.cache import LRUCache
from search_service.config import IndexConfig
from search_service.index.document import iso, public_article, stored_article
from search_service.index.reader import IndexReader
from search_service.search.controls import EditorialControls
from search_service.search.counting import DATE_FILTER, Counted, FacetCounter, scaled
from search_service.search.curation import NO_CURATION, CuratedPage, Curation, mark_pinned, page_layout, pin_slots
from search_service.search.facets import top_values
from search_service.search.freshness import FreshnessRanker, current_now
from search_service.search.query import Expansion, ParsedQuery, PrebuiltFilter, QueryBuilder, parse
from search_service.search.related import RelatedArticles
from search_service.search.snippets import Highlighter, Snippets, build_matcher
from search_service.search.spelling import Spelling
from search_service.search.tiers import TieredPage, tiered_page

HIT_ATTRIBUTES = ("slug", "title", "summary", "url", "published_at", "lang", "topics", "entities")
# Snippet length that keeps a whole title.
WHOLE_TEXT = 1_000_000
PREBUILT_FILTER = "_prebuilt"


@dataclass(frozen=True)
class SearchRequest:
    q: str = ""
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)  # field name -> values (OR)
    published_after: datetime | None = None
    published_before: datetime | None = None
    sort: str | None = None
    page: int = 1
    per_page: int = 10
    facets: tuple[str, ...] = ()
    facet_size: int = 10
    date_interval: str = "month"
    prefix: bool = False
    typos: bool = True
    highlight: bool = True
    freshness: bool = True  # False: pure relevance for this request ([ranking.freshness] left out)
    # The moment ages are measured from; the engine sets it (in NOW_STEP_S steps) when freshness applies.
    now: datetime | None = None
    semantic: bool = True  # fuse with the nearest articles by embedding, when [semantic] is enabled
    filter_query: PrebuiltFilter | None = None
    sort_field: str | None = None  # the date field newest/oldest order by; None: the histogram field
    search_fields: frozenset[str] | None = None  # index fields the words are looked for in; None: all
    fallback: bool = True  # False: never widen an all-words query that finds few to any word
    # Searches of one multi-search share their words' planning here (not part of the request's identity).
    plans: dict | None = field(default=None, compare=False, hash=False)
    exhaustive: bool = False  # count every match exactly, whatever their number ([counting])

    @property
    def cache_key(self) -> tuple:
        return (*(getattr(self, f) for f in _REQUEST_FIELDS), tuple(sorted(self.filters.items())))

    @property
    def matches_key(self) -> tuple:
        """What decides the set of matching articles (not their order, page or highlights)."""
        return (*(getattr(self, f) for f in _MATCH_FIELDS), tuple(sorted(self.filters.items())))


_REQUEST_FIELDS = tuple(f for f in SearchRequest.__dataclass_fields__ if f not in ("filters", "plans"))
_MATCH_FIELDS = ("q", "published_after", "published_before", "prefix", "typos", "filter_query", "search_fields")
# Facet value lists for browsing and typeahead hold every value of a facet: keep fewer of them.
VALUE_COUNTS_CACHE_SIZE = 64
PIN_ADDRESS_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Plan:
    """What to ask the engine, built without touching an index."""

    parsed: ParsedQuery
    corrections: dict[str, tuple[str, ...]]
    text_query: tantivy.Query
    filters: dict[str, tantivy.Query]  # filter key (field name or DATE_FILTER) -> query
    sort: str
    expansions: tuple[Expansion, ...] = ()  # synonyms searched too
    curation: Curation = NO_CURATION  # the rules that apply; hidden slugs are already left out of text_query
    # The any-word fallback: the all-words query, whose matches rank first (search/tiers.py).
    first: tantivy.Query | None = None

    def query(self, text_query: tantivy.Query | None = None, without: str | None = None) -> tantivy.Query:
        """The text query with every filter but `without` (for disjunctive facet counts)."""
        base = text_query if text_query is not None else self.text_query
        others = [q for key, q in self.filters.items() if key != without]
        if not others:
            return base
        clauses = [(tantivy.Occur.Must, base)]
        clauses.extend((tantivy.Occur.Must, tantivy.Query.const_score_query(q, 0.0)) for q in others)
        return tantivy.Query.boolean_query(clauses)


@dataclass(frozen=True)
class Ranked:
    """A page of hits ranked in Python, shaped like tantivy's SearchResult."""

    hits: list[tuple[float, tantivy.DocAddress]]
    count: int


class SearchEngine:
    """Everything a search needs that can be built once: query builder, field lists, caches."""

    def __init__(
        self,
        reader: IndexReader,
        config: IndexConfig,
        max_query_terms: int = 64,
        cache_size: int = 0,
        budget_ms: float = float("inf"),
        now: datetime | None = None,
    ) -> None:
        self.reader = reader
        self.budget_ms = budget_ms
        self.max_query_terms = max_query_terms
        # Whole responses: a news site's head queries and browse pages repeat constantly.
        self.cache = LRUCache(cache_size)
        # Facet counts outlive a response: the next page or another sort order of a query reuses them.
        self.facet_cache = LRUCache(cache_size)
        # A typeahead asks for the same facet's counts on every keystroke.
        self.value_counts = LRUCache(min(cache_size, VALUE_COUNTS_CACHE_SIZE))
        self.config = config
        self.schema = reader.schema
        self.builder = QueryBuilder(config, self.schema)
        self.spelling = Spelling(self.builder)
        # Synonyms and curation rules, kept beside the index's generations and followed like commits.
        self.editorial = EditorialControls(reader.store.root, self.builder, config, reader.interval)
        self._pin_addresses = LRUCache(PIN_ADDRESS_CACHE_SIZE)
        self.date_field = config.histogram_field.name if config.histogram_field else None
        # Facets and the date histogram: exact up to [counting] exact_up_to matches, sampled past it.
        self.counter = FacetCounter(config, self.schema, lambda: self.reader.version)
        # Where a search's facets are counted while its ranked search runs (_count_ahead).
        self._counting = ThreadPoolExecutor(thread_name_prefix="counting")
        self.snippet_fields = config.snippets.fields
        by_source = {f.source: f for f in config.fields.values()}
        self._hit_plan = {
            attribute: (by_source[attribute].name, by_source[attribute].kind, by_source[attribute].multi)
            for attribute in HIT_ATTRIBUTES
            if attribute in by_source
        }
        self.body_analyzer = self.builder.analyzers[config.fields[self.snippet_fields[0]].analyzer]
        self.freshness = FreshnessRanker.from_config(config)
        # A fixed "now" for freshness (replays, evaluations, tests); None: the clock.
        self.pinned_now = now
        self.semantic = None
        if config.semantic.enabled:
            from search_service.semantic.ranker import SemanticRanker

            self.semantic = SemanticRanker(config)
        self._related = RelatedArticles(config, self.schema, reader, self.semantic)

    # -- planning ---------------------------------------------------------------------------

    def plan(self, request: SearchRequest, searcher: tantivy.Searcher, require_all: bool = True) -> Plan:
        words = (request.q, request.prefix, request.typos, request.search_fields, require_all)
        known = request.plans.get(words) if request.plans is not None else None
        parsed, corrections, expansions, text_query = known or self._words(request, searcher, require_all)
        if request.plans is not None:
            request.plans[words] = (parsed, corrections, expansions, text_query)
        curation = self.editorial.curation(request)
        text_query = self._without(text_query, curation.hidden)
        # Nothing to rank by (no words, or only excluded ones): newest first, as for browsing.
        sort = request.sort or ("relevance" if parsed.groups else "newest")
        return Plan(parsed, corrections, text_query, self.filter_queries(request), sort, expansions, curation)

    def _words(self, request: SearchRequest, searcher: tantivy.Searcher, require_all: bool) -> tuple:
        parsed = parse(request.q, self.builder.known_fields, prefix=request.prefix, max_terms=self.max_query_terms)
        corrections = (
            self.builder.corrections(parsed, searcher, self.reader.version, not require_all) if request.typos else {}
        )
        expansions = self.editorial.expansions(parsed, corrections)
        fields = request.search_fields
        query = self.builder.build(
            parsed, require_all=require_all, corrections=corrections, expansions=expansions, fields=fields
        )
        return parsed, corrections, expansions, query

    def _without(self, query: tantivy.Query, slugs: tuple[str, ...]) -> tantivy.Query:
        if not slugs:
            return query
        key = self.config.key_field.name
        clauses = [(tantivy.Occur.Must, query)]
        clauses.extend((tantivy.Occur.MustNot, tantivy.Query.term_query(self.schema, key, slug)) for slug in slugs)
        return tantivy.Query.boolean_query(clauses)

    def filter_queries(self, request: SearchRequest) -> dict[str, tantivy.Query]:
        filters: dict[str, tantivy.Query] = {}
        for name, values in request.filters.items():
            values = tuple(dict.fromkeys(v for v in values if v))
            if values:
                terms = [tantivy.Query.term_query(self.schema, name, v) for v in values]
                filters[name] = (
                    terms[0]
                    if len(terms) == 1
                    else tantivy.Query.boolean_query([(tantivy.Occur.Should, t) for t in terms])
                )
        if self.date_field and (request.published_after or request.published_before):
            filters[DATE_FILTER] = self._date_range(request.published_after, request.published_before)
        if request.filter_query is not None:
            filters[PREBUILT_FILTER] = request.filter_query.query
        return filters

    def _date_range(self, after: datetime | None, before: datetime | None) -> tantivy.Query:
        """published_after inclusive, published_before exclusive.

        The index keeps dates to the second, so a bound with a fraction of a second is taken to
        include its whole second: an article is never lost to a sub-second bound.
        """
        lower = after.replace(microsecond=0) if after else None
        upper = before.replace(microsecond=0) if before else None
        include_upper = bool(before and before.microsecond)
        return tantivy.Query.range_query(
            self.schema, self.date_field, tantivy.FieldType.Date, lower, upper, include_upper=include_upper or not upper
        )

    # -- execution --------------------------------------------------------------------------

    def search(self, request: SearchRequest) -> dict[str, Any]:
        """The results of `request`, from the cache while the index has not changed."""
        return self.search_planned(request)[0]

    def search_planned(self, request: SearchRequest) -> tuple[dict[str, Any], Plan | None]:
        """`search`, and the plan it ran (None from the cache) for `highlighter` and `aggregate`."""
        started = time.perf_counter()
        searcher = self.reader.searcher()
        request = self._with_now(request)
        key = (self.reader.version, self.editorial.key(request), request.cache_key)
        cached = self.cache.get(key)
        if cached is not None:
            return cached | {"took_ms": round((time.perf_counter() - started) * 1000, 3), "cached": True}, None
        response, plan = self._search(searcher, request, started)
        if not response["degraded"]:  # a repeat may well finish in time: it is not served the cut answer
            self.cache.put(key, response)
        return response, plan

    def _search(
        self, searcher: tantivy.Searcher, request: SearchRequest, started: float
    ) -> tuple[dict[str, Any], Plan]:
        # `typed` is the all-words plan: what the words are, for spelling notices and for callers
        # that highlight them (the Meilisearch API).
        plan = typed = self.plan(request, searcher)
        ahead = self._count_ahead(searcher, plan, request)
        matched = "all"
        result = self._page(searcher, plan, request)
        all_words = getattr(result, "matched", result.count)
        if (
            request.fallback
            and plan.sort == "relevance"
            and all_words < self.config.ranking.fallback_min_hits
            and plan.parsed.groups[1:]
        ):
            # Few articles have every word (typically a pasted sentence): rank by the words that do
            # match, those holding every word first.
            first = plan.text_query if all_words else None
            plan = dataclasses.replace(self.plan(request, searcher, require_all=False), first=first)
            result = self._page(searcher, plan, request)
            matched, ahead = "any", None
        wanted = self.semantic is not None and request.semantic and plan.sort == "relevance"
        skipped = wanted and (time.perf_counter() - started) * 1000 > self.budget_ms
        semantic = False
        if wanted and not skipped:
            used: list[bool] = []

            def fused(searcher: tantivy.Searcher, plan: Plan, request: SearchRequest) -> Ranked:
                ranked, was_used = self._semantic_top(searcher, plan, request)
                used.append(was_used)
                return ranked

            # Curation places its pins around the fused ranking, as around the lexical one.
            result = self._page(searcher, plan, request, rank=fused)
            semantic = any(used)
        # Past the time budget, answer with what is known rather than hold the worker longer.
        over_budget = (time.perf_counter() - started) * 1000 > self.budget_ms
        degraded = ["highlights", "facets"] if over_budget else []
        if skipped:
            degraded.append("semantic")
        if over_budget:
            request = dataclasses.replace(request, highlight=False, facets=())
        hits = mark_pinned(self._hits(searcher, plan, request, result), result)
        facets, interval, exact = (
            self._cached_facets(searcher, plan, request, matched, result, ahead) if request.facets else ({}, None, True)
        )
        return {
            "total": result.count,
            "exhaustive": {"total": True, "facets": exact},
            "page": request.page,
            "per_page": request.per_page,
            "took_ms": round((time.perf_counter() - started) * 1000, 3),
            "matched": matched,
            "sort": plan.sort,
            "hits": hits,
            "facets": facets,
            "date_interval": interval,
            "cached": False,
            "degraded": degraded,
            "freshness": self._fresh(plan, request),
            "rules": list(plan.curation.rules),
            "semantic": semantic,
            "all_words": all_words,
            # The fallback also widens rare words it ranks after exact matches: not a correction to report.
            **self._spelling(searcher, typed, request, all_words),
        }, typed

    def _spelling(self, searcher: tantivy.Searcher, plan: Plan, request: SearchRequest, found: int) -> dict[str, Any]:
        count = functools.partial(self._count_all, searcher, request)
        return self.spelling.describe(searcher, request.q, plan, found, count, self.reader.version)

    def _count_all(self, searcher: tantivy.Searcher, request: SearchRequest, text: str) -> int:
        """The articles holding every word of `text` under the request's filters."""
        return searcher.search(self.plan(dataclasses.replace(request, q=text), searcher).query(), 1).count

    def _with_now(self, request: SearchRequest) -> SearchRequest:
        """The request with the `now` its freshness ranking uses: it is part of the cache key."""
        ranked = request.sort == "relevance" or (request.sort is None and request.q.strip())
        if self.freshness is None or not request.freshness or request.now is not None or not ranked:
            return request
        return dataclasses.replace(request, now=self.pinned_now or current_now())

    def _fresh(self, plan: Plan, request: SearchRequest) -> bool:
        return plan.sort == "relevance" and self.freshness is not None and request.freshness

    def _semantic_top(self, searcher: tantivy.Searcher, plan: Plan, request: SearchRequest) -> tuple[Ranked, bool]:
        """The lexical ranking fused with the nearest articles by embedding (semantic.py)."""
        from search_service.search.query import corrected_text

        depth = self.semantic.semantic.depth
        head = self._top(searcher, plan, dataclasses.replace(request, page=1, per_page=depth))
        excluded = [q for q in (self.builder.term(t) for t in plan.parsed.excluded) if q is not None]
        # Hidden articles reach no page, and pinned ones only their positions: dense candidates too.
        placed = (*plan.curation.hidden, *(slug for slug, _ in plan.curation.pins))
        key = self.config.key_field.name
        excluded += [tantivy.Query.term_query(self.schema, key, slug) for slug in placed]

        def restrict(term: tantivy.Query) -> tantivy.Query:
            clauses = [(tantivy.Occur.Must, plan.query(term))]
            return tantivy.Query.boolean_query(clauses + [(tantivy.Occur.MustNot, q) for q in excluded])

        def tail(offset: int, limit: int) -> list[tuple[float, tantivy.DocAddress]]:
            return searcher.search(plan.query(), limit, count=False, offset=offset).hits

        body = self.snippet_fields[0]
        known = lambda token: searcher.doc_freq(body, token) > 0  # noqa: E731 - a word some article has
        text = corrected_text(request.q, plan.corrections, self.body_analyzer.analyze, known)
        hits, count, used = self.semantic.top(
            searcher, self.schema, self.reader.current().generation.path, text,
            (list(head.hits), head.count), tail, restrict, (request.page - 1) * request.per_page, request.per_page,
        )  # fmt: skip
        return Ranked(hits, count), used

    def _top(
        self, searcher: tantivy.Searcher, plan: Plan, request: SearchRequest
    ) -> tantivy.SearchResult | Ranked | TieredPage:
        offset = (request.page - 1) * request.per_page
        if plan.first is None:
            return self._ranking(searcher, plan, request, plan.query(), offset, request.per_page)
        rank = functools.partial(self._ranking, searcher, plan, request)  # all-words matches first: tiers.py
        return tiered_page(rank, searcher, plan.query, plan.text_query, plan.first, offset, request.per_page)

    def _ranking(
        self, searcher: tantivy.Searcher, plan: Plan, request: SearchRequest, query: tantivy.Query, offset: int, n: int
    ) -> tantivy.SearchResult | Ranked:
        if self._fresh(plan, request):
            now = request.now or self.pinned_now or current_now()
            return Ranked(*self.freshness.page(searcher, query, offset, n, now))
        if plan.sort == "relevance" or not self.date_field:
            return searcher.search(query, n, count=True, offset=offset)
        order = tantivy.Order.Desc if plan.sort == "newest" else tantivy.Order.Asc
        by = request.sort_field or self.date_field
        return searcher.search(query, n, count=True, offset=offset, order_by_field=by, order=order)

    def _page(
        self,
        searcher: tantivy.Searcher,
        plan: Plan,
        request: SearchRequest,
        rank: Callable[[tantivy.Searcher, Plan, SearchRequest], tantivy.SearchResult | Ranked] | None = None,
    ) -> tantivy.SearchResult | Ranked | CuratedPage:
        """The page `_top` gives, with pinned articles at their positions and never again below.

        Organic hits keep their order around the pins, so consecutive pages never overlap and
        together hold every hit, for any per_page."""
        found = [(slug, position, self._pinned_address(searcher, slug)) for slug, position in plan.curation.pins]
        pinned = [(slug, position, address) for slug, position, address in found if address is not None]
        rank = rank or self._top
        if not pinned:
            return rank(searcher, plan, request)
        organic = dataclasses.replace(plan, text_query=self._without(plan.text_query, tuple(p[0] for p in pinned)))
        offset, size = (request.page - 1) * request.per_page, request.per_page
        positions = [position for _, position, _ in pinned]
        # The organic count is known only after a search: lay the page out as if the list went on,
        # and again when it proves to end on this page (pins past its end move up to the end).
        long = offset + size + len(pinned)
        layout = page_layout(pin_slots(positions, long), long, offset, size)
        hits, count = self._organic(searcher, organic, request, layout.organic_offset, layout.organic_limit, rank)
        total = count + len(pinned)
        fetched, layout = layout, page_layout(pin_slots(positions, total), total, offset, size)
        if layout.organic_offset != fetched.organic_offset or layout.organic_limit > fetched.organic_limit:
            hits, count = self._organic(searcher, organic, request, layout.organic_offset, layout.organic_limit, rank)
        organic_hits = iter(hits)
        page: list[tuple[float, tantivy.DocAddress]] = []
        marked = []
        for slot in layout.slots:
            hit = next(organic_hits, None) if slot is None else (0.0, pinned[slot][2])
            if hit is not None:
                if slot is not None:
                    marked.append(len(page))
                page.append(hit)
        return CuratedPage(page, total, count, frozenset(marked))

    def _pinned_address(self, searcher: tantivy.Searcher, slug: str) -> tantivy.DocAddress | None:
        # Head queries repeat their pins: an address holds until the index changes.
        return self._pin_addresses.get_or_compute((self.reader.version, slug), lambda: self._address(searcher, slug))

    def _organic(
        self,
        searcher: tantivy.Searcher,
        plan: Plan,
        request: SearchRequest,
        offset: int,
        limit: int,
        rank: Callable[[tantivy.Searcher, Plan, SearchRequest], tantivy.SearchResult | Ranked],
    ) -> tuple[list[tuple[float, tantivy.DocAddress]], int]:
        """Hits offset..offset+limit in `rank`'s order (from the one or two pages of per_page holding them)."""
        size = request.per_page
        first = offset // size + 1
        result = rank(searcher, plan, dataclasses.replace(request, page=first))
        hits = list(result.hits)
        if offset + limit > first * size and len(hits) == size:
            hits.extend(rank(searcher, plan, dataclasses.replace(request, page=first + 1)).hits)
        start = offset - (first - 1) * size
        return hits[start : start + limit], result.count

    def _hits(
        self, searcher: tantivy.Searcher, plan: Plan, request: SearchRequest, result: tantivy.SearchResult | Ranked
    ) -> list[dict[str, Any]]:
        if not result.hits:
            return []
        snippets = self._snippets(searcher, plan, request)
        summary_field = self.snippet_fields[-1]
        hits = []
        further = []  # long bodies without a match in their first window
        relevance = plan.sort == "relevance"
        for score, address in result.hits:
            doc = searcher.doc(address)
            hit = self._hit_fields(doc)
            hit["score"] = round(score, 4) if relevance else None
            if snippets is not None:
                body = doc.get_first(snippets.body_field) or ""
                summary = hit["summary"] if summary_field != snippets.body_field else ""
                snippet = snippets.first(body, summary)
                hit["highlights"] = {"title": snippets.title(hit["title"]), "snippet": snippet}
                if snippet is None:
                    further.append((hit, address, body, summary))
            hits.append(hit)
        if further:
            keys = [hit["slug"] for hit, *_ in further]
            matching = snippets.body_matches(searcher, self.config.key_field.name, keys)
            for hit, address, body, summary in further:
                has_match = (address.segment_ord, address.doc) in matching
                hit["highlights"]["snippet"] = snippets.further(body, summary, has_match)
        return hits

    def _snippets(self, searcher: tantivy.Searcher, plan: Plan, request: SearchRequest) -> Snippets | None:
        highlighter = self._highlighter(plan, request)
        if highlighter is None:
            return None
        body_field, title_field = self.snippet_fields[0], self._hit_plan["title"][0]
        snippets = Snippets(highlighter, self.schema, title_field, body_field)
        if highlighter.matcher.exact or highlighter.matcher.phrases:
            # Tantivy places the snippet window and, for exact words, marks them itself (fast);
            # prefix and CJK matches are found by the highlighter's own scan.
            body = tantivy.SnippetGenerator.create(searcher, plan.text_query, self.schema, body_field)
            body.set_max_num_chars(highlighter.max_chars)
            snippets.body_generator = body
            snippets.weigh(searcher)
            if highlighter.tantivy_can_mark:
                snippets.title_generator = tantivy.SnippetGenerator.create(
                    searcher, plan.text_query, self.schema, title_field
                )
                snippets.title_generator.set_max_num_chars(WHOLE_TEXT)
        return snippets

    def _hit_fields(self, doc: tantivy.Document) -> dict[str, Any]:
        """The fields a hit shows, read one by one: never the (possibly large) stored markdown."""
        hit: dict[str, Any] = {}
        for attribute, (name, kind, multi) in self._hit_plan.items():
            if multi:
                hit[attribute] = doc.get_all(name)
                continue
            value = doc.get_first(name)
            if kind == "stored":
                value = orjson.loads(value) if value is not None else None
            elif kind == "date":
                value = iso(value if value is None or value.tzinfo else value.replace(tzinfo=UTC))
            hit[attribute] = value if value is not None else ""
        return hit

    def _highlighter(self, plan: Plan, request: SearchRequest) -> Highlighter | None:
        if not request.highlight:
            return None
        synonyms = tuple(term for expansion in plan.expansions for term in expansion.terms)
        matcher = build_matcher(plan.parsed, self.builder, self.snippet_fields[0], plan.corrections, synonyms)
        return Highlighter(self.body_analyzer, matcher, self.config.snippets.max_chars)

    # -- facets -----------------------------------------------------------------------------

    def _facets_key(self, plan: Plan, request: SearchRequest, matched: str) -> tuple[Any, LRUCache, bool]:
        """Where a search's facets are kept, and whether they are counted exactly."""
        shape = (request.facets, request.facet_size, request.date_interval)
        browse = self.config.counting.browse_exact and not plan.parsed.groups
        exact = request.exhaustive or browse
        key = (self.reader.version, self.editorial.key(request), request.matches_key, matched, shape, exact)
        # Browse pages count exactly once per index version, whatever the result cache's size.
        return key, self.counter.browse if browse else self.facet_cache, exact

    def _count_ahead(self, searcher: tantivy.Searcher, plan: Plan, request: SearchRequest) -> Future[Counted] | None:
        """Start counting the all-words plan's facets beside its ranked search (None: not asked, kept,
        or a small index). Both are tantivy calls that release the GIL, so a second core runs them
        side by side; in a small index the counts cost less than handing them over."""
        if not request.facets or self.counter.small(searcher):
            return None
        key, cache, exact = self._facets_key(plan, request, "all")
        if cache.get(key) is not None:
            return None
        return self._counting.submit(self.counter.count, searcher, plan, request, None, exact)

    def _cached_facets(
        self,
        searcher: tantivy.Searcher,
        plan: Plan,
        request: SearchRequest,
        matched: str,
        result: Any,
        ahead: Future[Counted] | None = None,
    ) -> tuple[dict[str, Any], str | None, bool]:
        key, cache, exact = self._facets_key(plan, request, matched)
        found = cache.get(key)
        if found is not None:
            return found
        # The fully filtered set's size, when the result's count is it (pins may lie outside it).
        total = None if isinstance(result, CuratedPage) else result.count
        counted = ahead.result() if ahead is not None else None
        if counted is None or not counted.holds_for(total):
            counted = self.counter.count(searcher, plan, request, total, exact)
        found = self.counter.shape(searcher, plan, request, counted, total)
        cache.put(key, found)
        return found

    def date_span(self, searcher: tantivy.Searcher) -> tuple[date, date] | None:
        """The first and last publication dates (UTC) in the index (counting.FacetCounter.date_span)."""
        return self.counter.date_span(searcher)

    def highlighter(self, request: SearchRequest, plan: Plan | None = None) -> Highlighter:
        """What marks the request's words (corrections, synonyms) in any text; `plan`: search_planned's."""
        plan = plan or self.plan(request, self.reader.searcher())
        return self._highlighter(plan, dataclasses.replace(request, highlight=True))

    def aggregate(
        self, request: SearchRequest, aggregations: dict[str, Any], plan: Plan | None = None
    ) -> dict[str, Any]:
        """Tantivy aggregations over every article the request matches (its words and filters)."""
        searcher = self.reader.searcher()
        return searcher.aggregate((plan or self.plan(request, searcher)).query(), aggregations)

    def facet_values(self, name: str, request: SearchRequest, prefix: str = "", size: int = 10) -> dict[str, Any]:
        """One facet's values for browsing and typeahead, under the request's other filters."""
        started = time.perf_counter()
        searcher = self.reader.searcher()

        def count() -> tuple[dict[str, Any], Any]:
            plan = self.plan(request, searcher)
            exact = request.exhaustive or (self.config.counting.browse_exact and not plan.parsed.groups)
            return self.counter.values(searcher, plan.query(without=name), name, exact)

        key = (self.reader.version, self.editorial.key(request), name, request.matches_key, request.exhaustive)
        counts, estimator = self.value_counts.get_or_compute(key, count)
        values = scaled(top_values(counts, size, () if prefix else request.filters.get(name, ()), prefix), estimator)
        return {
            "facet": name,
            "values": values,
            "exhaustive": {"total": True, "facets": estimator is None},
            "took_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    # -- articles ---------------------------------------------------------------------------

    def article(self, slug: str) -> dict[str, Any] | None:
        searcher = self.reader.searcher()
        address = self._address(searcher, slug)
        if address is None:
            return None
        return public_article(stored_article(self.config, searcher.doc(address)))

    def related(self, slug: str, limit: int) -> list[dict[str, Any]] | None:
        """Articles like this one (search/related.py); None when there is no such article."""
        searcher = self.reader.searcher()
        address = self._address(searcher, slug)
        if address is None:
            return None
        return self._related.hits(searcher, address, slug, limit)

    def _address(self, searcher: tantivy.Searcher, slug: str) -> tantivy.DocAddress | None:
        key = self.config.key_field.name
        result = searcher.search(tantivy.Query.term_query(self.schema, key, slug), 1, count=False)
        return result.hits[0][1] if result.hits else None
