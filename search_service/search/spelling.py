"""What a reader is told about spelling: the words searched instead of typed ones, the query as
searched ("showing results for"), and a "did you mean" for a query that finds little when a
likelier spelling would find more.

Only words no article has are corrected silently (query.py); a word some article has is searched
as typed, since in news a rare word is usually a name. Such a word can still be a typo of a
frequent one ("teh"): it is offered as "did you mean", never searched in its place.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import tantivy

from search_service.cache import LRUCache
from search_service.search.query import ParsedQuery, QueryBuilder, one_edit_words, spelling_of

# Shorter words have too many one-edit neighbours to guess from ("at" -> "a", "an", "as", ...).
DID_YOU_MEAN_MIN_LEN = 3
# The respelled query must find at least this many times as many articles holding every word.
DID_YOU_MEAN_GAIN = 3
LIKELIER_CACHE_SIZE = 10_000
# The likeliest stems tried, and the articles read for how each is spelled.
MAX_TOKENS_TRIED = 3
SURFACE_SAMPLE = 3
_WORD_RE = re.compile(r"[^\W_]+")
# Longer queries (pasted sentences, claims) rarely hold every word even respelled, and spelling
# out each rare word's variants costs ~0.5 ms: those are left without a "did you mean".
DID_YOU_MEAN_MAX_WORDS = 6
DID_YOU_MEAN_MAX_RESPELLED = 3


@dataclass
class Spelling:
    builder: QueryBuilder
    _likelier: LRUCache = field(init=False)
    _spelled: LRUCache = field(init=False)

    def __post_init__(self) -> None:
        self._likelier = LRUCache(LIKELIER_CACHE_SIZE)
        self._spelled = LRUCache(LIKELIER_CACHE_SIZE)

    def analyze(self, text: str) -> list[str]:
        return self.builder.tokens(text, self.builder.typo_fields[0])

    def report(
        self, searcher: tantivy.Searcher, corrections: dict[str, tuple[str, ...]], version: object = None
    ) -> list[dict[str, Any]]:
        """For each corrected word, the words searched instead, spelled as words rather than stems."""
        return [
            {"word": word, "searched": list(dict.fromkeys(self.spelled(searcher, word, t, version) for t in terms))}
            for word, terms in corrections.items()
        ]

    def spelled(self, searcher: tantivy.Searcher, word: str, term: str, version: object = None) -> str:
        """How the indexed `term` that `word` was corrected to reads: a one-edit spelling of the word
        that an article holding the term uses, else the shortest such spelling, else the term."""

        def find() -> str:
            spellings = {v for v in one_edit_words(word) if self.analyze(v) == [term]}
            return self._surface(searcher, term, spellings) or spelling_of(word, term, self.analyze)

        return self._spelled.get_or_compute((version, word, term), find)

    def searched_text(
        self, searcher: tantivy.Searcher, text: str, corrections: dict[str, tuple[str, ...]], version: object = None
    ) -> str | None:
        """The query as searched (each corrected word as its first correction); None when uncorrected."""
        if not corrections:
            return None
        first = {word: self.spelled(searcher, word, terms[0], version) for word, terms in corrections.items()}
        return " ".join(_replaced(word, first) for word in text.split())

    def describe(
        self,
        searcher: tantivy.Searcher,
        text: str,
        plan: Any,
        found: int,
        count: Callable[[str], int],
        version: object = None,
    ) -> dict[str, Any]:
        """The response's `corrections`, `searched_for` and `did_you_mean` for a search's plan
        (search/engine.py's Plan: its parsed query and corrections) that found `found` articles
        holding every word."""
        corrections = plan.corrections
        return {
            "corrections": self.report(searcher, corrections, version),
            "searched_for": self.searched_text(searcher, text, corrections, version),
            "did_you_mean": self.did_you_mean(searcher, text, plan.parsed, corrections, found, count, version),
        }

    def did_you_mean(
        self,
        searcher: tantivy.Searcher,
        text: str,
        parsed: ParsedQuery,
        corrections: dict[str, tuple[str, ...]],
        found: int,
        count: Callable[[str], int],
        version: object = None,
    ) -> str | None:
        """A likelier spelling of `text`, whose words are all held by `found` articles, when it finds
        at least DID_YOU_MEAN_GAIN times as many (`count` counts a query's articles holding every word)."""
        ranking = self.builder.config.ranking
        terms = parsed.positive_terms()
        if found > ranking.did_you_mean_max_hits or len(terms) > DID_YOU_MEAN_MAX_WORDS or not self.builder.typo_fields:
            return None
        fixes: dict[str, str] = {}
        for term in terms:
            word = term.text.lower().strip(string.punctuation)
            if term.phrase or term.prefix or term.field or word in corrections or len(word) < DID_YOU_MEAN_MIN_LEN:
                continue
            if not word.isalpha():
                continue
            better = self._likelier.get_or_compute((version, word), partial(self._likelier_word, searcher, word))
            if better:
                fixes[word] = better
            if len(fixes) == DID_YOU_MEAN_MAX_RESPELLED:
                break
        if not fixes:
            return None
        respelled = " ".join(_replaced(word, fixes) for word in text.split())
        return respelled if count(respelled) >= max(1, DID_YOU_MEAN_GAIN * found) else None

    def _likelier_word(self, searcher: tantivy.Searcher, word: str) -> str | None:
        """The one-edit variant of `word` held by did_you_mean_ratio times as many articles (the most
        held first), spelled as an article spells it; None when there is none."""
        ranking = self.builder.config.ranking
        tokens = self.analyze(word)
        if len(tokens) != 1:
            return None
        held = self._held(searcher, tokens[0])
        if held > ranking.did_you_mean_max_hits:
            return None  # a word this many articles hold is not what makes the query find little
        wanted = max(ranking.did_you_mean_ratio * held, ranking.typo_correction_min_docs)
        counts: dict[str, int] = {tokens[0]: held}
        spellings: dict[str, set[str]] = {}
        for variant in one_edit_words(word):
            analyzed = self.analyze(variant)
            if len(analyzed) != 1:
                continue
            token = analyzed[0]
            if token not in counts:
                counts[token] = self._held(searcher, token)
            # A known word's variant whose stem begins the word is its own root ('methodist' ->
            # 'method'), not a fix; an unknown word's may well be ('oill' -> 'oil').
            if counts[token] >= wanted and not (held and word.startswith(token)):
                spellings.setdefault(token, set()).add(variant)
        for token in sorted(spellings, key=lambda t: (-counts[t], t))[:MAX_TOKENS_TRIED]:
            spelled = self._surface(searcher, token, spellings[token])
            if spelled:
                return spelled
        return None

    def _held(self, searcher: tantivy.Searcher, token: str) -> int:
        return max(searcher.doc_freq(name, token) for name in self.builder.typo_fields)

    def _surface(self, searcher: tantivy.Searcher, token: str, spellings: set[str]) -> str | None:
        """Which of `spellings` (all analyzing to the indexed `token`) an article holding it uses:
        the index keeps stems, so 'insurence' and 'insurance' look alike there."""
        schema = self.builder.schema
        fields = self.builder.typo_fields
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(schema, name, token)) for name in fields]
        )
        for _, address in searcher.search(query, SURFACE_SAMPLE).hits:
            doc = searcher.doc(address)
            for name in fields:
                for value in doc.get_all(name):
                    found = spellings.intersection(_WORD_RE.findall(str(value).lower()))
                    if found:
                        return min(found, key=lambda w: (len(w), w))
        return None


def _replaced(word: str, fixes: dict[str, str]) -> str:
    core = word.strip(string.punctuation).lower()
    return word.lower().replace(core, fixes[core]) if core in fixes else word
