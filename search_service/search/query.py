"""The search-box language, parsed leniently, and turned into Tantivy queries.

Syntax: words (all must match), "quoted phrases", -excluded, a OR b, field:word. Anything
malformed (unbalanced quotes or parentheses, a lone '-', an unknown field) degrades to plain
words instead of failing: users type whatever they like into a search box.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import tantivy
from rapidfuzz.distance import OSA

from search_service.cache import LRUCache
from search_service.config import FieldConfig, IndexConfig
from search_service.index.schema import build_analyzers

_ITEM_RE = re.compile(r'(?P<neg>-)?(?:(?P<field>[A-Za-z_]+):)?(?:"(?P<phrase>[^"]*)"|(?P<word>[^\s"]+))')
# A prefix match must never outrank a real one: its score is a small constant.
APPROXIMATE_SCORE = 0.1
# A corrected typo counts for less than the same word spelled right.
CORRECTION_WEIGHT = 0.7
MAX_CORRECTIONS = 3
# The most frequent terms sharing a word's first two letters are the likely corrections.
CANDIDATES_PER_PREFIX = 300
CORRECTION_CACHE_SIZE = 10_000
# Synonyms' queries, per (synonyms, weight, boosts): a set of groups has only so many of them, and
# building one (analyzing it for every searched field) is most of what a widened query adds to planning.
SYNONYM_QUERY_CACHE_SIZE = 4096
# One-edit variants are spelled out (~54 per letter, each analyzed and looked up) only up to this
# length; longer words, rare in any language, take the cheaper dictionary walk.
MAX_SPELLED_OUT_LEN = 20
# Punctuation glued to a typed word ('cells,') is not part of it when its corrections are spelled out.
_EDGE_PUNCTUATION = string.punctuation + "\u2018\u2019\u201c\u201d"


@dataclass(frozen=True)
class Term:
    text: str
    field: str | None = None
    phrase: bool = False
    prefix: bool = False


@dataclass(frozen=True)
class ParsedQuery:
    groups: tuple[tuple[Term, ...], ...] = ()  # AND of ORs
    excluded: tuple[Term, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.groups and not self.excluded

    def positive_terms(self) -> list[Term]:
        return [term for group in self.groups for term in group]


@dataclass(frozen=True)
class Expansion:
    """Groups start..end of a query also match any of `terms` (synonyms), scored at `weight`."""

    start: int
    end: int
    terms: tuple[Term, ...]
    weight: float


def parse(text: str, known_fields: set[str], prefix: bool = False, max_terms: int = 64) -> ParsedQuery:
    """Parse leniently; words and phrases beyond `max_terms` are dropped (bounded work per query)."""
    text = unicodedata.normalize("NFC", text).replace("(", " ").replace(")", " ")
    if text.count('"') % 2:
        cut = text.rfind('"')
        text = text[:cut] + " " + text[cut + 1 :]
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    join_next = False
    for match in _ITEM_RE.finditer(text):
        neg, name, phrase, word = match.group("neg", "field", "phrase", "word")
        if word == "OR" and not neg and not name:
            join_next = bool(groups)
            continue
        terms = _terms(name, phrase, word, known_fields)
        if not terms:
            continue
        if sum(map(len, groups)) + len(excluded) + len(terms) > max_terms:
            break
        if neg:
            excluded.extend(terms)
        elif join_next and len(terms) == 1:
            groups[-1].append(terms[0])
        else:
            groups.extend([t] for t in terms)
        join_next = False
    if prefix and groups and text[-1:].strip():
        last = groups[-1][-1]
        if len(last.text) < 2 and last.text.isascii():
            # One letter typed so far says nothing yet: leave it out rather than match any 'o'.
            groups[-1].pop()
            if not groups[-1]:
                groups.pop()
        elif not last.phrase:
            groups[-1][-1] = Term(last.text, last.field, prefix=True)
    return ParsedQuery(tuple(tuple(g) for g in groups), tuple(excluded))


def _terms(name: str | None, phrase: str | None, word: str | None, known_fields: set[str]) -> list[Term]:
    value = phrase if phrase is not None else word or ""
    is_phrase = phrase is not None
    if name and name.lower() in known_fields:
        return [Term(value, name.lower(), is_phrase)] if _searchable(value) else []
    terms = [Term(name)] if name else []
    if _searchable(value):
        terms.append(Term(value, None, is_phrase))
    return terms


def _searchable(value: str) -> bool:
    # Punctuation, symbols and emoji alone index nothing: a query of only those is a browse.
    return any(ch.isalnum() for ch in value)


@dataclass
class QueryBuilder:
    """Builds Tantivy queries from parsed queries; made once per index config and schema."""

    config: IndexConfig
    schema: tantivy.Schema
    analyzers: dict[str, tantivy.TextAnalyzer] = field(init=False)
    boosts: dict[str, float] = field(init=False)
    fallback_boosts: dict[str, float] = field(init=False)
    fields_by_query_name: dict[str, FieldConfig] = field(init=False)

    def __post_init__(self) -> None:
        self.analyzers = build_analyzers(self.config)
        self.boosts = self.config.search_boosts()
        self.fallback_boosts = self.config.fallback_search_boosts()
        self.fields_by_query_name = self.config.query_names()
        self._analyzer_of = {f.name: f.analyzer for f in self.config.text_fields}
        for f in self.config.fields.values():
            if f.search_field:
                self._analyzer_of[f.search_field] = f.analyzer
        self._typo_fields = [f.name for f in self.config.text_fields if f.boost]
        self._corrected = LRUCache(CORRECTION_CACHE_SIZE)
        self._synonym_queries = LRUCache(SYNONYM_QUERY_CACHE_SIZE)

    @property
    def known_fields(self) -> set[str]:
        return set(self.fields_by_query_name)

    @property
    def typo_fields(self) -> list[str]:
        """The fields an untargeted word's corrections are looked up in (those searched by default)."""
        return list(self._typo_fields)

    def tokens(self, text: str, field_name: str) -> list[str]:
        return self.analyzers[self._analyzer_of[field_name]].analyze(text)

    def corrections(
        self, parsed: ParsedQuery, searcher: tantivy.Searcher, version: object = None, widen_rare: bool = False
    ) -> dict[str, tuple[str, ...]]:
        """For each query word the index does not know, the indexed terms it most likely means.

        A word found in typo_known_word_docs articles is taken as meant; with `widen_rare` (the
        any-word fallback, ranked after the articles holding every word as typed) only one found
        in typo_correction_min_docs. For the others (at most max_typo_words a
        query), the known terms that a one-edit variant of the word analyzes to are kept, most
        frequent first; failing those, the closest terms by edit distance among those sharing its
        first two letters. Searching those terms keeps BM25 ranking for typo'd queries, unlike
        tantivy's constant-score fuzzy queries.
        """
        ranking = self.config.ranking
        if not ranking.typo_tolerance:
            return {}
        found: dict[str, tuple[str, ...]] = {}
        unknown = 0
        for term in parsed.positive_terms():
            target = self.fields_by_query_name.get(term.field) if term.field else None
            if term.phrase or term.prefix or (target is not None and target.kind != "text"):
                continue
            word = term.text.lower()
            distance = typo_distance(word, ranking.one_typo_min_len, ranking.two_typos_min_len)
            fields = [target.name] if target is not None else self._typo_fields
            tokens = self.tokens(term.text, fields[0])
            if not distance or len(tokens) != 1 or word in found:
                continue
            known = ranking.typo_correction_min_docs if widen_rare else ranking.typo_known_word_docs
            if any(searcher.doc_freq(name, tokens[0]) >= known for name in fields):
                continue
            # Each unknown word costs a search for its corrections, found or not: bounded per query.
            unknown += 1
            if unknown > ranking.max_typo_words:
                break
            # Corrections depend only on the index's terms: cached per index version.
            candidates = self._corrected.get_or_compute(
                (version, tuple(fields), word),
                partial(self._closest_terms, searcher, fields, word, tokens[0], distance),
            )
            if candidates:
                found[word] = candidates
        return found

    def _closest_terms(
        self, searcher: tantivy.Searcher, fields: list[str], word: str, token: str, distance: int
    ) -> tuple[str, ...]:
        """The known terms one edit of the word analyzes to, most frequent first; else a dictionary walk."""
        one_edit = self._one_edit_terms(searcher, fields, word) if len(word) <= MAX_SPELLED_OUT_LEN else ()
        if one_edit:
            return one_edit
        return self._walked_terms(searcher, fields, word, token, distance)

    def _one_edit_terms(self, searcher: tantivy.Searcher, fields: list[str], word: str) -> tuple[str, ...]:
        # Every word one edit away goes through the analyzer, so a typo is compared with what its
        # fix would be indexed as ('interaciton' -> 'interaction' -> 'interact'), at any position.
        analyzer_name = self._analyzer_of[fields[0]]
        analyzer = self.analyzers[analyzer_name]
        fields = [name for name in fields if self._analyzer_of[name] == analyzer_name]
        known = self.config.ranking.typo_correction_min_docs
        frequencies: dict[str, int] = {}
        for variant in one_edit_words(word.strip(_EDGE_PUNCTUATION)):
            tokens = analyzer.analyze(variant)
            if len(tokens) != 1 or tokens[0] in frequencies:
                continue
            frequencies[tokens[0]] = max(searcher.doc_freq(name, tokens[0]) for name in fields)
        best = sorted((t for t, n in frequencies.items() if n >= known), key=lambda t: (-frequencies[t], t))
        return tuple(best[:MAX_CORRECTIONS])

    def _walked_terms(
        self, searcher: tantivy.Searcher, fields: list[str], word: str, token: str, distance: int
    ) -> tuple[str, ...]:
        frequencies: dict[str, int] = {}
        for name in fields:
            for start in dict.fromkeys([token[:2], token[1::-1]]):
                for indexed, count in searcher.terms_with_prefix(name, start, None, CANDIDATES_PER_PREFIX):
                    frequencies[indexed] = max(count, frequencies.get(indexed, 0))
        # Compare with the word as typed and as stemmed, and with the ending a stem would have
        # ('daisy' is indexed as 'daisi': two edits from 'daisey').
        forms = dict.fromkeys([word, token, word[:-1] + "i" if word.endswith("y") else word])
        scored = []
        for indexed, count in frequencies.items():
            edits = min(OSA.distance(form, indexed, score_cutoff=distance) for form in forms)
            if edits <= distance:
                # The rare word itself (0 edits) competes with one-edit corrections on frequency.
                scored.append((max(edits, 1), -count, indexed))
        scored.sort()
        best = [indexed for edits, _, indexed in scored if edits == scored[0][0]] if scored else []
        return tuple(best[:MAX_CORRECTIONS])

    def build(
        self,
        parsed: ParsedQuery,
        *,
        require_all: bool = True,
        corrections: dict[str, tuple[str, ...]] | None = None,
        expansions: tuple[Expansion, ...] = (),
        fields: frozenset[str] | None = None,
    ) -> tantivy.Query:
        """All words must match, ranked with the search boosts; or (the fallback for sentence
        queries) any, ranked with the fallback boosts. `expansions` widen groups with synonyms;
        `fields` (index field names) narrows the searched fields to those."""
        corrections = corrections or {}
        if parsed.is_empty:
            return tantivy.Query.all_query()
        boosts = self.boosts if require_all else self.fallback_boosts
        if fields is not None:
            boosts = {name: boost for name, boost in boosts.items() if name in fields}
        clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
        group_queries: list[tantivy.Query | None] = []
        for group in parsed.groups:
            alternatives = []
            for term in group:
                query = self.term(term, corrected=corrections.get(term.text.lower(), ()), boosts=boosts)
                if query is not None:
                    alternatives.append(query)
            group_queries.append(_any(alternatives) if alternatives else None)
        for expansion in expansions:
            self._expand(group_queries, expansion, boosts, require_all, fields)
        for query in group_queries:
            if query is not None:
                clauses.append((tantivy.Occur.Must if require_all else tantivy.Occur.Should, query))
        for term in parsed.excluded:
            query = self.term(term)
            if query is not None:
                clauses.append((tantivy.Occur.MustNot, query))
        if not any(occur != tantivy.Occur.MustNot for occur, _ in clauses):
            clauses.append((tantivy.Occur.Must, tantivy.Query.all_query()))
        return tantivy.Query.boolean_query(clauses)

    def _expand(
        self,
        group_queries: list[tantivy.Query | None],
        expansion: Expansion,
        boosts: dict[str, float],
        all_: bool,
        fields: frozenset[str] | None = None,
    ) -> None:
        """Groups start..end become one: (what was typed) OR any synonym, the synonyms weighted down."""
        typed = [q for q in group_queries[expansion.start : expansion.end] if q is not None]
        if len(typed) > 1:
            occur = tantivy.Occur.Must if all_ else tantivy.Occur.Should
            typed = [tantivy.Query.boolean_query([(occur, q) for q in typed])]
        key = (expansion.terms, expansion.weight, all_, fields)
        typed.extend(self._synonym_queries.get_or_compute(key, lambda: self._synonym_alternatives(expansion, boosts)))
        group_queries[expansion.start : expansion.end] = [_any(typed) if typed else None] + [None] * (
            expansion.end - expansion.start - 1
        )

    def _synonym_alternatives(self, expansion: Expansion, boosts: dict[str, float]) -> tuple[tantivy.Query, ...]:
        """The synonyms of an expansion, each over the fields of `boosts`, weighted down (a query is
        immutable: one built here serves every search that widens the same way)."""
        queries = (self.term(term, boosts=boosts) for term in expansion.terms)
        return tuple(tantivy.Query.boost_query(q, expansion.weight) for q in queries if q is not None)

    def term(
        self, term: Term, *, corrected: tuple[str, ...] = (), boosts: dict[str, float] | None = None
    ) -> tantivy.Query | None:
        """One word or phrase over the fields it targets (untargeted: the fields of `boosts`, by
        default the search boosts); None when it has no searchable token."""
        target = self.fields_by_query_name.get(term.field) if term.field else None
        if target is not None and target.kind == "keyword":
            return self._keyword(target, term.text)
        fields = {target.name: 1.0} if target is not None else boosts or self.boosts
        exact: list[tantivy.Query] = []
        approximate: list[tantivy.Query] = []
        for name, boost in fields.items():
            tokens = self.tokens(term.text, name)
            if not tokens:
                continue
            if len(tokens) > 1:
                exact.append(_boost(tantivy.Query.phrase_query(self.schema, name, tokens), boost))
                continue
            exact.append(_boost(tantivy.Query.term_query(self.schema, name, tokens[0]), boost))
            if term.prefix and len(term.text) >= 2:
                prefix = tantivy.Query.const_score_query(self._prefix(name, term.text.lower(), tokens[0]), boost)
                approximate.append(tantivy.Query.boost_query(prefix, APPROXIMATE_SCORE))
            elif corrected and (name in self._typo_fields or target is not None):
                approximate.extend(
                    _boost(tantivy.Query.term_query(self.schema, name, indexed), boost * CORRECTION_WEIGHT)
                    for indexed in corrected
                )
        if not exact:
            return None
        best = _any(exact)
        if not approximate:
            return best
        return tantivy.Query.disjunction_max_query([best, _any(approximate)])

    def _keyword(self, target: FieldConfig, value: str) -> tantivy.Query | None:
        value = value.strip()
        if not value:
            return None
        options = [tantivy.Query.term_query(self.schema, target.name, v) for v in dict.fromkeys([value, value.lower()])]
        if target.search_field:
            tokens = self.tokens(value, target.search_field)
            if len(tokens) == 1:
                options.append(tantivy.Query.term_query(self.schema, target.search_field, tokens[0]))
            elif tokens:
                options.append(tantivy.Query.phrase_query(self.schema, target.search_field, tokens))
        return _any(options)

    def _prefix(self, name: str, word: str, token: str) -> tantivy.Query:
        # Indexed terms are stems, which can be shorter than what has been typed so far
        # ("electio" -> stem "elect"): accept a term the typed text starts with, too.
        stems = [re.escape(word[:n]) for n in range(max(4, len(word) - 2), len(word))]
        pattern = "|".join([f"{re.escape(word)}.*", f"{re.escape(token)}.*", *stems])
        return tantivy.Query.regex_query(self.schema, name, pattern)


def one_edit_words(word: str) -> set[str]:
    """Every string one deletion, transposition, substitution or insertion (a-z) away from `word`.

    The first letter stays (a typo there is rare), except when the first two are swapped.
    """
    letters = string.ascii_lowercase
    splits = [(word[:i], word[i:]) for i in range(1, len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    swaps = {a + b[1] + b[0] + b[2:] for a, b in [("", word), *splits] if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in letters}
    inserts = {a + c + b for a, b in splits for c in letters}
    return (deletes | swaps | replaces | inserts) - {word}


def typo_distance(word: str, one_min: int, two_min: int) -> int:
    if len(word) >= two_min:
        return 2
    return 1 if len(word) >= one_min else 0


def any_term(schema: tantivy.Schema, field_name: str, values: list[str]) -> tantivy.Query:
    """Documents with any of `values` in the field, as a union of term queries.

    Not term_set_query: that one reads every posting of every value into a bit set before it
    can answer (~0.2 ms for a few common words, or a few slugs among 20,000), where a union of
    term queries is only advanced to the documents the other clauses of an intersection allow.
    """
    return _any([tantivy.Query.term_query(schema, field_name, value) for value in values])


def _any(queries: list[tantivy.Query]) -> tantivy.Query:
    if len(queries) == 1:
        return queries[0]
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in queries])


def _boost(query: tantivy.Query, boost: float) -> tantivy.Query:
    return query if boost == 1.0 else tantivy.Query.boost_query(query, boost)


def corrected_text(
    text: str,
    corrections: dict[str, tuple[str, ...]],
    analyze: Callable[[str], list[str]],
    known: Callable[[str], bool] = lambda token: False,
) -> str:
    """The query as the model should read it: each word that the lexical stage corrected and that
    no article has (`known(token)` false: a typo, not a rare word) spelled as its first
    correction, the one-edit spelling that analyzes to it (how it was found), else the corrected
    term itself. The model reads a typo as unrelated word pieces."""
    if not corrections:
        return text
    words = []
    for word in text.split():
        core = word.strip(string.punctuation).lower()
        fixes = corrections.get(core)
        if fixes and not any(known(token) for token in analyze(core)):
            word = spelling_of(core, fixes[0], analyze)
        words.append(word)
    return " ".join(words)


def spelling_of(word: str, term: str, analyze: Callable[[str], list[str]]) -> str:
    """How a correction reads: the shortest one-edit spelling of `word` that analyzes to the indexed
    `term` (how it was found: 'interaciton' -> 'interaction', not the stem 'interact'), else `term`."""
    spelled = sorted((v for v in one_edit_words(word) if analyze(v) == [term]), key=lambda v: (len(v), v))
    return spelled[0] if spelled else term


@dataclass(frozen=True)
class PrebuiltFilter:
    """A filter query built outside the engine (the Meilisearch API's filter language), ANDed with
    a request's others; `key` (its normalized text) stands for it in cache keys."""

    key: str
    query: tantivy.Query = field(compare=False, hash=False)
