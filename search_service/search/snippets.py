"""Highlighted titles and snippets: HTML-escaped article text whose only markup is <mark>.

Tantivy's SnippetGenerator picks the best window quickly but only knows the exact terms of the
query, and emits <b>. We use it to place the window, then mark words ourselves with the same
analyzer the index uses, so stemmed, phrase, typo and prefix matches are all highlighted.

The generator tokenizes all the text it is given (~40 µs per KB, stemming included), and given a
stored document it first copies every field of it: on a 30 KB article that is milliseconds per
hit. So it is handed small documents holding only the text it needs: the title, and the first
FIRST_WINDOW characters of the body, where the match of a ranked hit usually is. When that window
has none, the search asks the index which of those hits have a match in the body at all (one small
query for all of them), and for those a regex scan (C speed, no tokenizing) finds the first word
that can match; the generator then picks the best fragment near it. A multi-word query whose rarest
word (tantivy weighs fragments by rarity) the first window's fragment lacks gets the fragment near
that word's first place, found the same way. Only when the scan finds nothing the index knows of (a
folded accent, an irregular stem) does the generator see the whole body.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import tantivy

from search_service.ingest.render import CJK_RUN
from search_service.search.query import ParsedQuery, QueryBuilder, Term, any_term

ELLIPSIS = "…"
# The start of a body handed to the SnippetGenerator for every hit: a whole Reuters wire (90% are
# shorter), the lede and first sections of a long article.
FIRST_WINDOW = 2_000
# Text either side of a match found further in, from which the generator picks the fragment.
NEAR_CHARS = 500
# A scan verifies at most this many candidate words (each is analyzed) before handing over to the generator.
MAX_CANDIDATES = 64
# Where a word (a run of letters and digits, as the simple tokenizer cuts them) starts, and its rest.
_WORD_START = r"(?<![^\W_])"
_WORD_REST = re.compile(r"[^\W_]*")


@dataclass
class Matcher:
    """Decides which analyzed tokens of a text match the query."""

    exact: set[str] = field(default_factory=set)
    phrases: set[tuple[str, ...]] = field(default_factory=set)  # multi-token terms match only as a run
    prefixes: list[str] = field(default_factory=list)
    substrings: set[str] = field(default_factory=set)  # CJK runs, matched as they are written
    # Tokens of terms aimed at another field (title:word): marked where they are, never sought in the body.
    elsewhere: set[str] = field(default_factory=set)
    # Per word of the query sought in the body, the tokens that match it (its stem, its corrections).
    groups: list[set[str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.exact or self.phrases or self.prefixes or self.substrings)

    def matches(self, token: str, word: str) -> bool:
        if token in self.exact:
            return True
        for prefix in self.prefixes:
            if word.startswith(prefix) or (prefix.startswith(token) and len(token) >= max(3, len(prefix) - 3)):
                return True
        return False

    def words(self) -> set[str]:
        """Every token a match in the body can be made of: exact tokens and the tokens of phrases."""
        return self.exact.union(*self.phrases) - self.elsewhere

    def flags(self, tokens: list[str], words: list[str]) -> list[bool]:
        """For each token, whether it is (part of) a match."""
        flags = [self.matches(t, w) for t, w in zip(tokens, words, strict=True)]
        for phrase in self.phrases:
            n = len(phrase)
            for i in range(len(tokens) - n + 1):
                if tokens[i] == phrase[0] and tuple(tokens[i : i + n]) == phrase:
                    flags[i : i + n] = [True] * n
        return flags


def build_matcher(
    parsed: ParsedQuery,
    builder: QueryBuilder,
    field_name: str,
    corrections: dict[str, tuple[str, ...]],
    synonyms: tuple[Term, ...] = (),
) -> Matcher:
    """`synonyms`: words and phrases searched for the query's words, highlighted like them."""
    matcher = Matcher()
    here: set[str] = set()
    typed = parsed.positive_terms()
    for i, term in enumerate((*typed, *synonyms)):
        target = builder.fields_by_query_name.get(term.field) if term.field else None
        if target is not None and target.kind != "text":
            continue
        matcher.substrings.update(CJK_RUN.findall(term.text))
        tokens = builder.tokens(term.text, field_name)
        elsewhere = target is not None and target.name != field_name
        (matcher.elsewhere if elsewhere else here).update(tokens)
        # Groups are the typed words (the rarest one places the snippet); a synonym is only marked.
        if not elsewhere and i < len(typed):
            matcher.groups.extend({token, *corrections.get(term.text.lower(), ())} for token in tokens)
        if len(tokens) > 1:
            matcher.phrases.add(tuple(tokens))
        matcher.exact.update(tokens if len(tokens) == 1 else ())
        word = term.text.lower()
        if len(tokens) == 1 and term.prefix and len(word) >= 2:
            matcher.prefixes.append(word)
        # A corrected typo highlights the words it was corrected to (they share the indexed stem).
        matcher.exact.update(corrections.get(word, ()))
    matcher.elsewhere -= here
    return matcher


@dataclass
class Highlighter:
    analyzer: tantivy.TextAnalyzer
    matcher: Matcher
    max_chars: int = 200
    _locator: Locator | None = field(default=None, init=False, repr=False)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character ranges of matching words, adjacent ones merged."""
        if not self.matcher or not text:
            return []
        tokens = self.analyzer.pre_tokenize(text).tokens
        offsets = [(t.char_offset_from, t.char_offset_to) for t in tokens]
        flags = self.matcher.flags([t.text for t in tokens], [text[s:e].lower() for s, e in offsets])
        found = [offset for offset, flagged in zip(offsets, flags, strict=True) if flagged]
        if self.matcher.substrings and not text.isascii():
            found = sorted(found + _occurrences(text, self.matcher.substrings))
        return merge_spans(text, found)

    @property
    def tantivy_can_mark(self) -> bool:
        """Tantivy's own snippets mark every exact word and corrected typo; prefixes and CJK
        substrings need the Python scan."""
        return not self.matcher.prefixes and not self.matcher.substrings

    def mark(self, text: str, snippet: tantivy.Snippet | None = None) -> str:
        """`text` escaped, matches in <mark>; from tantivy's snippet of the whole text when given."""
        if snippet is not None:
            return render(text, tantivy_spans(text, snippet))
        return render(text, self.spans(text))

    def snippet(self, body: str, summary: str, fragment: tantivy.Snippet | None, window: str = "") -> str | None:
        """A window of about max_chars around the best match in body, else summary, else body's start.

        `fragment` is tantivy's best fragment of `window`, the start of body (all of it by default).
        When the window is shorter than body and holds no match, returns None: the match, if any,
        is further in (see Snippets.further)."""
        window = window or body
        if fragment is not None and fragment.highlighted():
            start, end = _char_range(window, fragment.fragment_range())
            return self._cut(body, start, end, tantivy_spans(window, fragment) if self.tantivy_can_mark else None)
        if not self.tantivy_can_mark:
            found = self.locate(window)
            if found is not None:
                return self._cut(body, *self._around(found))
        if len(window) < len(body):
            return None
        return self.fallback(body, summary)

    def fallback(self, body: str, summary: str) -> str:
        """The snippet of a hit whose body has no match: summary, else the body's start."""
        if summary:
            return self._cut(summary, 0, self.max_chars)
        return self._cut(body, 0, self.max_chars)

    def locate(self, text: str) -> int | None:
        """Where the first word of `text` that matches starts, found without tokenizing the text."""
        return self.locator.first(text) if self.locator is not None else None

    @property
    def locator(self) -> Locator | None:
        if self._locator is None and self.matcher:
            self._locator = Locator(self.analyzer, self.matcher)
        return self._locator

    def _around(self, position: int) -> tuple[int, int]:
        start = max(0, position - self.max_chars // 4)
        return start, start + self.max_chars

    def _cut(self, text: str, start: int, end: int, spans: list[tuple[int, int]] | None = None) -> str:
        """text[start:end] widened or narrowed to whole words, with … where text goes on.

        `spans` are matches in `text` when already known; otherwise the piece is scanned."""
        end = min(len(text), max(end, start + 1))
        if start > 0 and not text[start - 1].isspace():
            space = text.find(" ", start, end)
            start = space + 1 if space != -1 else start
        if end < len(text) and not text[end].isspace():
            space = text.rfind(" ", start, end)
            end = space if space > start else end
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start == end:
            return ""
        piece = text[start:end]
        if spans is None:
            spans = self.spans(piece)
        else:
            spans = [(max(s, start) - start, min(e, end) - start) for s, e in spans if s < end and e > start]
        head = ELLIPSIS if start > 0 else ""
        tail = ELLIPSIS if end < len(text.rstrip()) else ""
        return head + render(piece, spans) + tail


class Locator:
    """Finds the first word of a text that the matcher accepts, by a regex scan (C speed, no tokenizing).

    Candidates are words starting like a match: an indexed token with its last two letters cut
    (stems drop or change endings: rates -> rate, happy -> happi), a typed prefix, or the part of
    a prefix long enough for a stem match. Each candidate word is analyzed and asked of the
    matcher, so a candidate is never taken for a match it is not. A match whose surface form does
    not start like its token (a folded accent) is not found: callers fall back to the tokenizer.
    """

    def __init__(self, analyzer: tantivy.TextAnalyzer, matcher: Matcher) -> None:
        self.analyzer = analyzer
        self.matcher = matcher
        self.words = matcher.words()
        starts = {token[: max(3, len(token) - 2)] for token in self.words}
        for prefix in matcher.prefixes:
            starts.update(prefix[:n] for n in range(max(3, len(prefix) - 3), len(prefix) + 1))
        starts = {start for start in starts if start}
        alternatives = "|".join(re.escape(start) for start in sorted(starts, key=len, reverse=True))
        self.pattern = re.compile(_WORD_START + f"(?:{alternatives})", re.IGNORECASE) if alternatives else None

    def first(self, text: str) -> int | None:
        found = [self._first_word(text)]
        if self.matcher.substrings and not text.isascii():
            found.extend(start for start, _ in _occurrences(text, self.matcher.substrings))
        found = [position for position in found if position is not None]
        return min(found) if found else None

    def _first_word(self, text: str) -> int | None:
        if self.pattern is None:
            return None
        for checked, match in enumerate(self.pattern.finditer(text)):
            if checked >= MAX_CANDIDATES:
                return None
            start = match.start()
            word = text[start : _WORD_REST.match(text, match.end()).end()]
            tokens = self.analyzer.analyze(word)
            if len(tokens) == 1 and (tokens[0] in self.words or self.matcher.matches(tokens[0], word.lower())):
                return start
        return None


@dataclass
class Snippets:
    """One search's highlights: the highlighter, and tantivy's generators for title and body (None
    when the query has no exact word for them to mark)."""

    highlighter: Highlighter
    schema: tantivy.Schema
    title_field: str
    body_field: str
    title_generator: tantivy.SnippetGenerator | None = None
    body_generator: tantivy.SnippetGenerator | None = None
    # The tokens of the query's rarest word: what a snippet of a multi-word query should show.
    key: set[str] | None = None
    _key: Locator | None = field(default=None, init=False, repr=False)

    def weigh(self, searcher: tantivy.Searcher) -> None:
        """Find the query's rarest word (fewest articles with it in the body), as tantivy weighs fragments."""
        groups = self.highlighter.matcher.groups
        if len(groups) > 1:
            self.key = min(groups, key=lambda g: sum(searcher.doc_freq(self.body_field, t) for t in g))

    def title(self, title: str) -> str:
        if self.title_generator is None:
            return self.highlighter.mark(title)
        return self.highlighter.mark(title, self.title_generator.snippet_from_doc(_doc(self.title_field, title)))

    def first(self, body: str, summary: str) -> str | None:
        """The snippet from the start of body; None when a body longer than FIRST_WINDOW has no
        match there (then `further` looks on, if `body_matches` says there is one)."""
        if len(body) <= FIRST_WINDOW:
            return self.highlighter.snippet(body, summary, self._fragment(body))
        window = _window_end(body, FIRST_WINDOW)
        fragment = self._fragment(window)
        if fragment is not None and not self._shows_key(window, fragment):
            # The window shows common words of the query but not its rarest, which tantivy weighs
            # most: take the fragment around the rarest word's first place further in, if it has one.
            position = self._key_locator().first(body)
            near = self._near(body, position) if position is not None else None
            if near is not None:
                return near
            # Not found by the scan (not in the body, or folded: Zürich for zurich): walk it all.
            fragment, window = self._fragment(body), body
        return self.highlighter.snippet(body, summary, fragment, window)

    def _key_locator(self) -> Locator:
        if self._key is None:
            self._key = Locator(self.highlighter.analyzer, Matcher(exact=set(self.key or ())))
        return self._key

    def _near(self, body: str, position: int) -> str | None:
        """The best fragment of the text around `position`; None when the generator marks nothing there."""
        start = _window_start(body, position - NEAR_CHARS)
        near = _window_end(body, position + NEAR_CHARS, start)
        fragment = self._fragment(near)
        if fragment is None or not fragment.highlighted():
            return None
        begin, end = _char_range(near, fragment.fragment_range())
        spans = tantivy_spans(near, fragment) if self.highlighter.tantivy_can_mark else None
        spans = [(a + start, b + start) for a, b in spans] if spans is not None else None
        return self.highlighter._cut(body, begin + start, end + start, spans)

    def _shows_key(self, window: str, fragment: tantivy.Snippet) -> bool:
        if self.key is None or not fragment.highlighted() or not self.highlighter.tantivy_can_mark:
            return True
        analyze = self.highlighter.analyzer.analyze
        return any(not self.key.isdisjoint(analyze(window[a:b])) for a, b in tantivy_spans(window, fragment))

    def further(self, body: str, summary: str, has_match: bool) -> str:
        """The snippet of a long body whose first window has no match."""
        highlighter = self.highlighter
        if not has_match:
            return highlighter.fallback(body, summary)
        position = highlighter.locate(body)
        if position is not None:
            near = self._near(body, position)
            if near is not None:
                return near
            if not highlighter.tantivy_can_mark:  # a prefix or CJK match, which only we can mark
                return highlighter._cut(body, *highlighter._around(position))
        # The index knows a match the scan cannot see: let the generator walk the whole body.
        return highlighter.snippet(body, summary, self._fragment(body)) or highlighter.fallback(body, summary)

    def body_matches(self, searcher: tantivy.Searcher, key_field: str, keys: list[str]) -> set[tuple[int, int]]:
        """Addresses (segment, doc) of the articles among `keys` whose body has a word the
        highlighter marks: one query for all the hits whose first window had none."""
        matcher = self.highlighter.matcher
        index_schema = self.schema
        clauses = []
        words = sorted(matcher.words())
        if words:
            clauses.append(any_term(index_schema, self.body_field, words))
        for prefix in matcher.prefixes:
            clauses.append(tantivy.Query.regex_query(index_schema, self.body_field, _prefix_pattern(prefix)))
        if not clauses:
            return set()
        query = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, any_term(index_schema, key_field, keys)),
                (tantivy.Occur.Must, tantivy.Query.boolean_query([(tantivy.Occur.Should, c) for c in clauses])),
            ]
        )
        result = searcher.search(query, len(keys), count=False)
        return {(address.segment_ord, address.doc) for _, address in result.hits}

    def _fragment(self, text: str) -> tantivy.Snippet | None:
        if self.body_generator is None:
            return None
        return self.body_generator.snippet_from_doc(_doc(self.body_field, text))


def _prefix_pattern(prefix: str) -> str:
    """Indexed terms the matcher takes for `prefix`: those it starts, and stems it starts with."""
    stems = [re.escape(prefix[:n]) for n in range(max(3, len(prefix) - 3), len(prefix))]
    return "|".join([f"{re.escape(prefix)}.*", *stems])


def _doc(field_name: str, text: str) -> tantivy.Document:
    # Only the text the generator needs: given a stored document it copies every field first.
    doc = tantivy.Document()
    doc.add_text(field_name, text)
    return doc


def _window_end(text: str, end: int, start: int = 0) -> str:
    """text[start:end], ended before the word that `end` cuts (a piece of a word could match)."""
    if end >= len(text):
        return text[start:]
    space = text.rfind(" ", start, end)
    return text[start : space if space > start else end]


def _window_start(text: str, start: int) -> int:
    if start <= 0:
        return 0
    space = text.find(" ", start)
    return space + 1 if space != -1 else start


def merge_spans(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans with overlapping ones, and those only whitespace apart, joined: a phrase is one mark."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and (start <= merged[-1][1] or not text[merged[-1][1] : start].strip()):
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def tantivy_spans(text: str, snippet: tantivy.Snippet) -> list[tuple[int, int]]:
    """Tantivy's highlighted ranges (UTF-8 bytes in its fragment) as character ranges in `text`."""
    base = snippet.fragment_range().start
    ranges = [(base + h.start, base + h.end) for h in snippet.highlighted()]
    if not text.isascii():
        encoded = text.encode("utf-8")
        ranges = [(_chars(encoded, start), _chars(encoded, end)) for start, end in ranges]
    return merge_spans(text, ranges)


def _char_range(text: str, byte_range: Any) -> tuple[int, int]:
    if text.isascii():
        return byte_range.start, byte_range.end
    encoded = text.encode("utf-8")
    return _chars(encoded, byte_range.start), _chars(encoded, byte_range.end)


def _chars(encoded: bytes, offset: int) -> int:
    # "ignore" drops a partial character, so an offset inside one never splits it.
    return len(encoded[:offset].decode("utf-8", "ignore"))


def _occurrences(text: str, needles: Iterable[str]) -> list[tuple[int, int]]:
    found = []
    for needle in needles:
        start = text.find(needle)
        while start != -1:
            found.append((start, start + len(needle)))
            start = text.find(needle, start + len(needle))
    return found


def render(text: str, spans: Iterable[tuple[int, int]]) -> str:
    out: list[str] = []
    position = 0
    for start, end in spans:
        out.append(html.escape(text[position:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        position = end
    out.append(html.escape(text[position:]))
    return "".join(out)
