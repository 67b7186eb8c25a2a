"""Content rules: the parts of a feed's bodies that are not the article (promos, the feed's own notes).

`[content]` in index_config/schema.toml names sections to drop by their heading and paragraphs to
drop by pattern. They are applied where markdown becomes the plain text that is indexed and cut
into snippets (render.markdown_to_text); the stored `body_md` is never touched.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from search_service.config import ContentConfig

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
    # Searched paragraph by paragraph, and only when the literal text every match of a pattern
    # contains is in the body at all: a substring test is ten times cheaper than a regex scan, and
    # nearly every body has none of them. A pattern without such a literal is always searched.
    paragraphs: tuple[re.Pattern[str], ...] = ()
    literals: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: ContentConfig) -> ContentRules:
        patterns = config.drop_paragraphs
        return cls(
            frozenset(heading_key(s) for s in config.drop_sections),
            tuple(re.compile(p) for p in patterns),
            tuple(required_literal(p) for p in patterns),
        )

    def __bool__(self) -> bool:
        return bool(self.sections or self.paragraphs)

    def drop_sections(self, rendered: str) -> str:
        """Rendered HTML without the named sections: each from its heading to the next heading of
        the same or a higher level (h2 ends at the next h1 or h2), or to the end."""
        if not self.sections or "<h" not in rendered:
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


def required_literal(pattern: str) -> str:
    """The longest text every match of `pattern` contains, as written outside groups and classes
    ("" when unsure: any |, inline flags). Long and rare beats a short, common start like "Try "."""
    if "|" in pattern or pattern.replace("(?:", "").count("(?"):
        return ""
    runs: list[str] = []
    run: list[str] = []
    depth = 0
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char not in _META and not depth:
            run.append(char)
            i += 1
            continue
        if char in "*?{" and run and not depth:  # the last character was optional
            run.pop()
        runs.append("".join(run))
        run = []
        if char == "\\":  # \d, \+, ...: ends the run (an escaped literal is not worth the parsing)
            i += 2
        elif char == "[":  # a class: skip to its end, where ] first or escaped does not count
            i += 2 if pattern[i + 1 : i + 2] == "]" else 1
            while i < len(pattern) and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
        else:
            depth += {"(": 1, ")": -1}.get(char, 0)
            i += 1
    runs.append("".join(run))
    return max(runs, key=len) if depth == 0 else ""
