"""Curation rules at search time: pin articles at positions, hide others, for a query or a browse page.

A rule applies to a request when it is inside its active window (active_from inclusive,
active_until exclusive), its query matches the search-box text after `normalize_query` (exact:
the same text; contains: every word of the rule's query is a word of the search), and every
filter it names is selected with exactly those values (filters it does not name may be anything).
`query: ""` with match exact applies to browse pages (nothing typed), narrowed by its filters.

Every applying rule counts, in the order of the set: hidden slugs are the union (a hidden slug
is never pinned), a slug pinned twice keeps its first position, and two pins asking for one
position take it in rule order, the later one the next position down.

What a reader reaches, exactly:
  - hidden articles appear on no page and are counted nowhere (left out of the match set);
  - pinned articles appear at their positions whether or not they match the query or filters,
    once (never again further down), and are added to `total`;
  - facet counts count the matching articles a reader reaches: hidden ones never, pinned ones
    only when they match the query and filters, like any other hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from search_service.cache import LRUCache
from search_service.config import FieldConfig
from search_service.editorial.rules import as_utc
from search_service.normalize import normalize_query

MATCHING_CACHE_SIZE = 4096
_WORD_RE = re.compile(r"\w+")


@dataclass(frozen=True)
class Rule:
    id: str
    order: int
    query: str
    words: frozenset[str]
    filters: tuple[tuple[str, frozenset[str]], ...]  # field name -> values
    pins: tuple[tuple[str, int], ...]
    hides: tuple[str, ...]
    active_from: datetime | None
    active_until: datetime | None

    def applies(self, filters: dict[str, tuple[str, ...]], now: datetime) -> bool:
        if (self.active_from and now < self.active_from) or (self.active_until and now >= self.active_until):
            return False
        return all(frozenset(v for v in filters.get(name, ()) if v) == values for name, values in self.filters)


@dataclass(frozen=True)
class Curation:
    """What the rules applying to one request do to it."""

    rules: tuple[str, ...] = ()
    pins: tuple[tuple[str, int], ...] = ()  # (slug, position), by position
    hidden: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)


NO_CURATION = Curation()


@dataclass(frozen=True)
class Rules:
    """Rules indexed for lookup: exact ones by normalized query, contains ones by their longest word."""

    exact: dict[str, tuple[Rule, ...]]
    contains: dict[str, tuple[Rule, ...]]
    # Search-box text -> the rules whose query matches it (windows and filters are checked per request).
    _matching: LRUCache = field(default_factory=lambda: LRUCache(MATCHING_CACHE_SIZE), compare=False, repr=False)

    def __bool__(self) -> bool:
        return bool(self.exact or self.contains)

    def curation(self, q: str, filters: dict[str, tuple[str, ...]], now: datetime | None = None) -> Curation:
        if not self:
            return NO_CURATION
        candidates = self._matching.get_or_compute(q, lambda: self._matching_rules(q))
        if not candidates:
            return NO_CURATION
        now = now or datetime.now(UTC)
        applying = sorted((r for r in candidates if r.applies(filters, now)), key=lambda r: r.order)
        return combine(applying)

    def _matching_rules(self, q: str) -> tuple[Rule, ...]:
        query = normalize_query(q)
        candidates = list(self.exact.get(query, ()))
        if self.contains:
            words = set(_WORD_RE.findall(query))
            for word in words:
                candidates.extend(r for r in self.contains.get(word, ()) if r.words <= words)
        return tuple(candidates)


def combine(rules: list[Rule]) -> Curation:
    if not rules:
        return NO_CURATION
    hidden = {slug for rule in rules for slug in rule.hides}
    pins: dict[str, tuple[int, int]] = {}
    for rule in rules:
        for slug, position in rule.pins:
            if slug not in hidden and slug not in pins:
                pins[slug] = (position, rule.order)
    ordered = sorted(pins.items(), key=lambda item: item[1])
    return Curation(tuple(r.id for r in rules), tuple((slug, pos) for slug, (pos, _) in ordered), tuple(sorted(hidden)))


def compile_rules(rules: list[dict[str, Any]], filter_fields: dict[str, FieldConfig]) -> Rules:
    """Stored rules for serving; a filter the index config no longer has makes its rule apply nowhere."""
    exact: dict[str, list[Rule]] = {}
    contains: dict[str, list[Rule]] = {}
    for order, data in enumerate(rules):
        if any(name not in filter_fields for name in data["filters"]):
            continue
        filters = tuple((filter_fields[name].name, frozenset(values)) for name, values in data["filters"].items())
        query = normalize_query(data.get("query", ""))
        rule = Rule(
            id=data["id"],
            order=order,
            query=query,
            words=frozenset(_WORD_RE.findall(query)),
            filters=filters,
            pins=tuple((p["slug"], int(p["position"])) for p in data.get("pin", [])),
            hides=tuple(data.get("hide", [])),
            active_from=_parse(data.get("active_from")),
            active_until=_parse(data.get("active_until")),
        )
        if data.get("match") == "contains":
            contains.setdefault(max(rule.words, key=lambda w: (len(w), w)), []).append(rule)
        else:
            exact.setdefault(query, []).append(rule)
    return Rules({k: tuple(v) for k, v in exact.items()}, {k: tuple(v) for k, v in contains.items()})


def _parse(value: str | None) -> datetime | None:
    return as_utc(datetime.fromisoformat(value)) if value else None


# -- paging -------------------------------------------------------------------------------------


def pin_slots(positions: list[int], total: int) -> list[int]:
    """0-based slots of pins (sorted by asked position) in a list of `total` hits: each at its
    position or the next free one, and never past the end (a short list ends with its pins)."""
    slots: list[int] = []
    for position in positions:
        slots.append(max(position - 1, slots[-1] + 1 if slots else 0))
    for i in range(len(slots) - 1, -1, -1):
        slots[i] = min(slots[i], (slots[i + 1] - 1) if i + 1 < len(slots) else total - 1)
    return slots


@dataclass(frozen=True)
class PageLayout:
    organic_offset: int
    organic_limit: int
    slots: tuple[int | None, ...]  # per position of the page: the pin's index, or None for the next organic hit


def page_layout(slots: list[int], total: int, offset: int, limit: int) -> PageLayout:
    """Which pins and which organic hits fill positions offset..offset+limit of `total` hits."""
    end = min(offset + limit, total)
    by_slot = {slot: i for i, slot in enumerate(slots)}
    before = sum(1 for slot in slots if slot < offset)
    page: list[int | None] = [by_slot.get(position) for position in range(offset, max(end, offset))]
    organic = sum(1 for s in page if s is None)
    return PageLayout(offset - before, organic, tuple(page))


@dataclass(frozen=True)
class CuratedPage:
    """A page with pins placed, shaped like tantivy's SearchResult (hits, count)."""

    hits: list[tuple[float, Any]]
    count: int  # what a reader can page through: the matches left after hiding, plus the pins
    matched: int  # the matches alone (decides the any-word fallback)
    pinned: frozenset[int]  # indexes of pinned hits in `hits`


def mark_pinned(hits: list[dict[str, Any]], page: Any) -> list[dict[str, Any]]:
    """Pinned hits say so, and have no relevance score (they were placed, not ranked)."""
    for i in getattr(page, "pinned", ()):
        hits[i]["curated"] = "pinned"
        hits[i]["score"] = None
    return hits
