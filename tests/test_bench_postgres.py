"""scripts/_pg_fts.py, the PostgreSQL 15 FTS peer of scripts/bench, does the same work as the service.

Correctness only, no timing, against a real private server (initdb in a temp dir, a loopback port,
stopped at the end): for queries whose words PostgreSQL's `english` configuration and the service's
analyzer treat alike (typo tolerance off in the service), the totals, the all/any-word fallback,
the facet counts (topics without their own filter, entities, months) and the hits agree with
`SearchEngine.search`, and snippets are HTML-escaped text with `<mark>`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from conftest import REPO, SAMPLE, BuiltIndex, assert_same_facets, build_index

from search_service.index.reader import IndexReader
from search_service.search.engine import SearchEngine, SearchRequest

sys.path.insert(0, str(REPO / "scripts"))
import _pg_fts

if _pg_fts.binaries() is None:
    _reason = "PostgreSQL is not installed (scripts/install-postgres)"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{_reason}; CI is set, so a missing server is a failure", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

FACETS = ("topics", "entities", "published_at")
QUERIES = [
    ("oil", None),
    ("launch", None),
    ("markets", None),
    ("rates inflation", None),
    ("rates", "central-banks"),
    ("china", "trade"),
    ("europe gas storage", None),  # too few with every word: the any-word fallback
    ("zzzunknownword", None),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> BuiltIndex:
    return build_index(tmp_path_factory.mktemp("pg-index") / "index", [SAMPLE])


@pytest.fixture(scope="module")
def pg(index: BuiltIndex) -> Iterator[_pg_fts.PgSearch]:
    # In the system's temp dir, not pytest's: pytest makes its own private again (0700) whenever a
    # session starts, and the server runs as another user than root.
    with _pg_fts.PgServer() as server:
        _pg_fts.wait_ready(server.dsn)
        assert _pg_fts.build(server.dsn, [str(SAMPLE)], index.config) == index.report.indexed
        search = _pg_fts.PgSearch(server.dsn, index.config)
        yield search
        search.close()


def service(index: BuiltIndex, q: str, topic: str | None) -> dict:
    engine = SearchEngine(IndexReader(index.store, index.config), index.config)
    filters = {"topics": (topic,)} if topic else {}
    return engine.search(SearchRequest(q=q, filters=filters, facets=FACETS, per_page=100, typos=False))


@pytest.mark.parametrize(("q", "topic"), QUERIES)
def test_same_totals_facets_and_hits_as_the_service(index: BuiltIndex, pg: _pg_fts.PgSearch, q, topic) -> None:
    got = pg.search(q, (topic,) if topic else ())
    want = service(index, q, topic)
    assert (got["total"], got["matched"]) == (want["total"], want["matched"])
    assert_same_facets(got["facets"], {name: want["facets"][name] for name in FACETS})
    assert len(got["hits"]) == min(10, want["total"])
    assert {h["slug"] for h in got["hits"]} <= {h["slug"] for h in want["hits"]}


def test_snippets_are_escaped_text_with_marks(pg: _pg_fts.PgSearch) -> None:
    result = pg.search("nvidia")
    assert result["hits"]
    for hit in result["hits"]:
        snippet, title = hit["highlights"]["snippet"], hit["highlights"]["title"]
        assert "<mark>" in snippet or "<mark>" in title
        plain = (snippet + title).replace("<mark>", "").replace("</mark>", "")
        assert "<" not in plain and ">" not in plain


def test_the_server_is_gone_after_stop() -> None:
    server = _pg_fts.PgServer()
    _pg_fts.wait_ready(server.dsn)
    root = server.root
    server.stop()
    assert not root.exists()
    with pytest.raises(Exception):  # noqa: B017 - psycopg.OperationalError: nothing listens any more
        _pg_fts.connect(server.dsn)
