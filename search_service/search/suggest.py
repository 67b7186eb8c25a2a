"""Search-box completions: popular past queries, then facet values and words from matching titles."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import tantivy

from search_service.search.engine import SearchEngine
from search_service.search.facets import terms_agg

Popular = Callable[[str, int], list[tuple[str, int]]]
_WORD_RE = re.compile(r"\w[\w'-]*", re.UNICODE)
# How many matching titles to read words from: enough for good completions, cheap per keystroke.
TITLE_SAMPLE = 25


class Suggester:
    def __init__(self, engine: SearchEngine, popular: Popular | None = None) -> None:
        self.engine = engine
        # Past queries for what is typed (search analytics), only those many readers searched for.
        self.popular = popular or (lambda typed, limit: [])
        self._values: dict[str, list[tuple[str, int]]] = {}
        self._version: object = None
        self.title_field = next((f.name for f in engine.config.text_fields if f.name == "title"), None)

    def suggest(self, typed: str, limit: int = 10) -> list[dict[str, Any]]:
        """Popular past queries first (at most half the list), then the completions of the last word."""
        queries = [{"text": q, "kind": "query", "count": n} for q, n in self.popular(typed, (limit + 1) // 2)]
        shown = {s["text"].casefold() for s in queries}
        others = (s for s in self._completions(typed, limit) if s["text"].casefold() not in shown)
        return [*queries, *others][:limit]

    def _completions(self, typed: str, limit: int) -> list[dict[str, Any]]:
        head, _, last = typed.rstrip().rpartition(" ") if typed[-1:].strip() else (typed, "", "")
        prefix = last.casefold()
        if not prefix:
            return []
        lead = f"{head.strip()} " if head.strip() else ""
        found: dict[str, dict[str, Any]] = {}
        candidates = [
            *self._facet_matches(typed.strip().casefold(), prefix if not lead else None),
            *((kind, lead + word, count) for kind, word, count in self._title_words(prefix)),
        ]
        for kind, text, count in candidates:
            if text.casefold() not in found:
                found[text.casefold()] = {"text": text, "kind": kind, "count": count}
        return sorted(found.values(), key=lambda s: (-s["count"], s["text"]))[:limit]

    def _facet_matches(self, typed: str, word: str | None) -> list[tuple[str, str, int]]:
        """Values that start with everything typed, or (for a single word) have a word starting with it."""
        out = []
        for name, values in self._facet_values().items():
            kind = self.engine.config.fields[name].filter_param or name
            for value, count in values:
                folded = value.casefold()
                if folded.startswith(typed) or (word and f" {word}" in f" {folded}"):
                    out.append((kind, value, count))
        return out

    def _facet_values(self) -> dict[str, list[tuple[str, int]]]:
        """All facet values with counts, recomputed only when the index changes."""
        reader = self.engine.reader
        searcher = reader.searcher()
        if reader.version != self._version:
            aggs = {name: terms_agg(name) for name in self.engine.config.facets}
            result = searcher.aggregate(tantivy.Query.all_query(), aggs) if aggs else {}
            self._values = {
                name: [(b["key"], b["doc_count"]) for b in result.get(name, {}).get("buckets", [])] for name in aggs
            }
            self._version = reader.version
        return self._values

    def _title_words(self, prefix: str) -> list[tuple[str, str, int]]:
        if self.title_field is None or len(prefix) < 2:
            return []
        searcher = self.engine.reader.searcher()
        pattern = re.escape(prefix) + ".*"
        try:
            query = tantivy.Query.regex_query(self.engine.schema, self.title_field, pattern)
        except ValueError:
            return []
        result = searcher.search(query, TITLE_SAMPLE, count=False)
        words: Counter[str] = Counter()
        shown: dict[str, str] = {}
        for _, address in result.hits:
            title = searcher.doc(address).get_first(self.title_field) or ""
            for word in _WORD_RE.findall(title):
                folded = word.casefold()
                if folded.startswith(prefix):
                    words[folded] += 1
                    shown.setdefault(folded, word.lower() if word.isupper() else word)
        return [("title", shown[w], n) for w, n in words.items()]
