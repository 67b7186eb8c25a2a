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

from search_service.errors import Problems
from search_service.normalize import normalize_query

MAX_PIN_POSITION = 1000
_WORD_RE = re.compile(r"\w+")
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")


class PinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(max_length=200)
    # Ranges are checked with the set's other problems (validate_rules), so one 422 names them all.
    position: int = Field(description=f"1 is the first hit of the first page; at most {MAX_PIN_POSITION}.")


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Unique in the set: 1-100 of A-Z a-z 0-9 . _ : - (starting with a letter or digit).")
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
    """The rules as stored (query normalized, dates in UTC); a 422 naming every problem."""
    params = set(filter_params)
    problems = Problems()
    if len(payload.rules) > limits.max_rules:
        problems.add("rules", f"at most {limits.max_rules} rules (got {len(payload.rules)})")
    seen: set[str] = set()
    out = []
    for i, rule in enumerate(payload.rules):
        where = f"rules[{i}]"
        if not _ID_RE.fullmatch(rule.id):
            problems.add(f"{where}.id", f"{rule.id[:40]!r}: 1-100 of A-Z a-z 0-9 . _ : -, from a letter or digit")
        elif rule.id in seen:
            problems.add(f"{where}.id", f"{rule.id!r} is used by an earlier rule: ids must be unique")
        seen.add(rule.id)
        query = normalize_query(rule.query)
        if rule.match == "contains" and not _WORD_RE.findall(query):
            problems.add(f"{where}.query", "match 'contains' needs at least one word")
        filters = _filters(where, rule.filters, params, problems)
        pins, hides = _slugs(where, rule, limits, problems)
        active_from, active_until = (as_utc(d) for d in (rule.active_from, rule.active_until))
        if active_from and active_until and active_from >= active_until:
            problems.add(f"{where}.active_until", "must be later than active_from")
        stored: dict[str, Any] = {"id": rule.id, "query": query, "match": rule.match, "filters": filters}
        stored |= {"pin": pins, "hide": hides, "active_from": _iso(active_from), "active_until": _iso(active_until)}
        out.append(stored)
    problems.raise_any()
    return out


def _filters(where: str, filters: dict[str, list[str]], params: set[str], problems: Problems) -> dict[str, list[str]]:
    out = {}
    for name, values in filters.items():
        if name not in params:
            allowed = ", ".join(sorted(params))
            problems.add(f"{where}.filters", f"unknown filter {name!r}; filters are {allowed}")
            continue
        kept = list(dict.fromkeys(v.strip() for v in values if v.strip()))
        if not kept:
            problems.add(f"{where}.filters.{name}", "give at least one value")
        out[name] = kept
    return out


def _slugs(where: str, rule: RuleIn, limits: RuleLimits, problems: Problems) -> tuple[list[dict[str, Any]], list[str]]:
    if not rule.pin and not rule.hide:
        problems.add(where, "a rule needs something to do: pin or hide")
    if len(rule.pin) + len(rule.hide) > limits.max_slugs:
        problems.add(where, f"at most {limits.max_slugs} pins and hides in one rule")
    pins: list[dict[str, Any]] = []
    positions: set[int] = set()
    for j, pin in enumerate(rule.pin):
        slug = pin.slug.strip()
        if not slug or any(p["slug"] == slug for p in pins):
            problems.add(f"{where}.pin[{j}].slug", f"{slug!r} is empty or pinned twice")
        if not 1 <= pin.position <= MAX_PIN_POSITION:
            problems.add(f"{where}.pin[{j}].position", f"must be 1-{MAX_PIN_POSITION} (got {pin.position})")
        elif pin.position in positions:
            problems.add(f"{where}.pin[{j}].position", f"position {pin.position} is taken twice")
        positions.add(pin.position)
        pins.append({"slug": slug, "position": pin.position})
    hides = list(dict.fromkeys(s.strip() for s in rule.hide))
    if "" in hides:
        problems.add(f"{where}.hide", "empty slug")
    for slug in sorted({p["slug"] for p in pins} & set(hides)):
        problems.add(f"{where}.hide", f"{slug!r} is both pinned and hidden")
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
