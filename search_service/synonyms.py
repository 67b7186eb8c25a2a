"""Synonyms managed at run time: validated at the edge, compiled per version, expanded per query.

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

from pydantic import BaseModel, ConfigDict, Field

from .errors import InvalidParameterError
from .query import Expansion, ParsedQuery, Term

# A word found only through a synonym counts for less than the word typed.
SYNONYM_WEIGHT = 0.7
MAX_PER_SPAN = 8
MAX_PER_QUERY = 32
# A synonym is a word or a short phrase: longer ones are almost certainly a paste error.
MAX_SYNONYM_TOKENS = 5
MAX_WORD_CHARS = 200

Tokenize = Callable[[str], list[str]]


class SynonymGroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root: str | None = Field(None, description="One-way: searching the root also finds the words, not the reverse.")
    words: list[str] = Field(description="Multi-way without a root: each word finds the others.")


class SynonymSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    synonyms: list[SynonymGroupIn]
    version: int | None = Field(None, description="When given, the live version this edit was based on (else 409).")
    updated_at: str | None = Field(None, description="Ignored: GET's output can be PUT back as it is.")


@dataclass(frozen=True)
class SynonymLimits:
    max_groups: int = 1000
    max_words: int = 20


def validate_synonyms(payload: SynonymSetIn, limits: SynonymLimits, tokenize: Tokenize) -> list[dict[str, Any]]:
    """The groups as stored (words trimmed, duplicates dropped); a 422 naming the first problem."""
    if len(payload.synonyms) > limits.max_groups:
        raise InvalidParameterError("synonyms", f"at most {limits.max_groups} groups (got {len(payload.synonyms)})")
    out = []
    for i, group in enumerate(payload.synonyms):
        where = f"synonyms[{i}]"
        words = list(dict.fromkeys(_word(f"{where}.words[{j}]", w, tokenize) for j, w in enumerate(group.words)))
        if not words:
            problem = "a root without words" if group.root is not None else "an empty group"
            raise InvalidParameterError(f"{where}.words", f"{problem}: give at least one word")
        if len(words) > limits.max_words:
            raise InvalidParameterError(f"{where}.words", f"at most {limits.max_words} words in a group")
        if group.root is None:
            if len(words) < 2:
                raise InvalidParameterError(
                    f"{where}.words", "a multi-way group needs at least two different words (or give a root)"
                )
            out.append({"words": words})
            continue
        root = _word(f"{where}.root", group.root, tokenize)
        words = [w for w in words if tokenize(w) != tokenize(root)]
        if not words:
            raise InvalidParameterError(f"{where}.words", "a root without words: the only word is the root itself")
        out.append({"root": root, "words": words})
    return out


def _word(where: str, word: str, tokenize: Tokenize) -> str:
    word = " ".join(word.split())
    if not word:
        raise InvalidParameterError(where, "empty word")
    if len(word) > MAX_WORD_CHARS:
        raise InvalidParameterError(where, f"at most {MAX_WORD_CHARS} characters")
    tokens = tokenize(word)
    if not tokens:
        raise InvalidParameterError(where, f"{word[:40]!r} has no searchable word")
    if len(tokens) > MAX_SYNONYM_TOKENS:
        raise InvalidParameterError(where, f"at most {MAX_SYNONYM_TOKENS} words in one synonym")
    return word


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
