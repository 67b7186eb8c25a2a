"""Markdown to the plain text that is indexed and cut into snippets.

Markdown syntax, link targets and HTML tags go; every word stays. Reuters marks companies and
tickers as `<Standard Oil Co>` or `<SRD>`, which a markdown parser reads as raw HTML: only tags
of real HTML elements are removed, anything else in angle brackets is kept as text.
"""

from __future__ import annotations

import html
import re

import pyromark

from search_service.ingest.content import ContentRules

_HTML_ELEMENTS = (
    "a abbr address area article aside audio b base bdi bdo blockquote body br button canvas caption cite code col "
    "colgroup data datalist dd del details dfn dialog div dl dt em embed fieldset figcaption figure footer form h1 "
    "h2 h3 h4 h5 h6 head header hr html i iframe img input ins kbd label legend li link main map mark meta meter nav "
    "noscript object ol optgroup option output p param picture pre progress q rp rt ruby s samp script section "
    "select small source span strong style sub summary sup svg table tbody td template textarea tfoot th thead time "
    "title tr track u ul var video wbr math font center marquee frame frameset applet"
)


def _names_pattern(names: list[str]) -> str:
    """An alternation of `names`, one branch per first letter: `(?:a(?:|bbr|...)|b(?:...)|...)`.

    The regex engine tries a flat alternation's branches one by one, so every `<` cost up to ~120
    failed branches (every Reuters marker such as <SRD> went through all of them); grouped, a `<`
    is matched or rejected after a few tests. It matches exactly the same strings.
    """
    by_first: dict[str, list[str]] = {}
    for name in names:
        by_first.setdefault(name[0], []).append(re.escape(name[1:]))
    return "(?:" + "|".join(f"{first}(?:{'|'.join(rests)})" for first, rests in by_first.items()) + ")"


# One leading literal "<" lets the regex engine skip to candidates. Case-sensitive on purpose: markdown
# renderers and real HTML write tags in lowercase, while Reuters tickers such as <S> or <A> are upper case.
_TAG_RE = re.compile(
    r"<(?:!--.*?-->|!\[CDATA\[.*?\]\]>|[!?][^>]*>|/?" + _names_pattern(_HTML_ELEMENTS.split()) + r"(?:[\s/][^>]*)?>)",
    re.DOTALL,
)
_OPTIONS = pyromark.Options.ENABLE_TABLES | pyromark.Options.ENABLE_STRIKETHROUGH
_BLOCK_END_RE = re.compile(r"</(?:p|h[1-6]|li|blockquote|pre|tr|table|thead|tbody|ul|ol|dl|dd|dt)>|<(?:hr|br)\s*/?>")
_CELL_RE = re.compile(r"</t[dh]>")
_IMG_ALT_RE = re.compile(r'<img\b[^>]*?\balt="([^"]*)"[^>]*>')
# Where either of the two could match. A table cell end cannot make an <img match or stop one matching.
_CELL_OR_IMG_RE = re.compile(r"<(?:/t[dh]>|img\b)")
_BLANK_RUNS = re.compile(r"\n\s*\n")


def strip_tags(html_text: str) -> str:
    return _TAG_RE.sub("", html_text) if "<" in html_text else html_text


def markdown_to_text(markdown: str, title: str = "", rules: ContentRules | None = None) -> str:
    """Plain text of `markdown`, without a leading `# heading` that only repeats `title`, nor what
    the content rules drop (sections by heading, paragraphs by pattern).

    pulldown-cmark (via pyromark) renders the HTML; the tags of real HTML elements are then
    removed, which is several times faster than walking its event stream in Python. Sections are
    cut from the HTML, where headings and their levels are plain to see.
    """
    rendered = pyromark.html(markdown, options=_OPTIONS)
    if rules:
        rendered = rules.drop_sections(rendered)
    if rendered.startswith("<h1>"):
        end = rendered.find("</h1>")
        if end != -1 and _is_title(html.unescape(strip_tags(rendered[4:end])), title):
            rendered = rendered[end + 5 :]
    rendered = _BLOCK_END_RE.sub("\n\n", rendered)
    if _CELL_OR_IMG_RE.search(rendered) is not None:  # one scan instead of two for the usual body without either
        rendered = _CELL_RE.sub(" ", rendered)
        rendered = _IMG_ALT_RE.sub(r" \1 ", rendered)
    text = strip_tags(rendered)
    if "&" in text:
        text = html.unescape(text)
    text = _BLANK_RUNS.sub("\n\n", text).strip()
    return rules.drop_paragraphs(text) if rules else text


# Han, Hiragana, Katakana and Hangul: scripts written without spaces between words.
CJK_RUN = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


def cjk_text(*texts: str) -> str:
    """The CJK runs of some texts, one per line; empty for the (usual) text without any."""
    if all(map(str.isascii, texts)):  # skips setting up the generator below for nearly every article
        return ""
    return "\n".join(run for text in texts if not text.isascii() for run in CJK_RUN.findall(text))


def _is_title(heading: str, title: str) -> bool:
    # Usually the heading is the title verbatim: comparing first saves splitting both.
    return heading == title or _same_words(heading, title)


def _same_words(a: str, b: str) -> bool:
    return a.split() == b.split()
