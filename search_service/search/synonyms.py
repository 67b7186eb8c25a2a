"""Synonyms at search time: the live set compiled per version, expanded per query.

A group without `root` is multi-way (each word finds the others); with `root` it is one-way
(the root finds the words, not the reverse). Words and queries are compared as the index sees
them, after the analyzer (so 'americas' meets the group of 'america', and so does a typo
corrected to it); a multi-word synonym matches, and is searched, as a phrase.

Expansion is bounded: at most MAX_PER_SPAN alternatives for one word or phrase of the query and
MAX_PER_QUERY for a whole query, in the order the groups were given; the rest are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from search_service.search.query import Expansion, ParsedQuery, Term

# A word found only through a synonym counts for less than the word typed.
SYNONYM_WEIGHT = 0.7
MAX_PER_SPAN = 8
MAX_PER_QUERY = 32

Tokenize = Callable[[str], list[str]]


@dataclass(frozen=True)
class Synonyms:
    """Analyzed word or phrase -> what else to search for it, in the order the groups were given."""

    expansions: dict[tuple[str, ...], tuple[str, ...]]
    longest: int = 0

    def __bool__(self) -> bool:
        return bool(self.expansions)


def compile_synonyms(groups: list[dict[str, Any]], tokenize: Tokenize) -> Synonyms:
    found: dict[tuple[str, ...], dict[str, None]] = {}
    for group in groups:
        words = [w for w in group.get("words", []) if isinstance(w, str)]
        root = group.get("root")
        sources = [root] if isinstance(root, str) else words
        for source in sources:
            key = tuple(tokenize(source))
            if not key:
                continue
            targets = found.setdefault(key, {})
            for word in words:
                if tuple(tokenize(word)) != key:
                    targets[word] = None
    expansions = {key: tuple(targets) for key, targets in found.items() if targets}
    return Synonyms(expansions, max((len(k) for k in expansions), default=0))


def expand(
    synonyms: Synonyms,
    parsed: ParsedQuery,
    corrections: dict[str, tuple[str, ...]],
    tokenize: Tokenize,
    is_text_field: Callable[[str | None], bool],
) -> tuple[Expansion, ...]:
    """Which groups of the query widen to which synonyms.

    Consecutive plain words are matched against multi-word synonyms first (longest first), so
    'united states' typed without quotes finds 'usa'; a quoted phrase matches as a whole; a typo
    corrected to a known word widens like the word. Excluded words are not expanded.
    """
    if not synonyms or not parsed.groups:
        return ()
    groups = parsed.groups
    out: list[Expansion] = []
    budget = MAX_PER_QUERY
    i = 0
    while i < len(groups) and budget > 0:
        span, terms = _multi_word(synonyms, groups, i, tokenize, is_text_field)
        if not terms:
            span, terms = 1, _single(synonyms, groups[i], corrections, tokenize, is_text_field)
        terms = terms[: min(MAX_PER_SPAN, budget)]
        if terms:
            out.append(Expansion(i, i + span, tuple(terms), SYNONYM_WEIGHT))
            budget -= len(terms)
        i += span
    return tuple(out)


def _multi_word(
    synonyms: Synonyms,
    groups: tuple[tuple[Term, ...], ...],
    start: int,
    tokenize: Tokenize,
    is_text_field: Callable[[str | None], bool],
) -> tuple[int, list[Term]]:
    """The longest run of plain one-token words from `start` that is a multi-word synonym."""
    if synonyms.longest < 2 or len(groups[start]) != 1:
        return 1, []
    field = groups[start][0].field
    tokens: list[str] = []
    for group in groups[start : start + synonyms.longest]:
        term = group[0]
        if len(group) != 1 or term.phrase or term.field != field or not is_text_field(field):
            break
        analyzed = tokenize(term.text)
        if len(analyzed) != 1:
            break
        tokens.append(analyzed[0])
    for length in range(len(tokens), 1, -1):
        key = tuple(tokens[:length])
        targets = synonyms.expansions.get(key)
        if targets:
            return length, _terms(targets, field, {key}, tokenize)
    return 1, []


def _single(
    synonyms: Synonyms,
    group: tuple[Term, ...],
    corrections: dict[str, tuple[str, ...]],
    tokenize: Tokenize,
    is_text_field: Callable[[str | None], bool],
) -> list[Term]:
    """Synonyms of each alternative of one group (a word, a quoted phrase, or a OR b), in its field."""
    terms: dict[Term, None] = {}
    for term in group:
        if not is_text_field(term.field):
            continue
        key = tuple(tokenize(term.text))
        keys = [key, *((c,) for c in corrections.get(term.text.lower(), ()))]
        typed = {tuple(tokenize(t.text)) for t in group if t.field == term.field}
        for lookup in keys:
            targets = synonyms.expansions.get(lookup, ())
            terms.update(dict.fromkeys(_terms(targets, term.field, typed, tokenize)))
    return list(terms)


def _terms(targets: tuple[str, ...], field: str | None, typed: set[tuple[str, ...]], tokenize: Tokenize) -> list[Term]:
    """Search terms for the synonyms, in the field the typed word targets; none already typed."""
    out = []
    for target in targets:
        key = tuple(tokenize(target))
        if key not in typed:
            out.append(Term(target, field, phrase=len(key) > 1))
    return out
