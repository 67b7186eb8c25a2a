"""The editorial sets as one search engine serves them: compiled per version, followed across changes."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from search_service.cache import LRUCache
from search_service.config import IndexConfig
from search_service.editorial.store import EditorialStore, Followed
from search_service.search.curation import NO_CURATION, Curation, compile_rules
from search_service.search.query import Expansion, ParsedQuery, QueryBuilder
from search_service.search.synonyms import compile_synonyms, expand

EXPANSION_CACHE_SIZE = 4096


class EditorialControls:
    """The synonym and rule sets one SearchEngine serves, compiled per version and followed."""

    def __init__(self, index_dir: str | Path, builder: QueryBuilder, config: IndexConfig, interval: float) -> None:
        self.store = EditorialStore(index_dir)
        analyzed_as = next((f.name for f in config.text_fields if f.boost), config.text_fields[0].name)
        self.tokenize: Callable[[str], list[str]] = partial(builder.tokens, field_name=analyzed_as)
        self._text_names = {name for name, f in builder.fields_by_query_name.items() if f.kind == "text"}
        self.synonyms = Followed(self.store, "synonyms", lambda s: compile_synonyms(s.items, self.tokenize), interval)
        self.rules = Followed(self.store, "rules", lambda s: compile_rules(s.items, config.filters), interval)
        # A query's expansions depend only on its parsed form and the synonym set: head queries repeat.
        self._expansions = LRUCache(EXPANSION_CACHE_SIZE)
        self._memo: tuple[Any, int, Curation] | None = None

    def curation(self, request: Any) -> Curation:
        rules = self.rules.current()
        if not rules:
            return NO_CURATION
        # One search asks several times (cache keys, plan): work it out once per request.
        memo = self._memo
        if memo is not None and memo[0] is request and memo[1] == self.rules.last_version:
            return memo[2]
        curation = rules.curation(request.q, request.filters)
        self._memo = (request, self.rules.last_version, curation)
        return curation

    def key(self, request: Any) -> tuple:
        """What of the editorial state a request's results depend on: a part of every cache key."""
        curation = self.curation(request)
        self.synonyms.current()
        return (self.synonyms.last_version, self.rules.last_version, curation.rules)

    def expansions(self, parsed: ParsedQuery, corrections: dict[str, tuple[str, ...]]) -> tuple[Expansion, ...]:
        synonyms = self.synonyms.current()
        if not synonyms or not parsed.groups:
            return ()
        key = (self.synonyms.last_version, parsed, tuple(sorted(corrections.items())))
        return self._expansions.get_or_compute(
            key, lambda: expand(synonyms, parsed, corrections, self.tokenize, self._is_text_field)
        )

    def _is_text_field(self, name: str | None) -> bool:
        return name is None or name in self._text_names
