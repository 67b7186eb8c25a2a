"""Markdown to the plain text that is indexed and cut into snippets.

Markdown syntax, link targets and HTML tags go; every word stays. Reuters marks companies and
tickers as `<Standard Oil Co>` or `<SRD>`, which a markdown parser reads as raw HTML: only tags
of real HTML elements are removed, anything else in angle brackets is kept as text.
"""

from __future__ import annotations

import html
import re

import pyromark

_HTML_ELEMENTS = (
    "a abbr address area article aside audio b base bdi bdo blockquote body br button canvas caption cite code col "
    "colgroup data datalist dd del details dfn dialog div dl dt em embed fieldset figcaption figure footer form h1 "
    "h2 h3 h4 h5 h6 head header hr html i iframe img input ins kbd label legend li link main map mark meta meter nav "
    "noscript object ol optgroup option output p param picture pre progress q rp rt ruby s samp script section "
    "select small source span strong style sub summary sup svg table tbody td template textarea tfoot th thead time "
    "title tr track u ul var video wbr math font center marquee frame frameset applet"
)
# One leading literal "<" lets the regex engine skip to candidates. Case-sensitive on purpose: markdown
# renderers and real HTML write tags in lowercase, while Reuters tickers such as <S> or <A> are upper case.
_TAG_RE = re.compile(
    r"<(?:!--.*?-->|!\[CDATA\[.*?\]\]>|[!?][^>]*>|/?(?:" + _HTML_ELEMENTS.replace(" ", "|") + r")(?:[\s/][^>]*)?>)",
    re.DOTALL,
)
_OPTIONS = pyromark.Options.ENABLE_TABLES | pyromark.Options.ENABLE_STRIKETHROUGH
_BLOCK_END_RE = re.compile(r"</(?:p|h[1-6]|li|blockquote|pre|tr|table|thead|tbody|ul|ol|dl|dd|dt)>|<(?:hr|br)\s*/?>")
_CELL_RE = re.compile(r"</t[dh]>")
_IMG_ALT_RE = re.compile(r'<img\b[^>]*?\balt="([^"]*)"[^>]*>')
_BLANK_RUNS = re.compile(r"\n\s*\n")


def strip_tags(html_text: str) -> str:
    return _TAG_RE.sub("", html_text) if "<" in html_text else html_text


def markdown_to_text(markdown: str, title: str = "") -> str:
    """Plain text of `markdown`, without a leading `# heading` that only repeats `title`.

    pulldown-cmark (via pyromark) renders the HTML; the tags of real HTML elements are then
    removed, which is several times faster than walking its event stream in Python.
    """
    rendered = pyromark.html(markdown, options=_OPTIONS)
    if rendered.startswith("<h1>"):
        end = rendered.find("</h1>")
        if end != -1 and _same_words(html.unescape(strip_tags(rendered[4:end])), title):
            rendered = rendered[end + 5 :]
    rendered = _BLOCK_END_RE.sub("\n\n", rendered)
    rendered = _CELL_RE.sub(" ", rendered)
    if "<img" in rendered:
        rendered = _IMG_ALT_RE.sub(r" \1 ", rendered)
    text = strip_tags(rendered)
    if "&" in text:
        text = html.unescape(text)
    return _BLANK_RUNS.sub("\n\n", text).strip()


# Han, Hiragana, Katakana and Hangul: scripts written without spaces between words.
CJK_RUN = re.compile(r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")


def cjk_text(*texts: str) -> str:
    """The CJK runs of some texts, one per line; empty for the (usual) text without any."""
    return "\n".join(run for text in texts if not text.isascii() for run in CJK_RUN.findall(text))


def _same_words(a: str, b: str) -> bool:
    return a.split() == b.split()
