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
    # All paragraph patterns in one, each paragraph searched once. Also run over a whole text with
    # re.MULTILINE first: ^ and $ of a paragraph are line boundaries there too, so a text without
    # any hit (nearly every article) is passed through after a single scan.
    paragraphs: re.Pattern[str] | None = None
    anywhere: re.Pattern[str] | None = None

    @classmethod
    def from_config(cls, config: ContentConfig) -> ContentRules:
        patterns = "|".join(f"(?:{p})" for p in config.drop_paragraphs)
        return cls(
            frozenset(heading_key(s) for s in config.drop_sections),
            re.compile(patterns) if patterns else None,
            re.compile(patterns, re.MULTILINE) if patterns else None,
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
        if self.anywhere is None or self.anywhere.search(text) is None:
            return text
        search = self.paragraphs.search
        return "\n\n".join(p for p in text.split("\n\n") if search(p) is None)
