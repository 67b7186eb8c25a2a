"""The floor for the HTTP benchmark: a bare FastAPI endpoint that makes the same engine calls as /search.

    .venv/bin/python scripts/_floor_app.py --index-dir DIR [--config TOML] [--port 8001] [--workers N]

GET /search?q=...&topic=...&facets=topics,entities,published_at&per_page=10 asks tantivy for what
the service's /search asks it for (ENGINE_CALLS below, read off search_service/search.py), over the
same index, and returns the same kind of JSON (hits with their stored fields and highlighted title
and snippet, facet counts, a month histogram). What it leaves out is everything of ours: the
query is tantivy's own parser over the service's search fields and boosts (no planning, no typo
corrections, no prefix or CJK handling), snippets are tantivy's `to_html()` (no marking of ours), no
validation models, middleware, metrics, access log or caches. It is run by uvicorn with the options
of `search-service serve` (factory, workers, log level, no access log, graceful shutdown), so the
two differ only in the work done per request. scripts/bench_search also calls `Floor.search`
in-process, beside the service's `SearchEngine.search`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import tantivy
from fastapi import FastAPI, Query
from fastapi.responses import Response

from search_service.config import IndexConfig, build_analyzer, load_config
from search_service.index.schema import register_analyzers
from search_service.index.store import IndexStore
from search_service.search.counting import MONTH_RANGES_MIN_MATCHES, index_date_span
from search_service.search.engine import HIT_ATTRIBUTES, WHOLE_TEXT, Ranked
from search_service.search.facet_ids import FacetIds
from search_service.search.facets import day_histogram_agg, month_ranges_agg
from search_service.search.freshness import FreshnessRanker, current_now
from search_service.search.query import any_term
from search_service.search.snippets import FIRST_WINDOW, NEAR_CHARS, Locator, Matcher

ENV_INDEX_DIR = "FLOOR_INDEX_DIR"
ENV_CONFIG = "FLOOR_CONFIG_PATH"

# The tantivy calls one /search request makes (search_service/search.py), in order: the floor makes
# each one, in `Floor.search`, under the step's name. When search.py changes the calls it makes
# (e.g. cheaper snippets), change this list and the step in `Floor.search`, and switch a step off in
# CALLS while the service does not make it. Nothing else in the benchmarks encodes these calls.
ENGINE_CALLS = (
    ("search", "SearchEngine._top, FreshnessRanker.page", "with freshness (a ranked query, [ranking.freshness] "
     "on): searcher.search(query, window, count=True) + fast_field_values(seconds field, the window's "
     "addresses), the window re-ranked; without: searcher.search(query, per_page, count=True)"),
    ("fallback", "SearchEngine._search", "the search again with any word required, when an all-words query "
     "of 2+ words finds fewer than ranking.fallback_min_hits articles"),
    ("snippet generators", "SearchEngine._snippets", "SnippetGenerator.create(searcher, text query, schema, "
     "body), set_max_num_chars(snippets.max_chars); the same for the title, set_max_num_chars(WHOLE_TEXT)"),
    ("rarest word", "Snippets.weigh", "searcher.doc_freq(body, token) for each body token of a query of 2+ "
     "words (tantivy weighs fragments by rarity; the snippet must show the rarest)"),
    ("stored documents", "SearchEngine._hits, SearchEngine._hit_fields", "searcher.doc(address) for every "
     "hit; get_first/get_all of each HIT_ATTRIBUTES field, and get_first of the body"),
    ("snippets", "Snippets.title, Snippets.first", "snippet_from_doc of a one-field document: the title, "
     "and the body's first FIRST_WINDOW characters (the whole body when shorter)"),
    ("rarest word's place", "Snippets.first, Snippets._near", "a body longer than FIRST_WINDOW whose first "
     "fragment lacks the rarest word: snippet_from_doc of the 2 x NEAR_CHARS around its first place, "
     "or of the whole body when it is not found or that marks nothing"),
    ("further snippets", "Snippets.body_matches, Snippets.further", "for the long bodies whose first window "
     "has no match: one searcher.search(slugs AND body words, n); for those that match, snippet_from_doc of "
     "the 2 x NEAR_CHARS around the first word that can match, or of the whole body"),
    ("aggregations", "FacetCounter.count, FacetCounter.group, FacetCounter.date_span",
     "searcher.aggregate(query, aggs), always exact (the floor never samples: [counting] is not applied): "
     "terms per facet over its id column, the ids shown named again the first time the process sees them "
     "(FacetIds.name: searcher.search(id term, 1) + searcher.doc); the dates by a range per calendar "
     "month over the index's date span (min and max, once per index version) for MONTH_RANGES_MIN_MATCHES "
     "matches or more, else a 1-day date_histogram; one call per distinct facet filter left out"),
    ("selected counts", "FacetCounter.count_with", "searcher.search(query without the facet's filter AND the "
     "value, 1, count=True) for a selected facet value outside the top facet_size"),
)  # fmt: skip


@dataclass(frozen=True)
class Calls:
    """Which of ENGINE_CALLS the floor makes: all of them, as long as /search makes them all."""

    fallback: bool = True
    body_snippets: bool = True
    title_snippets: bool = True
    facets: bool = True
    selected_counts: bool = True


CALLS = Calls()


def floor_query(
    index: tantivy.Index,
    q: str,
    topics: Sequence[str],
    fields: list[str],
    boosts: dict[str, float],
    conjunction: bool = True,
) -> tantivy.Query:
    """tantivy's own query parser over the search fields (every word required unless `conjunction`
    is False); the topic filters ANDed as constant-score clauses, as the service's plan does."""
    if q.strip():
        query, _ = index.parse_query_lenient(q, fields, field_boosts=boosts, conjunction_by_default=conjunction)
    else:
        query = tantivy.Query.all_query()
    return with_filters(index.schema, query, {"topics": topics} if topics else {})


def _snippet(generator: tantivy.SnippetGenerator, field_name: str, text: str) -> tantivy.Snippet:
    # /search hands the generator a one-field document (given a stored one it copies every field).
    doc = tantivy.Document()
    doc.add_text(field_name, text)
    return generator.snippet_from_doc(doc)


def with_filters(schema: tantivy.Schema, query: tantivy.Query, filters: dict[str, Sequence[str]]) -> tantivy.Query:
    if not filters:
        return query
    clauses = [(tantivy.Occur.Must, query)]
    for name, values in filters.items():
        terms = [tantivy.Query.term_query(schema, name, v) for v in values]
        either = (
            terms[0] if len(terms) == 1 else tantivy.Query.boolean_query([(tantivy.Occur.Should, t) for t in terms])
        )
        clauses.append((tantivy.Occur.Must, tantivy.Query.const_score_query(either, 0.0)))
    return tantivy.Query.boolean_query(clauses)


class Floor:
    """ENGINE_CALLS for one request, shaped into plain JSON with as little of our own code as can be.

    Two pieces of ours stay, so that the generator is given the same text for the same hits: the
    freshness re-ranking (`FreshnessRanker.page`: a sort of the window in Python), and, for a long
    body whose first window lacks the rarest word or any match, the regex scan that finds where
    the word is (`snippets.Locator`, over the query's analyzed words: no typo corrections, prefixes
    or synonyms). Our marking, planning and typo handling are left out: snippets are tantivy's
    `to_html()` of its fragment."""

    def __init__(self, index: tantivy.Index, config: IndexConfig, calls: Calls = CALLS) -> None:
        self.index = index
        self.schema = index.schema
        self.ids = FacetIds(index.schema)
        self.calls = calls
        self.boosts = config.search_boosts()
        self.fields = list(self.boosts)
        self.fallback_boosts = config.fallback_search_boosts()
        self.fallback_min_hits = config.ranking.fallback_min_hits
        self.freshness = FreshnessRanker.from_config(config)
        self.date_field = config.histogram_field.name if config.histogram_field else None
        self.seconds_field = config.histogram_field.seconds_field if config.histogram_field else None
        self._span: list[tuple[date, date] | None] = []  # the index's first and last dates, once known
        self.body_field = config.snippets.fields[0]
        self.key_field = config.key_field.name
        self.max_chars = config.snippets.max_chars
        self.body_analyzer = build_analyzer(config.analyzers[config.fields[self.body_field].analyzer])
        by_source = {f.source: f for f in config.fields.values()}
        self.title_field = by_source["title"].name
        self.hit_fields = [
            (attribute, by_source[attribute].name, by_source[attribute].kind, by_source[attribute].multi)
            for attribute in HIT_ATTRIBUTES
            if attribute in by_source
        ]

    def search(
        self,
        searcher: tantivy.Searcher,
        q: str,
        topics: Sequence[str] = (),
        facets: Sequence[str] = (),
        per_page: int = 10,
        facet_size: int = 10,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        filters = {"topics": tuple(topics)} if topics else {}
        now = now or current_now()
        # search
        text = self._text_query(q, conjunction=True)
        result = self._top(searcher, with_filters(self.schema, text, filters), per_page, q, now)
        # fallback
        if self.calls.fallback and result.count < self.fallback_min_hits and len(q.split()) > 1:
            text = self._text_query(q, conjunction=False)
            result = self._top(searcher, with_filters(self.schema, text, filters), per_page, q, now)
        # snippet generators
        body_snippets = title_snippets = None
        words: list[str] = []
        key = None
        if result.hits and q.strip():
            if self.calls.body_snippets:
                body_snippets = tantivy.SnippetGenerator.create(searcher, text, self.schema, self.body_field)
                body_snippets.set_max_num_chars(self.max_chars)
                words = self.body_analyzer.analyze(q)
                # rarest word
                if len(words) > 1:
                    key = min(words, key=lambda word: searcher.doc_freq(self.body_field, word))
            if self.calls.title_snippets:
                title_snippets = tantivy.SnippetGenerator.create(searcher, text, self.schema, self.title_field)
                title_snippets.set_max_num_chars(WHOLE_TEXT)
        # stored documents, snippets
        hits = []
        further = []
        for score, address in result.hits[:per_page]:
            doc = searcher.doc(address)
            hit = self._hit_fields(doc)
            hit["score"] = score
            body = doc.get_first(self.body_field) or ""
            title = _snippet(title_snippets, self.title_field, hit["title"]) if title_snippets else None
            snippet = None
            if body_snippets is not None:
                window = body[:FIRST_WINDOW]
                snippet = _snippet(body_snippets, self.body_field, window)
                if len(window) < len(body) and not snippet.highlighted():
                    further.append((hit, address, body))
                elif len(window) < len(body) and key is not None and not self._shows(snippet, key):
                    # rarest word's place
                    snippet = self._near(body_snippets, body, [key])
            hit["highlights"] = {
                "title": title.to_html() if title else hit["title"],
                "snippet": snippet.to_html() if snippet else hit["summary"],
            }
            hits.append(hit)
        # further snippets
        if further:
            matching = self._body_matches(searcher, [hit["slug"] for hit, _, _ in further], words)
            for hit, address, body in further:
                if (address.segment_ord, address.doc) in matching:
                    hit["highlights"]["snippet"] = self._near(body_snippets, body, words).to_html()
        # aggregations, selected counts
        counts = {}
        if self.calls.facets and facets:
            counts = self._facets(searcher, text, filters, facets, facet_size, result.count)
        return {"total": result.count, "hits": hits, "facets": counts}

    def _text_query(self, q: str, conjunction: bool) -> tantivy.Query:
        if not q.strip():
            return tantivy.Query.all_query()
        boosts = self.boosts if conjunction else self.fallback_boosts
        query, _ = self.index.parse_query_lenient(
            q, list(boosts), field_boosts=boosts, conjunction_by_default=conjunction
        )
        return query

    def _top(
        self, searcher: tantivy.Searcher, query: tantivy.Query, per_page: int, q: str, now: datetime
    ) -> tantivy.SearchResult | Ranked:
        if self.freshness is None or not q.strip():
            return searcher.search(query, per_page, count=True)
        return Ranked(*self.freshness.page(searcher, query, 0, per_page, now))

    def _shows(self, snippet: tantivy.Snippet, key: str) -> bool:
        """Whether tantivy marked the rarest word in the fragment (it marks only query terms)."""
        fragment = snippet.fragment().encode()
        return any(
            key in self.body_analyzer.analyze(fragment[h.start : h.end].decode("utf-8", "ignore"))
            for h in snippet.highlighted()
        )

    def _near(self, generator: tantivy.SnippetGenerator, body: str, words: Sequence[str]) -> tantivy.Snippet:
        """The fragment around the first place of any of `words`, else of the whole body."""
        place = Locator(self.body_analyzer, Matcher(exact=set(words))).first(body)
        if place is not None:
            start = max(0, place - NEAR_CHARS)
            snippet = _snippet(generator, self.body_field, body[start : place + NEAR_CHARS])
            if snippet.highlighted():
                return snippet
        return _snippet(generator, self.body_field, body)

    def _body_matches(self, searcher: tantivy.Searcher, slugs: list[str], words: list[str]) -> set[tuple[int, int]]:
        if not words:
            return set()
        query = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, any_term(self.schema, self.key_field, slugs)),
                (tantivy.Occur.Must, any_term(self.schema, self.body_field, sorted(set(words)))),
            ]
        )
        result = searcher.search(query, len(slugs), count=False)
        return {(address.segment_ord, address.doc) for _, address in result.hits}

    def _hit_fields(self, doc: tantivy.Document) -> dict[str, Any]:
        hit: dict[str, Any] = {}
        for attribute, name, kind, multi in self.hit_fields:
            if multi:
                hit[attribute] = doc.get_all(name)
                continue
            value = doc.get_first(name)
            if kind == "stored" and value is not None:
                value = orjson.loads(value)
            elif kind == "date" and value is not None:
                value = value.replace(tzinfo=UTC).isoformat()
            hit[attribute] = value if value is not None else ""
        return hit

    def _facets(
        self,
        searcher: tantivy.Searcher,
        text: tantivy.Query,
        filters: dict[str, tuple[str, ...]],
        facets: Sequence[str],
        size: int,
        count: int,
    ) -> dict[str, Any]:
        if self.date_field in facets and self.seconds_field and not self._span:
            self._span = [index_date_span(searcher, self.seconds_field)]
        span = self._span[0] if self._span and count >= MONTH_RANGES_MIN_MATCHES else None
        groups: dict[str | None, dict[str, Any]] = {}
        for name in facets:
            own = name if name in filters else None
            if name != self.date_field:
                agg = FacetIds.agg(name, size)
            else:
                agg = month_ranges_agg(self.seconds_field, *span) if span else day_histogram_agg(name)
            groups.setdefault(own, {})[name] = agg
        results: dict[str, Any] = {}
        for without, aggs in groups.items():
            rest = {k: v for k, v in filters.items() if k != without}
            results.update(searcher.aggregate(with_filters(self.schema, text, rest), aggs))
        out: dict[str, Any] = {}
        for name in facets:
            if name != self.date_field and name in results:
                results[name] = self.ids.named(searcher, name, results[name])
            buckets = results.get(name, {}).get("buckets", [])
            if name == self.date_field:
                months: dict[str, int] = {}
                for bucket in buckets:
                    if not bucket["doc_count"] or (span and "from" not in bucket):
                        continue
                    start = datetime.fromtimestamp(bucket["from"], UTC).isoformat() if span else bucket["key_as_string"]
                    months[start[:7]] = months.get(start[:7], 0) + bucket["doc_count"]
                out[name] = [{"start": m, "count": c} for m, c in months.items()]
                continue
            values = [{"value": b["key"], "count": b["doc_count"]} for b in buckets]
            shown = {v["value"] for v in values}
            for value in filters.get(name, ()):
                if self.calls.selected_counts and value not in shown:
                    rest = {k: v for k, v in filters.items() if k != name}
                    query = with_filters(self.schema, text, {**rest, name: (value,)})
                    values.append({"value": value, "count": searcher.search(query, 1, count=True).count})
            out[name] = values
        return out


def create_app() -> FastAPI:
    config = load_config(os.environ.get(ENV_CONFIG) or None)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        generation = IndexStore(os.environ[ENV_INDEX_DIR]).current()
        if generation is None:
            raise RuntimeError(f"no index in {os.environ[ENV_INDEX_DIR]}")
        index = tantivy.Index.open(str(generation.path))
        register_analyzers(index, config)
        state["index"] = index
        state["floor"] = Floor(index, config)
        yield

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/search")
    async def search(
        q: str = "",
        topic: Annotated[list[str] | None, Query()] = None,
        facets: str = "",
        per_page: int = 10,
        facet_size: int = 10,
    ) -> Response:
        wanted = [f for f in facets.split(",") if f]
        body = state["floor"].search(state["index"].searcher(), q, topic or (), wanted, per_page, facet_size)
        return Response(orjson.dumps(body), media_type="application/json")

    @app.get("/ready")
    async def ready() -> Response:
        return Response(orjson.dumps({"status": "ready"}), media_type="application/json")

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Bare FastAPI floor (the engine calls of /search) for the benchmarks.")
    parser.add_argument("--index-dir", required=True, help="a service index dir (the one with CURRENT)")
    parser.add_argument("--config", default=None, help="index config (default: index_config/schema.toml)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # Workers are spawned processes that build the app from the environment, like the service's.
    os.environ[ENV_INDEX_DIR] = str(Path(args.index_dir).resolve())
    if args.config:
        os.environ[ENV_CONFIG] = str(Path(args.config).resolve())
    uvicorn.run(  # the options of `search-service serve` (search_service/cli.py)
        "_floor_app:create_app",
        factory=True,
        app_dir=str(Path(__file__).resolve().parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        timeout_graceful_shutdown=10,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
