"""The curation rule set as editors send it: the input model and its validation (a 422 changes nothing).

What the rules do when a search runs is in search/curation.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from search_service.errors import InvalidParameterError
from search_service.normalize import normalize_query

MAX_PIN_POSITION = 1000
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
        active_from, active_until = (as_utc(d) for d in (rule.active_from, rule.active_until))
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


def as_utc(value: datetime | None) -> datetime | None:
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
