"""Content rules: the parts of a feed's bodies that are not the article (promos, the feed's own notes).

`[content]` in index_config/schema.toml names sections to drop by their heading and paragraphs to
drop by pattern. They are applied where markdown becomes the plain text that is indexed and cut
into snippets (render.markdown_to_text); the stored `body_md` is never touched.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from .config import ContentConfig

# A rendered heading: pulldown-cmark writes <h2>...</h2>, with attributes only when asked to.
_HEADING_RE = re.compile(r"<h([1-6])(?:\s[^>]*)?>(.*?)</h\1>", re.DOTALL)
_ANY_TAG_RE = re.compile(r"<[^>]+>")


def heading_key(text: str) -> str:
    """A heading as rules compare it: without markup, case or extra spacing."""
    if "<" in text:
        text = _ANY_TAG_RE.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.casefold().split())


@dataclass(frozen=True)
class ContentRules:
    sections: frozenset[str] = frozenset()
    # A word of each section name that any heading of that name contains (lowercased): a body
    # without one of them in its HTML has nothing to drop, found by a substring test per word.
    section_words: tuple[str, ...] = ()
    # Searched paragraph by paragraph, and only when the literal text a pattern starts with (after
    # any ^) is in the body at all: a substring test is ten times cheaper than a regex scan, and
    # nearly every body has none of them. A pattern without such a literal is always searched.
    paragraphs: tuple[re.Pattern[str], ...] = ()
    literals: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: ContentConfig) -> ContentRules:
        sections = frozenset(heading_key(s) for s in config.drop_sections)
        words = tuple(_key_word(name) for name in sections)
        patterns = config.drop_paragraphs
        return cls(
            sections,
            () if "" in words else words,
            tuple(re.compile(p) for p in patterns),
            tuple(leading_literal(p) for p in patterns),
        )

    def __bool__(self) -> bool:
        return bool(self.sections or self.paragraphs)

    def drop_sections(self, rendered: str) -> str:
        """Rendered HTML without the named sections: each from its heading to the next heading of
        the same or a higher level (h2 ends at the next h1 or h2), or to the end."""
        if not self.sections or "<h" not in rendered:
            return rendered
        if self.section_words:
            lowered = rendered.lower()
            if not any(word in lowered for word in self.section_words):
                return rendered
        headings = [(m.start(), int(m.group(1)), m.group(2)) for m in _HEADING_RE.finditer(rendered)]
        kept: list[str] = []
        position = 0
        i = 0
        while i < len(headings):
            start, level, inner = headings[i]
            i += 1
            if heading_key(inner) not in self.sections:
                continue
            while i < len(headings) and headings[i][1] > level:
                i += 1
            kept.append(rendered[position:start])
            position = headings[i][0] if i < len(headings) else len(rendered)
        kept.append(rendered[position:])
        return "".join(kept)

    def drop_paragraphs(self, text: str) -> str:
        """Plain text without the paragraphs (blocks between blank lines) that a pattern finds."""
        patterns = [p for p, literal in zip(self.paragraphs, self.literals, strict=True) if literal in text]
        if not patterns:
            return text
        blocks = text.split("\n\n")
        kept = [block for block in blocks if not any(pattern.search(block) for pattern in patterns)]
        return text if len(kept) == len(blocks) else "\n\n".join(kept)


_META = set(".^$*+?{}[]\\|()")


def leading_literal(pattern: str) -> str:
    """The text every match of `pattern` starts with, as written ("" when unsure: flags, groups, |)."""
    if "|" in pattern:
        return ""
    literal: list[str] = []
    for char in pattern[1:] if pattern.startswith("^") else pattern:
        if char in _META:
            if char in "*?{" and literal:  # the last character was optional
                literal.pop()
            break
        literal.append(char)
    return "".join(literal)


def _key_word(name: str) -> str:
    """The longest ASCII word of a section name, lowercased; "" when it has none to test for."""
    words = [w for w in re.findall(r"[a-z0-9]+", name) if w.isascii()]
    return max(words, key=len) if words else ""
