"""Highlighted titles and snippets: HTML-escaped article text whose only markup is <mark>.

Tantivy's SnippetGenerator picks the best window quickly but only knows the exact terms of the
query, and emits <b>. We use it to place the window, then mark words ourselves with the same
analyzer the index uses, so stemmed, phrase, typo and prefix matches are all highlighted.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import tantivy

from .query import ParsedQuery, QueryBuilder, Term
from .render import CJK_RUN

ELLIPSIS = "…"
# How far into a long text we look for a typo or prefix match the SnippetGenerator cannot see.
SCAN_CHARS = 20_000


@dataclass
class Matcher:
    """Decides which analyzed tokens of a text match the query."""

    exact: set[str] = field(default_factory=set)
    phrases: set[tuple[str, ...]] = field(default_factory=set)  # multi-token terms match only as a run
    prefixes: list[str] = field(default_factory=list)
    substrings: set[str] = field(default_factory=set)  # CJK runs, matched as they are written

    def __bool__(self) -> bool:
        return bool(self.exact or self.phrases or self.prefixes or self.substrings)

    def matches(self, token: str, word: str) -> bool:
        if token in self.exact:
            return True
        for prefix in self.prefixes:
            if word.startswith(prefix) or (prefix.startswith(token) and len(token) >= max(3, len(prefix) - 3)):
                return True
        return False

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
    for term in (*parsed.positive_terms(), *synonyms):
        target = builder.fields_by_query_name.get(term.field) if term.field else None
        if target is not None and target.kind != "text":
            continue
        matcher.substrings.update(CJK_RUN.findall(term.text))
        tokens = builder.tokens(term.text, field_name)
        if len(tokens) > 1:
            matcher.phrases.add(tuple(tokens))
        matcher.exact.update(tokens if len(tokens) == 1 else ())
        word = term.text.lower()
        if len(tokens) == 1 and term.prefix and len(word) >= 2:
            matcher.prefixes.append(word)
        # A corrected typo highlights the words it was corrected to (they share the indexed stem).
        matcher.exact.update(corrections.get(word, ()))
    return matcher


@dataclass
class Highlighter:
    analyzer: tantivy.TextAnalyzer
    matcher: Matcher
    max_chars: int = 200

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

    def snippet(self, body: str, summary: str, fragment: tantivy.Snippet | None) -> str:
        """A window of about max_chars around the best match in body, else summary, else body's start."""
        if fragment is not None and fragment.highlighted():
            start, end = _char_range(body, fragment.fragment_range())
            return self._cut(body, start, end, tantivy_spans(body, fragment) if self.tantivy_can_mark else None)
        if not self.tantivy_can_mark:
            window = self._window_from_scan(body)
            if window is not None:
                return self._cut(body, *window)
        if summary:
            return self._cut(summary, 0, self.max_chars)
        return self._cut(body, 0, self.max_chars)

    def _window_from_scan(self, body: str) -> tuple[int, int] | None:
        spans = self.spans(body[:SCAN_CHARS])
        if not spans:
            return None
        first = spans[0][0]
        start = max(0, first - self.max_chars // 4)
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
