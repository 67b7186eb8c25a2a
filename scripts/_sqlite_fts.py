"""The peer in scripts/bench: SQLite FTS5 (Python's stdlib sqlite3) doing the service's /search work.

Schema: `articles` holds every stored field (published_at first, as integer seconds, so grouping by
date reads little of a row); `articles_fts` is an external-content FTS5 table over title, summary,
body and entities with the porter tokenizer (the service searches the same four fields by default,
entities through its `entities__text` companion); `articles_topics(article_id, topic)` and
`articles_entities(article_id, entity)` are the facet tables, indexed both ways.

Building goes through the service's own import steps (`sources.read_items`, `article.parse_article`,
`render.markdown_to_text`), so both index the same text. One search does what
`SearchEngine.search` does for /search?q=...&facets=topics,entities,published_at&per_page=10:

  1. the ids of every match (all words; any word when that finds fewer than
     `fallback_min_hits` and the query has several words, like the service) into a temp table,
     and, with a topic filter, the filtered ids into a second one
  2. the top 10 by bm25() (`ORDER BY rank`, column weights = the service's boosts), with the
     stored fields of each hit, the title highlighted and a body snippet() (HTML-escaped,
     `<mark>` around matches)
  3. facet counts by GROUP BY: topics over the matches without the topic filter (disjunctive, as
     the service counts them), entities over the filtered matches, top 10 each, a selected topic
     always listed
  4. a histogram by month over the filtered matches, empty months filled in

No typo tolerance (FTS5 has none); Porter stemming where the service uses Snowball English.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

WORD_RE = re.compile(r"\w+")
SNIPPET_TOKENS = 32  # ~200 characters, the service's snippets.max_chars
OPEN, CLOSE = "\x02", "\x03"  # match markers, turned into <mark> after HTML escaping

SCHEMA = """
CREATE TABLE articles (
    id INTEGER PRIMARY KEY,
    published_at INTEGER NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    lang TEXT NOT NULL,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    url TEXT NOT NULL,
    topics TEXT NOT NULL,
    entities TEXT NOT NULL,
    body TEXT NOT NULL,
    body_md TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    canonical_source TEXT NOT NULL,
    alternates TEXT NOT NULL
);
CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, summary, body, entities,
    content='articles', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TABLE articles_topics (article_id INTEGER NOT NULL, topic TEXT NOT NULL);
CREATE TABLE articles_entities (article_id INTEGER NOT NULL, entity TEXT NOT NULL);
"""
# Created after the bulk insert (faster than maintaining them row by row).
INDEXES = """
CREATE INDEX articles_published_at ON articles(published_at);
CREATE INDEX articles_topics_by_article ON articles_topics(article_id, topic);
CREATE INDEX articles_topics_by_topic ON articles_topics(topic, article_id);
CREATE INDEX articles_entities_by_article ON articles_entities(article_id, entity);
CREATE INDEX articles_entities_by_entity ON articles_entities(entity, article_id);
"""


def default_weights(config: Any) -> tuple[float, float, float, float]:
    """bm25() column weights for title, summary, body, entities: the service's boosts."""
    boosts = config.search_boosts()
    return (
        boosts.get("title", 1.0),
        boosts.get("summary", 1.0),
        boosts.get("body", 1.0),
        boosts.get("entities__text", 1.0),
    )


# -- building -------------------------------------------------------------------------------------


def article_rows(paths: Iterable[str], config: Any) -> Iterator[tuple]:
    """Rows for `insert_row`, through the service's own reading, validation and rendering."""
    from search_service.ingest.article import ImportContext, RecordRejected, parse_article
    from search_service.ingest.render import markdown_to_text
    from search_service.ingest.sources import read_items

    seen: set[str] = set()
    for item in read_items(paths):
        if item.value is None:
            continue
        try:
            article = parse_article(item.value, ImportContext(config.limits))
        except RecordRejected:
            continue
        if article.slug in seen:
            continue
        seen.add(article.slug)
        yield (
            int(article.published_at.timestamp()),
            article.slug,
            article.lang,
            article.title,
            article.summary,
            article.url,
            json.dumps(article.topics, ensure_ascii=False),
            json.dumps(article.entities, ensure_ascii=False),
            markdown_to_text(article.body_md, article.title),
            article.body_md,
            int(article.updated_at.timestamp()),
            article.canonical_source,
            json.dumps(article.alternates, ensure_ascii=False),
        )


class Builder:
    """A fresh database: create, insert rows one by one, finish (indexes, commit)."""

    def __init__(self, db_path: str | Path, weights: Sequence[float]) -> None:
        self.conn = sqlite3.connect(db_path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=DELETE")
        self.conn.executescript(SCHEMA)
        rank = "bm25(" + ", ".join(f"{w:g}" for w in weights) + ")"
        self.conn.execute("INSERT INTO articles_fts(articles_fts, rank) VALUES ('rank', ?)", (rank,))
        self.conn.execute("BEGIN")
        self.count = 0

    def insert_row(self, row: tuple) -> None:
        conn = self.conn
        cursor = conn.execute(
            "INSERT INTO articles (published_at, slug, lang, title, summary, url, topics, entities, body, body_md, "
            "updated_at, canonical_source, alternates) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
        article_id = cursor.lastrowid
        conn.execute(
            "INSERT INTO articles_fts (rowid, title, summary, body, entities) VALUES (?, ?, ?, ?, ?)",
            (article_id, row[3], row[4], row[8], row[7]),
        )
        topics, entities = json.loads(row[6]), json.loads(row[7])
        if topics:
            conn.executemany(
                "INSERT INTO articles_topics (article_id, topic) VALUES (?, ?)", [(article_id, t) for t in topics]
            )
        if entities:
            conn.executemany(
                "INSERT INTO articles_entities (article_id, entity) VALUES (?, ?)", [(article_id, e) for e in entities]
            )
        self.count += 1

    def finish(self) -> None:
        for statement in filter(str.strip, INDEXES.split(";")):
            self.conn.execute(statement)
        self.conn.execute("COMMIT")
        self.conn.execute("ANALYZE")
        self.conn.close()


def build(db_path: str | Path, paths: Iterable[str], config: Any) -> int:
    builder = Builder(db_path, default_weights(config))
    for row in article_rows(paths, config):
        builder.insert_row(row)
    builder.finish()
    return builder.count


# -- searching ------------------------------------------------------------------------------------


def match_expression(words: Sequence[str], any_word: bool = False) -> str:
    """Every word quoted (FTS5 syntax characters are then plain text), ANDed or ORed."""
    quoted = ['"' + w.replace('"', '""') + '"' for w in words]
    return (" OR " if any_word else " AND ").join(quoted)


def _marked(text: str | None) -> str:
    return html.escape(text or "", quote=False).replace(OPEN, "<mark>").replace(CLOSE, "</mark>")


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _next_month(start: date) -> date:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


class FtsSearch:
    def __init__(self, db_path: str | Path, fallback_min_hits: int = 5, facet_size: int = 10) -> None:
        self.conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)
        self.conn.execute("PRAGMA mmap_size = 1073741824")
        self.conn.execute("PRAGMA cache_size = -262144")  # 256 MB of page cache
        self.conn.execute("PRAGMA temp_store = MEMORY")
        self.conn.execute("CREATE TEMP TABLE m (id INTEGER PRIMARY KEY)")
        self.conn.execute("CREATE TEMP TABLE mf (id INTEGER PRIMARY KEY)")
        self.fallback_min_hits = fallback_min_hits
        self.facet_size = facet_size

    def close(self) -> None:
        self.conn.close()

    def _collect(self, expression: str | None, topics: Sequence[str]) -> int:
        match = "INSERT INTO m SELECT rowid FROM articles_fts WHERE articles_fts MATCH ?"
        topic_in = "t.topic IN (" + ", ".join("?" * len(topics)) + ")"
        return collect_matches(self.conn.execute, "DELETE FROM", match, expression, topic_in, tuple(topics))

    def search(self, q: str, topics: Sequence[str] = (), per_page: int = 10) -> dict[str, Any]:
        conn = self.conn
        topics = tuple(dict.fromkeys(t for t in topics if t))
        words = WORD_RE.findall(q.lower())
        expression = match_expression(words) if words else None
        total = self._collect(expression, topics)
        matched = "all"
        if words and len(words) > 1 and total < self.fallback_min_hits:
            expression = match_expression(words, any_word=True)
            total = self._collect(expression, topics)
            matched = "any"
        filtered = "mf" if topics else "m"

        hits = []
        if expression is not None and total:
            rows = conn.execute(
                "SELECT a.slug, a.title, a.summary, a.url, a.published_at, a.lang, a.topics, a.entities, "
                "highlight(articles_fts, 0, ?, ?), snippet(articles_fts, 2, ?, ?, '…', ?), rank "
                "FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid WHERE articles_fts MATCH ? "
                # EXISTS, not `rowid IN (...)`: FTS5 would run the MATCH once per id of an IN list.
                + ("AND EXISTS (SELECT 1 FROM mf WHERE mf.id = articles_fts.rowid) " if topics else "")
                + "ORDER BY rank LIMIT ?",
                (OPEN, CLOSE, OPEN, CLOSE, SNIPPET_TOKENS, expression, per_page),
            ).fetchall()
            for slug, title, summary, url, published, lang, hit_topics, hit_entities, marked, snip, rank in rows:
                hits.append(
                    {
                        "slug": slug,
                        "title": title,
                        "summary": summary,
                        "url": url,
                        "published_at": _iso(published),
                        "lang": lang,
                        "topics": json.loads(hit_topics),
                        "entities": json.loads(hit_entities),
                        "score": round(-rank, 4),
                        "highlights": {"title": _marked(marked), "snippet": _marked(snip)},
                    }
                )

        month = (
            f"SELECT date(a.published_at, 'unixepoch', 'start of month') AS month, count(*) FROM {filtered} x "
            "JOIN articles a ON a.id = x.id GROUP BY month ORDER BY month"
        )
        facets = facet_counts(conn.execute, "?", filtered, topics, self.facet_size, month)
        return {"total": total, "matched": matched, "hits": hits, "facets": facets}


def collect_matches(
    execute: Any, clear: str, match: str, expression: str | None, topic_in: str, topic_params: Any
) -> int:
    """Fill the temp table `m` with the ids of the matches (every article without an expression) and,
    with topics, `mf` with those among them having one of the topics: the number in the last one.
    `clear` empties a table (SQLite DELETE FROM, PostgreSQL TRUNCATE), `match` inserts the matches
    of the expression, `topic_in` tests `t.topic` against the topics."""
    execute(f"{clear} m")
    if expression is None:
        execute("INSERT INTO m SELECT id FROM articles")
    else:
        execute(match, (expression,))
    if not topic_params:
        return execute("SELECT count(*) FROM m").fetchone()[0]
    execute(f"{clear} mf")
    execute(
        "INSERT INTO mf SELECT DISTINCT t.article_id FROM articles_topics t JOIN m ON m.id = t.article_id "
        f"WHERE {topic_in}",
        topic_params,
    )
    return execute("SELECT count(*) FROM mf").fetchone()[0]


def facet_counts(
    execute: Any, mark: str, filtered: str, topics: Sequence[str], size: int, month: str
) -> dict[str, list[dict[str, Any]]]:
    """The facets of an answer: topic counts over the matches (temp table `m`: without the topic
    filter, as the service counts them, a selected topic always listed) and entity counts over
    `filtered`, top `size` each, by GROUP BY over the facet tables; articles per month by `month`
    (rows of the month's first day and a count). `mark` is the driver's parameter marker (SQLite ?,
    psycopg %s)."""
    topic_counts = execute(
        "SELECT t.topic, count(*) AS c FROM m JOIN articles_topics t ON t.article_id = m.id "
        f"GROUP BY t.topic ORDER BY c DESC, t.topic LIMIT {mark}",
        (size,),
    ).fetchall()
    shown = {value for value, _ in topic_counts}
    for topic in topics:
        if topic not in shown:
            count = execute(
                f"SELECT count(*) FROM m JOIN articles_topics t ON t.article_id = m.id WHERE t.topic = {mark}", (topic,)
            ).fetchone()[0]
            topic_counts.append((topic, count))
    entity_counts = execute(
        f"SELECT e.entity, count(*) AS c FROM {filtered} x JOIN articles_entities e ON e.article_id = x.id "
        f"GROUP BY e.entity ORDER BY c DESC, e.entity LIMIT {mark}",
        (size,),
    ).fetchall()
    return {
        "topics": [{"value": v, "count": c} for v, c in topic_counts],
        "entities": [{"value": v, "count": c} for v, c in entity_counts],
        "published_at": month_buckets(execute(month).fetchall()),
    }


def month_buckets(rows: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """(YYYY-MM-01, count) rows in order -> every month from the first to the last, empty ones too."""
    if not rows:
        return []
    counts = {date.fromisoformat(month): count for month, count in rows}
    out = []
    current, last = min(counts), max(counts)
    while current <= last:
        out.append({"start": current.isoformat(), "count": counts.get(current, 0)})
        current = _next_month(current)
    return out
