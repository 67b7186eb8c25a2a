"""Meilisearch search parameters in, Meilisearch's search response out, over `SearchEngine.search`.

The filter language becomes a prebuilt Tantivy query the engine ANDs with its own filters
(`PrebuiltFilter`), so typos, synonyms, curation, freshness, counting and caching are the
engine's, as for /search. Facets are counted over the whole filtered set (Meilisearch's facets
are conjunctive; instant-meilisearch asks again without a facet's own refinement for disjunctive
lists, which then match /search's disjunctive counts).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from search_service.config import IndexConfig
from search_service.http.meili.errors import bad_request
from search_service.http.meili.filter_parser import FilterSyntaxError, Node, parse_filter_param
from search_service.http.meili.filter_query import FilterBuilder, FilterError
from search_service.http.meili.formatting import FormatOptions, fast_spans, formatted
from search_service.search.engine import HIT_ATTRIBUTES, Plan, SearchEngine, SearchRequest
from search_service.search.query import PrebuiltFilter
from search_service.settings import Settings

DEFAULT_LIMIT = 20
MAX_VALUES_PER_FACET = 100
SEARCHABLE = ("title", "summary", "body_md", "entities")
# Index fields built from each searchable attribute: the body's text (and its CJK characters) from body_md.
_DERIVED = {"body_text": "body_md", "cjk_text": "body_md"}
MATCHING_STRATEGIES = ("last", "all", "frequency")


@dataclass(frozen=True)
class Schema:
    """What the article schema offers to Meilisearch parameters."""

    facets: tuple[str, ...]  # counted values (keyword facet fields)
    dates: dict[str, str]  # date attribute -> its integer seconds field (facetStats)
    filters: FilterBuilder
    searched: dict[str, frozenset[str]]  # searchable attribute -> the index fields its words are in

    @classmethod
    def from_config(cls, config: IndexConfig, engine: SearchEngine) -> Schema:
        facets = tuple(config.facets)
        dates = {f.name: f.seconds_field for f in config.fields.values() if f.kind == "date"}
        searched: dict[str, set[str]] = {}
        for f in config.fields.values():
            attribute = _DERIVED.get(f.source, f.source)
            if attribute in SEARCHABLE:
                searched.setdefault(attribute, set()).add(f.search_field or f.name)
        return cls(facets, dates, FilterBuilder(config, engine.schema), {k: frozenset(v) for k, v in searched.items()})

    def search_fields(self, attributes: list[str] | None) -> frozenset[str] | None:
        if not attributes or "*" in attributes:
            return None
        return frozenset().union(*(self.searched[a] for a in attributes))


def _int(params: dict[str, Any], name: str, default: int | None, code: str) -> int | None:
    value = params.get(name, default)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise bad_request(code, f"Invalid value for `{name}`: expected a positive integer, but found `{value}`.")
    return value


def _strings(params: dict[str, Any], name: str, code: str) -> list[str] | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(code, f"Invalid value type for `{name}`: expected an array of strings, but found `{value}`.")
    return value


def _text(params: dict[str, Any], name: str, default: str, code: str) -> str:
    value = params.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad_request(code, f"Invalid value type for `{name}`: expected a string, but found `{value}`.")
    return value


def prebuilt(schema: Schema, value: Any, code: str = "invalid_search_filter") -> PrebuiltFilter | None:
    """The `filter` parameter as the engine's prebuilt filter; Meilisearch's errors with the position."""
    try:
        node: Node | None = parse_filter_param(value)
        if node is None:
            return None
        return PrebuiltFilter(repr(node), schema.filters.query(node))
    except FilterSyntaxError as exc:
        raise bad_request(code, str(exc)) from None
    except FilterError as exc:
        raise bad_request(code, f"{exc}\n{exc.position + 1}:{exc.position + 2} {value}") from None
    except TypeError as exc:
        raise bad_request(code, f"Invalid value type for `filter`: {exc}.") from None


def _sort(params: dict[str, Any], schema: Schema) -> tuple[str | None, str | None]:
    sort = _strings(params, "sort", "invalid_search_sort")
    if not sort:
        return None, None
    first = sort[0]
    attribute, _, direction = first.rpartition(":")
    if attribute not in schema.dates or direction not in ("asc", "desc") or len(sort) > 1:
        raise bad_request(
            "invalid_search_sort",
            f"Invalid syntax for the sort parameter: `{','.join(sort)}`. This service sorts by one of "
            f"{', '.join(f'`{d}:desc`, `{d}:asc`' for d in schema.dates)} (relevance without `sort`).",
        )
    return ("newest" if direction == "desc" else "oldest"), attribute


def _facets(params: dict[str, Any], schema: Schema) -> list[str]:
    facets = _strings(params, "facets", "invalid_search_facets") or []
    if "*" in facets:
        return [*schema.facets, *schema.dates]
    unknown = [f for f in facets if f not in schema.facets and f not in schema.dates]
    if unknown:
        allowed = "`, `".join([*schema.facets, *schema.dates])
        raise bad_request(
            "invalid_search_facets",
            f"Invalid facet requested: `{unknown[0]}`. Attributes with facets here: `{allowed}`.",
        )
    return list(dict.fromkeys(facets))


def _searchable(params: dict[str, Any]) -> tuple[list[str] | None, bool]:
    """attributesToSearchOn, and whether an all-words query may widen to any word (matchingStrategy)."""
    on = _strings(params, "attributesToSearchOn", "invalid_search_attributes_to_search_on")
    unknown = [a for a in on or () if a != "*" and a not in SEARCHABLE]
    if unknown:
        raise bad_request(
            "invalid_search_attributes_to_search_on",
            f"Attribute `{unknown[0]}` is not searchable. "
            f"Available searchable attributes are: `{'`, `'.join(SEARCHABLE)}`.",
        )
    strategy = params.get("matchingStrategy", "last")
    if strategy not in MATCHING_STRATEGIES:
        raise bad_request(
            "invalid_search_matching_strategy",
            f"Unknown value `{strategy}` at `.matchingStrategy`: expected one of `last`, `all`, `frequency`.",
        )
    # `all`: every word must match. `last` and `frequency` drop words when too few articles have
    # them all; the engine's fallback (ranking by the words that do match) is that here.
    return on, strategy != "all"


def _crop(params: dict[str, Any]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for item in _strings(params, "attributesToCrop", "invalid_search_attributes_to_crop") or []:
        name, _, words = item.partition(":")
        if words and not words.isdigit():
            raise bad_request(
                "invalid_search_attributes_to_crop", f"Invalid crop length in `{item}`: expected `attribute:N`."
            )
        out[name] = int(words) if words else None
    return out


@dataclass(frozen=True)
class Paging:
    """limit/offset, or hitsPerPage/page (then the response has page fields instead)."""

    offset: int
    limit: int
    shown: int  # hits returned: none past the deepest hit a client may page to (Meilisearch's maxTotalHits)
    hits_per_page: int | None = None
    page: int | None = None

    @classmethod
    def read(cls, params: dict[str, Any], max_depth: int) -> Paging:
        if params.get("page") is None and params.get("hitsPerPage") is None:
            offset = _int(params, "offset", 0, "invalid_search_offset")
            limit = _int(params, "limit", DEFAULT_LIMIT, "invalid_search_limit")
            return cls(offset, limit, max(0, min(limit, max_depth - offset)))
        per_page = _int(params, "hitsPerPage", DEFAULT_LIMIT, "invalid_search_hits_per_page")
        page = _int(params, "page", 1, "invalid_search_page")
        offset, limit = max(page - 1, 0) * per_page, per_page if page > 0 else 0
        return cls(offset, limit, max(0, min(limit, max_depth - offset)), per_page, page)

    def counts(self, total: int) -> dict[str, int]:
        if self.hits_per_page is None:
            return {"limit": self.limit, "offset": self.offset, "estimatedTotalHits": total}
        pages = math.ceil(total / self.hits_per_page) if self.hits_per_page else 0
        return {"hitsPerPage": self.hits_per_page, "page": self.page, "totalPages": pages, "totalHits": total}


def _format_options(params: dict[str, Any]) -> tuple[FormatOptions, bool]:
    """How `_formatted` is made, and whether it is asked for at all."""
    highlight = _strings(params, "attributesToHighlight", "invalid_search_attributes_to_highlight")
    crop = _crop(params)
    options = FormatOptions(
        highlight=None if highlight is not None and "*" in highlight else frozenset(highlight or ()),
        crop=crop,
        crop_length=_int(params, "cropLength", 10, "invalid_search_crop_length") or 10,
        crop_marker=_text(params, "cropMarker", "…", "invalid_search_crop_marker"),
        pre_tag=_text(params, "highlightPreTag", "<em>", "invalid_search_highlight_pre_tag"),
        post_tag=_text(params, "highlightPostTag", "</em>", "invalid_search_highlight_post_tag"),
    )
    return options, highlight is not None or bool(crop)


def search(
    engine: SearchEngine, schema: Schema, settings: Settings, params: dict[str, Any], plans: dict | None = None
) -> dict[str, Any]:
    """One search with Meilisearch's parameters, answered with Meilisearch's response; `plans` is
    shared by the searches of one multi-search (the same words are planned once)."""
    started = time.perf_counter()
    q = _text(params, "q", "", "invalid_search_q")[: settings.max_query_chars]
    search_on, fallback = _searchable(params)
    paging = Paging.read(params, settings.max_page_depth)
    offset, shown = paging.offset, paging.shown
    sort, sort_field = _sort(params, schema)
    facets = _facets(params, schema)
    retrieve = _strings(params, "attributesToRetrieve", "invalid_search_attributes_to_retrieve") or ["*"]
    options, wants_format = _format_options(params)
    # A page that fits per_page pages exactly is one engine page; otherwise the first offset+limit.
    per_page = (shown if offset % shown == 0 else offset + shown) if shown else 1
    request = SearchRequest(
        q=q,
        filter_query=prebuilt(schema, params.get("filter")),
        sort=sort,
        sort_field=sort_field,
        page=(offset // per_page + 1) if shown and per_page == shown else 1,
        per_page=max(per_page, 1),
        facets=tuple(f for f in facets if f in schema.facets),
        facet_size=MAX_VALUES_PER_FACET,
        # Meilisearch matches the last word as a prefix unless a space follows it (search as you type).
        prefix=bool(q.strip()) and not q.endswith(" "),
        highlight=False,
        search_fields=schema.search_fields(search_on),
        fallback=fallback,
        plans=plans,
    )
    result, plan = engine.search_planned(request)
    raw_hits = result["hits"][offset - (request.page - 1) * request.per_page :][:shown] if shown else []
    spans = fast_spans(engine.highlighter(request, plan)) if wants_format and q.strip() and raw_hits else None
    hits = [_hit(engine, raw, retrieve, options, spans, wants_format, params) for raw in raw_hits]
    total = result["total"]
    out: dict[str, Any] = {"hits": hits, "query": q, "processingTimeMs": 0}
    out |= paging.counts(total)
    if facets:
        distribution, stats = _facet_results(engine, schema, request, result, facets, plan)
        out["facetDistribution"] = distribution
        out["facetStats"] = stats
    out["processingTimeMs"] = round((time.perf_counter() - started) * 1000)
    return out


def _hit(
    engine: SearchEngine,
    raw: dict[str, Any],
    retrieve: list[str],
    options: FormatOptions,
    spans: Any,
    wants_format: bool,
    params: dict[str, Any],
) -> dict[str, Any]:
    # The hit the engine shaped holds the common attributes; the rest come from the stored article.
    if "*" not in retrieve and all(a in HIT_ATTRIBUTES for a in retrieve):
        document = {a: raw[a] for a in HIT_ATTRIBUTES if a in raw}
    else:
        document = engine.article(raw["slug"]) or {a: raw[a] for a in HIT_ATTRIBUTES if a in raw}
    if "*" not in retrieve:
        document = {k: v for k, v in document.items() if k in retrieve}
    hit = dict(document)
    if wants_format:
        hit["_formatted"] = formatted(document, options, spans)
    if params.get("showRankingScore") is True:
        score = raw.get("score") or 0.0
        # BM25 has no upper bound; Meilisearch's score lies in [0, 1]: a monotone map keeps the order.
        hit["_rankingScore"] = round(score / (score + 1.0), 4) if score > 0 else 0.0
    return hit


def _facet_results(
    engine: SearchEngine,
    schema: Schema,
    request: SearchRequest,
    result: dict[str, Any],
    facets: list[str],
    plan: Plan | None,
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    distribution: dict[str, dict[str, int]] = {}
    for name in facets:
        if name in schema.facets:
            values = result["facets"].get(name, [])
            distribution[name] = {v["value"]: v["count"] for v in values}
    dates = [name for name in facets if name in schema.dates]
    stats: dict[str, dict[str, float]] = {}
    if dates:
        aggregations: dict[str, Any] = {}
        for name in dates:
            field = schema.dates[name]
            aggregations[f"{name}:min"] = {"min": {"field": field}}
            aggregations[f"{name}:max"] = {"max": {"field": field}}
        found = engine.aggregate(request, aggregations, plan)
        for name in dates:
            low, high = found.get(f"{name}:min", {}).get("value"), found.get(f"{name}:max", {}).get("value")
            # Dates are to the second: their values' counts (ones) say nothing; range widgets read the stats.
            distribution[name] = {}
            if low is not None and high is not None:
                stats[name] = {"min": low, "max": high}
    return distribution, stats


def facet_search(engine: SearchEngine, schema: Schema, settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    name = params.get("facetName")
    if not isinstance(name, str) or name not in schema.facets:
        raise bad_request(
            "invalid_facet_search_facet_name",
            f"Attribute `{name}` is not facet-searchable. "
            f"Facet-searchable attributes are: `{'`, `'.join(schema.facets)}`.",
        )
    facet_query = _text(params, "facetQuery", "", "invalid_facet_search_facet_query")
    q = _text(params, "q", "", "invalid_search_q")[: settings.max_query_chars]
    search_on, fallback = _searchable(params)
    request = SearchRequest(
        q=q,
        filter_query=prebuilt(schema, params.get("filter")),
        highlight=False,
        search_fields=schema.search_fields(search_on),
        fallback=fallback,
    )
    found = engine.facet_values(name, request, facet_query.strip(), MAX_VALUES_PER_FACET)
    hits = [{"value": v["value"], "count": v["count"]} for v in found["values"]]
    return {
        "facetHits": hits,
        "facetQuery": facet_query or None,
        "processingTimeMs": round((time.perf_counter() - started) * 1000),
    }
