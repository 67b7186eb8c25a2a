"""Search-box completions: popular past queries, then facet values and phrases from matching titles.

Every completion begins with what was typed (case and accents aside) and continues it: the last
word is completed where titles have it after the words typed before it.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import tantivy

from search_service.normalize import normalize_query
from search_service.search.engine import SearchEngine
from search_service.search.facets import terms_agg

Popular = Callable[[str, int], list[tuple[str, int]]]
_WORD_RE = re.compile(r"\w[\w'-]*", re.UNICODE)
# How many matching titles to read words from: enough for good completions, cheap per keystroke.
TITLE_SAMPLE = 40


class Suggester:
    def __init__(self, engine: SearchEngine, popular: Popular | None = None) -> None:
        self.engine = engine
        # Past queries for what is typed (search analytics), only those many readers searched for.
        self.popular = popular or (lambda typed, limit: [])
        self._values: dict[str, list[tuple[str, str, int]]] = {}
        self._version: object = None
        self.title_field = next((f.name for f in engine.config.text_fields if f.name == "title"), None)

    def suggest(self, typed: str, limit: int = 10) -> list[dict[str, Any]]:
        """Popular past queries first (at most half the list), then the completions of the last word."""
        queries = [{"text": q, "kind": "query", "count": n} for q, n in self.popular(typed, (limit + 1) // 2)]
        shown = {normalize_query(s["text"]) for s in queries}
        others = (s for s in self._completions(typed, limit) if normalize_query(s["text"]) not in shown)
        return [*queries, *others][:limit]

    def _completions(self, typed: str, limit: int) -> list[dict[str, Any]]:
        """Facet values and title phrases that begin with everything typed (case and accents aside),
        most frequent first; a last word is completed in the context of the words before it."""
        words = typed.split()
        if not typed[-1:].strip() or not words:
            return []
        folded = normalize_query(typed)
        found: dict[str, dict[str, Any]] = {}
        candidates = [*self._facet_matches(folded), *self._title_phrases(typed.rstrip(), words[:-1], words[-1])]
        for kind, text, count in candidates:
            key = normalize_query(text)
            # A completion always continues the text; one differing from another only in case is a duplicate.
            if key.startswith(folded) and key not in found:
                found[key] = {"text": text, "kind": kind, "count": count}
        return sorted(found.values(), key=lambda s: (-s["count"], s["text"]))[:limit]

    def _facet_matches(self, folded: str) -> list[tuple[str, str, int]]:
        """Facet values (entity names, topics) that start with everything typed."""
        out = []
        for name, values in self._facet_values().items():
            kind = self.engine.config.fields[name].filter_param or name
            out.extend((kind, value, count) for key, value, count in values if key.startswith(folded))
        return out

    def _facet_values(self) -> dict[str, list[tuple[str, str, int]]]:
        """All facet values as (folded, value, count), recomputed only when the index changes: folding
        12k entity names on every keystroke cost ~15 ms a completion on the seed shape."""
        reader = self.engine.reader
        searcher = reader.searcher()
        if reader.version != self._version:
            aggs = {name: terms_agg(name) for name in self.engine.config.facets}
            result = searcher.aggregate(tantivy.Query.all_query(), aggs) if aggs else {}
            self._values = {
                name: [
                    (normalize_query(b["key"]), b["key"], b["doc_count"])
                    for b in result.get(name, {}).get("buckets", [])
                ]
                for name in aggs
            }
            self._version = reader.version
        return self._values

    def _title_phrases(self, typed: str, head: list[str], last: str) -> list[tuple[str, str, int]]:
        """The typed words as titles continue them: the words before the last one, in that order,
        followed by a word starting with the last one ('central b' -> 'central bank'); a last word
        already whole gets the title's next word too ('bank of' -> 'bank of england')."""
        prefix = normalize_query(last)
        wanted = [normalize_query(w) for w in _WORD_RE.findall(" ".join(head))]
        query = self._title_query(" ".join(head), prefix)
        if query is None:
            return []
        searcher = self.engine.reader.searcher()
        lead = typed[: len(typed) - len(last)]
        counts: Counter[str] = Counter()
        shown: dict[str, str] = {}
        addresses = [address for _, address in searcher.search(query, TITLE_SAMPLE, count=False).hits]
        # A last word that may be whole ('bank of'): also sample titles holding the typed words as a
        # phrase, so its continuations are counted over titles that have them, not over the many that
        # hold the words apart ('bank official' answers 'bank o' too, from the sample above).
        whole = self._phrase_query(" ".join([*head, last])) if head else None
        if whole is not None:
            seen = {(a.segment_ord, a.doc) for a in addresses}
            hits = searcher.search(whole, TITLE_SAMPLE, count=False).hits
            addresses += [a for _, a in hits if (a.segment_ord, a.doc) not in seen]
        for address in addresses:
            title = _WORD_RE.findall(searcher.doc(address).get_first(self.title_field) or "")
            folded = [normalize_query(w) for w in title]
            for i in range(len(title) - len(wanted)):
                at = i + len(wanted)
                if folded[i:at] != wanted or not folded[at].startswith(prefix):
                    continue
                completion = title[at : at + 2] if folded[at] == prefix and at + 1 < len(title) else title[at : at + 1]
                text = lead + " ".join(w.lower() if w.isupper() else w for w in completion)
                key = normalize_query(text)
                counts[key] += 1
                shown.setdefault(key, text)
        return [("title", shown[key], n) for key, n in counts.items()]

    def _phrase_query(self, text: str) -> tantivy.Query | None:
        tokens = self.engine.builder.tokens(text, self.title_field) if self.title_field else []
        return tantivy.Query.phrase_query(self.engine.schema, self.title_field, tokens) if len(tokens) > 1 else None

    def _title_query(self, head: str, prefix: str) -> tantivy.Query | None:
        """Titles holding the words before the last (as a phrase) and a word starting with the last one."""
        if self.title_field is None:
            return None
        schema = self.engine.schema
        clauses = []
        tokens = self.engine.builder.tokens(head, self.title_field) if head.strip() else []
        if len(tokens) == 1:
            clauses.append(tantivy.Query.term_query(schema, self.title_field, tokens[0]))
        elif tokens:
            clauses.append(tantivy.Query.phrase_query(schema, self.title_field, tokens))
        if len(prefix) >= 2:
            with contextlib.suppress(ValueError):  # a prefix the regex engine refuses: the head alone
                clauses.append(tantivy.Query.regex_query(schema, self.title_field, re.escape(prefix) + ".*"))
        if not clauses:
            return None  # one letter typed, nothing before it: too little to look titles up by
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in clauses])
