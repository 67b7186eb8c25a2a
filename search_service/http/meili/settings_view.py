"""Index settings as Meilisearch shows them, and which changes the fixed article schema can take.

Synonyms are the service's synonym set (the one /admin/synonyms edits): Meilisearch's
`{"word": ["a", "b"]}` is one-way (searching `word` also finds `a` and `b`), a group with a root
here; multi-way groups are shown as every word mapping to the others. The schema's attribute
lists are fixed: a change naming only what the schema supports is accepted and changes nothing,
anything else is refused with `invalid_settings_*`, and so is a change to any other setting.
"""

from __future__ import annotations

import re
from typing import Any

from search_service.config import IndexConfig
from search_service.editorial.synonyms import SynonymLimits, SynonymSetIn, validate_synonyms
from search_service.errors import InvalidParameterError
from search_service.http.meili.errors import bad_request
from search_service.http.meili.filter_query import FilterFields
from search_service.http.meili.search import MAX_VALUES_PER_FACET, SEARCHABLE
from search_service.settings import Settings

# Settings whose value is a list of attributes the schema fixes: a subset of it is accepted.
SUBSET_SETTINGS = ("filterableAttributes", "sortableAttributes", "searchableAttributes")
# Per-setting routes: /settings/{route} -> the setting's key.
ROUTES = {
    "synonyms": "synonyms",
    "filterable-attributes": "filterableAttributes",
    "sortable-attributes": "sortableAttributes",
    "searchable-attributes": "searchableAttributes",
    "displayed-attributes": "displayedAttributes",
    "ranking-rules": "rankingRules",
    "stop-words": "stopWords",
    "distinct-attribute": "distinctAttribute",
    "typo-tolerance": "typoTolerance",
    "faceting": "faceting",
    "pagination": "pagination",
    "separator-tokens": "separatorTokens",
    "non-separator-tokens": "nonSeparatorTokens",
    "dictionary": "dictionary",
    "proximity-precision": "proximityPrecision",
    "search-cutoff-ms": "searchCutoffMs",
    "facet-search": "facetSearch",
    "prefix-search": "prefixSearch",
}


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def fixed_settings(config: IndexConfig, settings: Settings) -> dict[str, Any]:
    """Every setting but synonyms: what the schema and settings.py decide."""
    fields = FilterFields.from_config(config)
    ranking = config.ranking
    return {
        "displayedAttributes": ["*"],
        "searchableAttributes": list(SEARCHABLE),
        "filterableAttributes": fields.names,
        "sortableAttributes": list(fields.dates),
        "rankingRules": ["words", "typo", "proximity", "attribute", "sort", "exactness"],
        "stopWords": [],
        "nonSeparatorTokens": [],
        "separatorTokens": [],
        "dictionary": [],
        "distinctAttribute": None,
        "proximityPrecision": "byWord",
        "typoTolerance": {
            "enabled": ranking.typo_tolerance,
            "minWordSizeForTypos": {"oneTypo": ranking.one_typo_min_len, "twoTypos": ranking.two_typos_min_len},
            "disableOnWords": [],
            "disableOnAttributes": [],
        },
        "faceting": {"maxValuesPerFacet": MAX_VALUES_PER_FACET, "sortFacetValuesBy": {"*": "count"}},
        "pagination": {"maxTotalHits": settings.max_page_depth},
        "searchCutoffMs": int(settings.search_budget_ms),
        "facetSearch": True,
        "prefixSearch": "indexingTime",
    }


def synonyms_out(groups: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for group in groups:
        words = group["words"]
        root = group.get("root")
        pairs = [(root, words)] if root else [(w, [o for o in words if o != w]) for w in words]
        for word, others in pairs:
            out[word] = list(dict.fromkeys([*out.get(word, []), *others]))
    return out


def synonym_groups(value: Any, limits: SynonymLimits, tokenize: Any) -> list[dict[str, Any]]:
    """Meilisearch's synonyms as the service's groups (validated); None resets to none."""
    if value is None:
        return []
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(w, str) for w in v) for k, v in value.items()
    ):
        raise bad_request(
            "invalid_settings_synonyms",
            'Invalid value for `synonyms`: expected an object like {"word": ["other", ...]}.',
        )
    payload = SynonymSetIn(synonyms=[{"root": root, "words": words} for root, words in value.items() if words])
    try:
        return validate_synonyms(payload, limits, tokenize)
    except InvalidParameterError as exc:
        raise bad_request("invalid_settings_synonyms", f"Invalid value for `synonyms`: {exc.message}") from None


def check_change(key: str, value: Any, current: dict[str, Any]) -> None:
    """Refuse a change the fixed schema cannot take (synonyms are handled by the caller)."""
    code = f"invalid_settings_{snake(key)}"
    if key not in current:
        raise bad_request(
            "bad_request", f"Unknown field `{key}`: expected one of `{'`, `'.join(['synonyms', *current])}`."
        )
    if value is None or value == current[key]:
        return
    if key in SUBSET_SETTINGS:
        allowed = current[key]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            if "*" in allowed or all(v in allowed or v == "*" for v in value):
                return
            unknown = [v for v in value if v not in allowed and v != "*"]
            raise bad_request(
                code,
                f"Invalid value for `{key}`: `{unknown[0]}` is not one of this service's fixed article schema "
                f"(`{'`, `'.join(allowed)}`).",
            )
    raise bad_request(
        code,
        f"`{key}` is fixed by this service's article schema (index_config/schema.toml) and cannot be changed here.",
    )
