"""Highlighted titles and snippets: HTML-escaped article text whose only markup is <mark>.

Tantivy's SnippetGenerator picks the best window quickly but only knows the exact terms of the
query, and emits <b>. We use it to place the window, then mark words ourselves with the same
analyzer the index uses, so stemmed, phrase, typo and prefix matches are all highlighted.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field

import tantivy

from .query import ParsedQuery, QueryBuilder
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
    parsed: ParsedQuery, builder: QueryBuilder, field_name: str, corrections: dict[str, tuple[str, ...]]
) -> Matcher:
    matcher = Matcher()
    for term in parsed.positive_terms():
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
        spans: list[tuple[int, int]] = []
        for start, end in found:
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            elif spans and text[spans[-1][1] : start].strip() == "":
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        return spans

    def mark(self, text: str) -> str:
        return render(text, self.spans(text))

    def snippet(self, body: str, summary: str, fragment: tantivy.Snippet | None) -> str:
        """A window of about max_chars around the best match in body, else summary, else body's start."""
        window = self._window_from_fragment(body, fragment) or self._window_from_scan(body)
        if window is not None:
            return self._cut(body, *window)
        if summary:
            return self._cut(summary, 0, self.max_chars)
        return self._cut(body, 0, self.max_chars)

    def _window_from_fragment(self, body: str, fragment: tantivy.Snippet | None) -> tuple[int, int] | None:
        if fragment is None or not fragment.highlighted():
            return None
        byte_range = fragment.fragment_range()
        if body.isascii():
            return byte_range.start, byte_range.end
        encoded = body.encode("utf-8")
        start = len(encoded[: byte_range.start].decode("utf-8", "ignore"))
        return start, start + len(encoded[byte_range.start : byte_range.end].decode("utf-8", "ignore"))

    def _window_from_scan(self, body: str) -> tuple[int, int] | None:
        spans = self.spans(body[:SCAN_CHARS])
        if not spans:
            return None
        first = spans[0][0]
        start = max(0, first - self.max_chars // 4)
        return start, start + self.max_chars

    def _cut(self, text: str, start: int, end: int) -> str:
        """text[start:end] widened or narrowed to whole words, with … where text goes on."""
        end = min(len(text), max(end, start + 1))
        if start > 0 and not text[start - 1].isspace():
            space = text.find(" ", start, end)
            start = space + 1 if space != -1 else start
        if end < len(text) and not text[end].isspace():
            space = text.rfind(" ", start, end)
            end = space if space > start else end
        piece = text[start:end].strip()
        if not piece:
            return ""
        spans = self.spans(piece)
        head = ELLIPSIS if start > 0 else ""
        tail = ELLIPSIS if end < len(text.rstrip()) else ""
        return head + render(piece, spans) + tail


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
