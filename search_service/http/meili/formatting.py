"""A hit's `_formatted`: its attributes with the query's words between the highlight tags, and
the attributes to crop cut to `cropLength` words around the first match, as Meilisearch does.

Text is not HTML-escaped (Meilisearch does not escape; InstantSearch escapes what it renders
and swaps its own tags in). The words marked are those the engine's highlighter finds: typo
corrections, synonyms and stems included, exactly as /search highlights them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from search_service.search.snippets import Highlighter, merge_spans

Spans = Callable[[str], list[tuple[int, int]]]
_WORD = re.compile(r"\S+")
_WORD_REST = re.compile(r"[^\W_]*")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def fast_spans(highlighter: Highlighter) -> Spans:
    """`highlighter.spans`, fast on whole documents: only words that start like a query token can
    match (a stem keeps its word's first letters; a prefix match shares its first three), or
    whose first letters are not ASCII (folding may make them so), so only those are analyzed, each
    distinct word once per response. Phrases and CJK substrings, which need every token, take the
    highlighter's full scan."""
    matcher = highlighter.matcher
    heads = sorted({t[:3] for t in matcher.exact} | {p[:3] for p in matcher.prefixes})
    if matcher.phrases or matcher.substrings or not heads:
        return highlighter.spans
    find = WordStarts(heads)
    decided: dict[str, bool] = {}

    def spans(text: str) -> list[tuple[int, int]]:
        found = []
        for start, end in find(text):
            word = text[start:end].lower()
            ok = decided.get(word)
            if ok is None:
                tokens = highlighter.analyzer.analyze(word)
                ok = decided[word] = len(tokens) == 1 and matcher.matches(tokens[0], word)
            if ok:
                found.append((start, end))
        return merge_spans(text, found)

    return spans


class WordStarts:
    """The words of a text (letters and digits, as the simple tokenizer cuts them) that start with
    one of `heads` (lower case), or whose first three letters hold one that is not ASCII.

    On a 6 KB body this is 2.7x faster than one regular expression doing the same (86 against
    236 us): the heads are found with str.find on the lowered text, and non-ASCII letters, which
    are rare, with a one-character class. The regular expression remains for the texts whose
    lowering changes their length (a few letters, like U+0130, lower to two characters)."""

    def __init__(self, heads: list[str]) -> None:
        self.heads = heads
        alternatives = "|".join(re.escape(h) for h in heads)
        self.pattern = re.compile(
            rf"(?<![^\W_])(?:{alternatives}|[^\W_]{{0,2}}(?=[^\W_])[^\x00-\x7f])[^\W_]*", re.IGNORECASE
        )

    def __call__(self, text: str) -> list[tuple[int, int]]:
        low = text.lower()
        if len(low) != len(text):
            return [m.span() for m in self.pattern.finditer(text)]
        starts = set()
        for head in self.heads:
            at = low.find(head)
            while at >= 0:
                if at == 0 or not low[at - 1].isalnum():
                    starts.add(at)
                at = low.find(head, at + 1)
        if not text.isascii():
            for match in _NON_ASCII.finditer(text):
                at = start = match.start()
                if not text[at].isalnum():
                    continue
                while start > 0 and at - start < 3 and text[start - 1].isalnum():
                    start -= 1
                if at - start <= 2 and (start == 0 or not text[start - 1].isalnum()):
                    starts.add(start)
        return [(start, _WORD_REST.match(text, start).end()) for start in sorted(starts)]


@dataclass(frozen=True)
class FormatOptions:
    highlight: frozenset[str] | None  # attribute names; None: every attribute ("*")
    crop: dict[str, int | None]  # attribute -> words (None: crop_length); {"*": n} crops every attribute
    crop_length: int = 10
    crop_marker: str = "…"
    pre_tag: str = "<em>"
    post_tag: str = "</em>"

    def wants_highlight(self, attribute: str) -> bool:
        return self.highlight is None or attribute in self.highlight

    def crop_words(self, attribute: str) -> int | None:
        if attribute in self.crop:
            return self.crop[attribute] or self.crop_length
        if "*" in self.crop:
            return self.crop["*"] or self.crop_length
        return None


def formatted(document: dict[str, Any], options: FormatOptions, spans: Spans | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute, value in document.items():
        mark = spans is not None and options.wants_highlight(attribute)
        words = options.crop_words(attribute)
        out[attribute] = _value(value, options, spans if mark else None, words)
    return out


def _value(value: Any, options: FormatOptions, spans: Spans | None, words: int | None) -> Any:
    if isinstance(value, str):
        return format_text(value, options, spans, words)
    if isinstance(value, list):
        return [_value(v, options, spans, words) for v in value]
    if isinstance(value, dict):
        return {k: _value(v, options, spans, words) for k, v in value.items()}
    # Numbers, booleans and null come back as strings in Meilisearch's _formatted.
    return value if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def format_text(text: str, options: FormatOptions, spans: Spans | None, words: int | None) -> str:
    found = spans(text) if spans is not None else []
    start, end = 0, len(text)
    prefix = suffix = ""
    if words is not None:
        start, end = _window(text, found, words)
        prefix = options.crop_marker if start > 0 else ""
        suffix = options.crop_marker if end < len(text.rstrip()) else ""
    out, at = [prefix], start
    if spans is not None:
        for s, e in found:
            if e <= start or s >= end:
                continue
            s, e = max(s, start), min(e, end)
            out += [text[at:s], options.pre_tag, text[s:e], options.post_tag]
            at = e
    out += [text[at:end], suffix]
    return "".join(out)


def _window(text: str, found: list[tuple[int, int]], words: int) -> tuple[int, int]:
    """Character range of `words` words: starting a little before the first match, else the text's start."""
    tokens = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    if len(tokens) <= words:
        return (tokens[0][0], tokens[-1][1]) if tokens else (0, len(text))
    first = 0
    if found:
        first = next((i for i, (s, e) in enumerate(tokens) if e > found[0][0]), 0)
        # Centre the first match, as Meilisearch does, without running past the text's end.
        first = max(0, min(first - (words - 1) // 2, len(tokens) - words))
    last = first + words - 1
    return tokens[first][0], tokens[last][1]
