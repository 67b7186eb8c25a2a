"""Property tests of the search-box language: parse, QueryBuilder and SearchEngine.search.

Whatever a user types (any Unicode, control characters, right-to-left text, combining marks,
emoji, operators, unbalanced quotes and parentheses, known and unknown field prefixes, up to the
API's 1,000 characters) must parse, build a valid Tantivy query and answer a search with a
well-formed result, on a real index built from the sample corpus plus bad.jsonl's hostile records.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import tantivy
from conftest import BAD, SAMPLE, BuiltIndex, build_index, read_jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search_service.errors import InvalidParameterError
from search_service.index.reader import IndexReader
from search_service.search.engine import SearchEngine, SearchRequest
from search_service.search.query import ParsedQuery, QueryBuilder, parse

MAX_QUERY_CHARS = 1000  # the API's max_query_chars
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples on every run: a failure here is reproducible, never flaky
    database=None,  # nothing written to .hypothesis/
)
MARK_TAG = re.compile(r"</?mark>")

# -- strategies -------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")
_SAMPLE_WORDS = sorted(
    {w.lower() for record in read_jsonl(SAMPLE) for w in _WORD.findall(record["title"] + " " + record["summary"])}
)
# Words that hit the index, with and without typos, and the hostile content of bad.jsonl.
INDEXED_WORDS = [*_SAMPLE_WORDS[:300], "standard", "oil", "champion", "cocoa", "srd", "bahia", "unilever"]
HOSTILE = [
    "<script>alert(1)</script>",
    "<mark>",
    "</mark>",
    "<b>x</b>",
    "&amp;",
    "&lt;mark&gt;",
    "<CH>",
    "javascript:alert(1)",
    "\u202eevil\u202c",  # right-to-left override
    "\u200f",  # right-to-left mark
    "\u200d",  # zero-width joiner
    "\ufeff",  # byte order mark
    "\x00",
    "\x1b[31m",
    "\r\n",
    "\t",
    "e\u0301",  # e + combining acute
    "\u0301\u0301\u0301",  # combining marks with nothing to combine with
    "النفط",  # Arabic
    "שלום",  # Hebrew
    "石油价格",  # Chinese
    "東京",  # Japanese
    "한국어",  # Korean
    "👨‍👩‍👧‍👦",  # ZWJ family emoji
    "🇯🇵",  # flag (regional indicators)
    "❤️",  # emoji + variation selector
    "🛢️",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",  # astral plane letters
    "ǅ",  # titlecase digraph
    "İstanbul",  # lowercases to two code points
    "ß",
    "Ⅻ",
    "٣",  # Arabic-Indic digit
    "a" * 300,  # a very long token
    "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=" * 3,  # base64-like blob
]
OPERATORS = ["OR", "or", "-", "--", '"', '""', "(", ")", "()", "((", "))", ":", "::", "*", "?", "~", "^2", "+", "AND"]
FIELDS = [
    "title",
    "summary",
    "body",
    "topic",
    "entity",
    "TITLE",
    "Topic",
    "lang",
    "slug",
    "nosuchfield",
    "published_at",
    "body_text",
    "topics",
    "_",
]


@st.composite
def _item(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["word", "word", "hostile", "operator", "field", "phrase", "text", "negated"]))
    if kind == "word":
        word = draw(st.sampled_from(INDEXED_WORDS))
        if draw(st.booleans()):  # a typo: drop, double or swap one character
            i = draw(st.integers(0, max(len(word) - 1, 0)))
            word = draw(st.sampled_from([word[:i] + word[i + 1 :], word[:i] + word[i : i + 1] * 2 + word[i + 1 :]]))
        return draw(st.sampled_from([word, word.upper(), word.title()]))
    if kind == "hostile":
        return draw(st.sampled_from(HOSTILE))
    if kind == "operator":
        return draw(st.sampled_from(OPERATORS))
    if kind == "field":
        value = draw(st.one_of(st.sampled_from(INDEXED_WORDS), st.sampled_from(HOSTILE), st.just(""), _phrase()))
        return f"{draw(st.sampled_from(FIELDS))}:{value}"
    if kind == "phrase":
        return draw(_phrase())
    if kind == "negated":
        return "-" + draw(
            st.one_of(st.sampled_from(INDEXED_WORDS), _phrase(), st.sampled_from(FIELDS).map("{}:oil".format))
        )
    return draw(st.text(max_size=12))


@st.composite
def _phrase(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(INDEXED_WORDS + HOSTILE[:12]), min_size=0, max_size=4))
    closed = draw(st.booleans())
    return '"' + " ".join(words) + ('"' if closed else "")


SEPARATORS = st.sampled_from([" ", " ", " ", "", "  ", "\t", "\n", "\u3000", "\u00a0", "(", ")", '"', ","])


@st.composite
def structured_queries(draw: st.DrawFn) -> str:
    items = draw(st.lists(_item(), min_size=0, max_size=40))
    out = []
    for item in items:
        out.append(item)
        out.append(draw(SEPARATORS))
    return "".join(out)[:MAX_QUERY_CHARS]


# Arbitrary Unicode of every category but surrogates (which cannot cross HTTP or Tantivy).
ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=MAX_QUERY_CHARS)
# Long inputs made of repeated items, up to the API's limit.
LONG_TEXT = st.builds(lambda item, n: (item + " ") * n, _item(), st.integers(1, 500)).map(lambda s: s[:MAX_QUERY_CHARS])
QUERIES = st.one_of(ANY_TEXT, structured_queries(), LONG_TEXT)

# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_index(tmp_path_factory: pytest.TempPathFactory) -> BuiltIndex:
    if not BAD.exists():
        pytest.fail(f"test corpus {BAD} is missing")
    return build_index(tmp_path_factory.mktemp("fuzz-index"), [SAMPLE, BAD])


@pytest.fixture(scope="module")
def engine(fuzz_index: BuiltIndex) -> SearchEngine:
    reader = IndexReader(fuzz_index.store, fuzz_index.config, interval=3600)
    return SearchEngine(reader, fuzz_index.config)


@pytest.fixture(scope="module")
def builder(engine: SearchEngine) -> QueryBuilder:
    return engine.builder


# -- helpers ----------------------------------------------------------------------------------


def assert_only_mark_markup(text: str) -> None:
    assert isinstance(text, str)
    rest = MARK_TAG.sub("", text)
    assert "<" not in rest, f"markup other than <mark> in {text!r}"
    # Marks are balanced and never nested.
    depth = 0
    for tag in MARK_TAG.findall(text):
        depth += 1 if tag == "<mark>" else -1
        assert depth in (0, 1), f"nested or unbalanced <mark> in {text!r}"
    assert depth == 0, f"unclosed <mark> in {text!r}"


def check_parsed(parsed: ParsedQuery, known: set[str], max_terms: int) -> None:
    assert isinstance(parsed, ParsedQuery)
    terms = [*parsed.positive_terms(), *parsed.excluded]
    assert len(terms) <= max_terms
    for group in parsed.groups:
        assert group, "an empty OR group"
    for term in terms:
        assert isinstance(term.text, str)
        assert term.field is None or term.field in known, term
        assert not (term.phrase and term.prefix), term


# -- properties -------------------------------------------------------------------------------


@FUZZ
@given(text=QUERIES, prefix=st.booleans(), max_terms=st.sampled_from([1, 3, 64]))
def test_parse_never_fails_and_respects_its_bounds(builder: QueryBuilder, text: str, prefix: bool, max_terms: int):
    known = builder.known_fields
    check_parsed(parse(text, known, prefix=prefix, max_terms=max_terms), known, max_terms)


@FUZZ
@given(text=QUERIES, prefix=st.booleans(), require_all=st.booleans())
def test_build_always_gives_a_query_tantivy_can_run(
    engine: SearchEngine, builder: QueryBuilder, text: str, prefix: bool, require_all: bool
):
    searcher = engine.reader.searcher()
    parsed = parse(text, builder.known_fields, prefix=prefix)
    corrections = builder.corrections(parsed, searcher, engine.reader.version)
    assert isinstance(corrections, dict)
    for word, candidates in corrections.items():
        assert isinstance(word, str)
        assert isinstance(candidates, tuple) and all(isinstance(c, str) for c in candidates)
    for fixes in ({}, corrections):
        query = builder.build(parsed, require_all=require_all, corrections=fixes)
        assert isinstance(query, tantivy.Query)
        result = searcher.search(query, 10, count=True)
        assert 0 <= result.count <= searcher.num_docs
        assert len(result.hits) <= min(10, result.count)


def _request(draw: st.DrawFn) -> SearchRequest:
    per_page = draw(st.sampled_from([1, 3, 10, 100]))
    return SearchRequest(
        q=draw(QUERIES),
        filters=draw(
            st.sampled_from(
                [
                    {},
                    {"topics": ("crude",)},
                    {"entities": ("USA", "<script>")},
                    {"lang": ("en", "zh")},
                    {"topics": ("",)},
                ]
            )
        ),
        sort=draw(st.sampled_from([None, "relevance", "newest", "oldest"])),
        page=draw(st.sampled_from([1, 1, 2, 7])),
        per_page=per_page,
        facets=draw(st.sampled_from([(), ("topics",), ("topics", "entities", "published_at")])),
        facet_size=draw(st.sampled_from([1, 10])),
        date_interval=draw(st.sampled_from(["year", "month", "week", "day"])),
        prefix=draw(st.booleans()),
        typos=draw(st.booleans()),
        highlight=True,
    )


@FUZZ
@given(data=st.data())
def test_search_answers_every_query_with_a_well_formed_result(engine: SearchEngine, data: st.DataObject):
    request = _request(data.draw)
    try:
        result = engine.search(request)
    except InvalidParameterError as exc:
        # The one deliberate refusal (a 422 over HTTP): a day histogram over decades of articles.
        assert exc.parameter == "date_interval" and "published_at" in request.facets, exc
        return
    assert isinstance(result, dict)
    assert isinstance(result["total"], int) and result["total"] >= 0
    assert result["matched"] in ("all", "any")
    hits = result["hits"]
    assert len(hits) <= request.per_page
    offset = (request.page - 1) * request.per_page
    assert len(hits) <= max(result["total"] - offset, 0)
    assert len({hit["slug"] for hit in hits}) == len(hits), "a page lists an article twice"
    for hit in hits:
        assert_only_mark_markup(hit["highlights"]["title"])
        assert_only_mark_markup(hit["highlights"]["snippet"])
    for name in request.facets:
        for value in result["facets"][name]:
            assert value["count"] >= 0


@FUZZ
@given(text=QUERIES)
def test_facet_values_and_suggestions_answer_every_query(engine: SearchEngine, text: str):
    values = engine.facet_values("entities", SearchRequest(q=text), prefix=text[:20].strip(), size=5)
    assert isinstance(values["values"], list) and len(values["values"]) <= 5
    assert all(v["count"] >= 0 for v in values["values"])


def _fixed_examples() -> list[Any]:
    return [
        "",
        " ",
        '"',
        '"""',
        "-",
        "- -",
        "OR",
        "OR OR",
        "a OR",
        "OR a",
        "-OR",
        "title:",
        'title:""',
        "title:-oil",
        "-title:oil",
        "nosuchfield:",
        "nosuchfield:oil",
        "topic:",
        "topic: ",
        'topic:"crude oil"',
        "entity:<script>",
        "(((",
        ")))",
        '("oil" OR "gas") -(opec)',
        "\x00",
        "\u0301",
        "👨‍👩‍👧‍👦",
        "石",
        "a" * MAX_QUERY_CHARS,
        "oil " * 250,
        " OR ".join(["oil"] * 200),
        "-oil " * 250,
        '"' + "oil " * 249 + '"',
    ]


@pytest.mark.parametrize("q", _fixed_examples())
@pytest.mark.parametrize("prefix", [False, True])
def test_known_edge_cases(engine: SearchEngine, q: str, prefix: bool):
    result = engine.search(SearchRequest(q=q, prefix=prefix, facets=("topics",)))
    assert result["total"] >= 0
    assert len(result["hits"]) <= 10
    for hit in result["hits"]:
        assert_only_mark_markup(hit["highlights"]["title"])
        assert_only_mark_markup(hit["highlights"]["snippet"])


def test_fuzz_index_holds_the_hostile_records(fuzz_index: BuiltIndex):
    # The properties above mean something only if the index has the sample and bad.jsonl's accepted records.
    assert fuzz_index.report.indexed > 40
