"""Curation rules managed at run time: pin articles at positions, hide others, for a query or a browse page.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .cache import LRUCache
from .config import FieldConfig
from .errors import InvalidParameterError
from .normalize import normalize_query

MAX_PIN_POSITION = 1000
MATCHING_CACHE_SIZE = 4096
_WORD_RE = re.compile(r"\w+")


class PinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(min_length=1, max_length=200)
    position: int = Field(ge=1, le=MAX_PIN_POSITION, description="1 is the first hit of the first page.")


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    query: str = Field("", max_length=1000, description="Compared after normalization (case, accents, spacing).")
    match: Literal["exact", "contains"] = "exact"
    filters: dict[str, list[str]] = Field(default_factory=dict, description="Filter parameter -> values.")
    pin: list[PinIn] = Field(default_factory=list)
    hide: list[str] = Field(default_factory=list)
    active_from: datetime | None = None
    active_until: datetime | None = None


class RuleSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[RuleIn]
    version: int | None = Field(None, description="When given, the live version this edit was based on (else 409).")
    updated_at: str | None = Field(None, description="Ignored: GET's output can be PUT back as it is.")


@dataclass(frozen=True)
class RuleLimits:
    max_rules: int = 1000
    max_slugs: int = 50  # pins and hides of one rule


def validate_rules(payload: RuleSetIn, limits: RuleLimits, filter_params: Iterable[str]) -> list[dict[str, Any]]:
    """The rules as stored (query normalized, dates in UTC); a 422 naming the first problem."""
    params = set(filter_params)
    if len(payload.rules) > limits.max_rules:
        raise InvalidParameterError("rules", f"at most {limits.max_rules} rules (got {len(payload.rules)})")
    seen: set[str] = set()
    out = []
    for i, rule in enumerate(payload.rules):
        where = f"rules[{i}]"
        if rule.id in seen:
            raise InvalidParameterError(f"{where}.id", f"{rule.id!r} is used by an earlier rule: ids must be unique")
        seen.add(rule.id)
        query = normalize_query(rule.query)
        if rule.match == "contains" and not _WORD_RE.findall(query):
            raise InvalidParameterError(f"{where}.query", "match 'contains' needs at least one word")
        filters = _filters(where, rule.filters, params)
        pins, hides = _slugs(where, rule, limits)
        active_from, active_until = (_utc(d) for d in (rule.active_from, rule.active_until))
        if active_from and active_until and active_from >= active_until:
            raise InvalidParameterError(f"{where}.active_until", "must be later than active_from")
        stored: dict[str, Any] = {"id": rule.id, "query": query, "match": rule.match, "filters": filters}
        stored |= {"pin": pins, "hide": hides, "active_from": _iso(active_from), "active_until": _iso(active_until)}
        out.append(stored)
    return out


def _filters(where: str, filters: dict[str, list[str]], params: set[str]) -> dict[str, list[str]]:
    out = {}
    for name, values in filters.items():
        if name not in params:
            allowed = ", ".join(sorted(params))
            raise InvalidParameterError(f"{where}.filters", f"unknown filter {name!r}; filters are {allowed}")
        kept = list(dict.fromkeys(v.strip() for v in values if v.strip()))
        if not kept:
            raise InvalidParameterError(f"{where}.filters.{name}", "give at least one value")
        out[name] = kept
    return out


def _slugs(where: str, rule: RuleIn, limits: RuleLimits) -> tuple[list[dict[str, Any]], list[str]]:
    if not rule.pin and not rule.hide:
        raise InvalidParameterError(where, "a rule needs something to do: pin or hide")
    if len(rule.pin) + len(rule.hide) > limits.max_slugs:
        raise InvalidParameterError(where, f"at most {limits.max_slugs} pins and hides in one rule")
    pins: list[dict[str, Any]] = []
    positions: set[int] = set()
    for j, pin in enumerate(rule.pin):
        slug = pin.slug.strip()
        if not slug or any(p["slug"] == slug for p in pins):
            raise InvalidParameterError(f"{where}.pin[{j}].slug", f"{slug!r} is empty or pinned twice")
        if pin.position in positions:
            raise InvalidParameterError(f"{where}.pin[{j}].position", f"position {pin.position} is taken twice")
        positions.add(pin.position)
        pins.append({"slug": slug, "position": pin.position})
    hides = list(dict.fromkeys(s.strip() for s in rule.hide))
    if "" in hides:
        raise InvalidParameterError(f"{where}.hide", "empty slug")
    both = {p["slug"] for p in pins} & set(hides)
    if both:
        raise InvalidParameterError(f"{where}.hide", f"{sorted(both)[0]!r} is both pinned and hidden")
    return pins, hides


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def unknown_slugs(rules: list[dict[str, Any]], exists: Callable[[str], bool]) -> list[str]:
    """Warnings for pins and hides that name no article (the rules are kept: it may arrive later)."""
    warnings = []
    for rule in rules:
        for slug in [p["slug"] for p in rule["pin"]] + rule["hide"]:
            if not exists(slug):
                warnings.append(f"rule {rule['id']!r}: no article with slug {slug!r}")
    return warnings


# -- serving ------------------------------------------------------------------------------------


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
    return _utc(datetime.fromisoformat(value)) if value else None


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
