"""`_formatted`: the fast highlighter of whole documents marks exactly what the engine's
highlighter marks, and highlight and crop put tags and markers where Meilisearch does."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from conftest import REUTERS, SAMPLE, build_index, engine_for, iter_jsonl, read_jsonl

from search_service.http.meili.formatting import FormatOptions, WordStarts, fast_spans, format_text, formatted
from search_service.search.engine import SearchRequest


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    built = build_index(tmp_path_factory.mktemp("formatting") / "index", [SAMPLE])
    return engine_for(built.index_dir, built.config)


@pytest.mark.parametrize(
    "q",
    ["oil prices", "inflation rate", "centr", "interst rates", "ai", "bank of england", "energy 2026", "x"],
)
@pytest.mark.parametrize("prefix", [False, True])
def test_fast_spans_mark_what_the_engine_highlighter_marks(engine, q, prefix):
    highlighter = engine.highlighter(SearchRequest(q=q, prefix=prefix))
    fast = fast_spans(highlighter)
    for record in read_jsonl(SAMPLE):
        for text in (record["title"], record["summary"], record["body_md"], *record["entities"]):
            assert fast(text) == highlighter.spans(text), (q, text[:80])


def test_highlight_and_crop_text():
    options = FormatOptions(highlight=None, crop={}, pre_tag="<b>", post_tag="</b>", crop_marker="~")
    text = "one two three four five six seven eight nine ten"
    spans = lambda t: [(t.index("six"), t.index("six") + 3)]  # noqa: E731
    assert format_text(text, options, spans, None) == text.replace("six", "<b>six</b>")
    assert format_text(text, options, spans, 3) == "~five <b>six</b> seven~"
    assert format_text(text, options, None, 2) == "one two~"
    assert format_text("short", options, None, 5) == "short"


def test_formatted_keeps_every_attribute_and_stringifies_numbers():
    options = FormatOptions(highlight=frozenset({"title"}), crop={"body": 2})
    spans = lambda t: [(0, 3)] if t.startswith("Oil") else []  # noqa: E731
    document = {"title": "Oil up", "body": "Oil rises a lot today", "topics": ["Oil"], "n": 3, "flag": True, "x": None}
    assert formatted(document, options, spans) == {
        "title": "<em>Oil</em> up",
        "body": "Oil rises…",
        "topics": ["Oil"],
        "n": "3",
        "flag": "true",
        "x": None,
    }


def test_fast_spans_find_words_that_fold_to_the_query(engine):
    text = "À Zürich, l'École et les élections — naïve cafés; ZURICH ecole café_bar Élan"
    for q in ("zurich ecole", "election cafe", "elan", "naive"):
        highlighter = engine.highlighter(SearchRequest(q=q, prefix=True, typos=False))
        assert fast_spans(highlighter)(text) == highlighter.spans(text) != [], q


ODD_TEXTS = (
    "İstanbul İzmir: İSTANBUL istanbul",  # İ lowers to two characters: the regular expression's path
    "Straße STRASSE straße; Ärger ärgerlich, ÄRGER — Œuvre œuvre • ünder_score x_ünder 3ünder ab3ü",
    "the bank's banks; BANKING (bank) bank-holiday _bank ban",
)


@pytest.mark.parametrize("heads", [["ban", "the"], ["ist", "str"], ["ärg", "œuv", "ü"], ["3", "ab"], ["u", "x"]])
def test_word_starts_find_what_one_regular_expression_finds(heads: list[str]) -> None:
    starts = WordStarts(heads)
    texts = [*ODD_TEXTS, *(r["body_md"] for r in itertools.islice(iter_jsonl(REUTERS), 300))]
    for text in texts:
        assert starts(text) == [m.span() for m in starts.pattern.finditer(text)], text[:80]
