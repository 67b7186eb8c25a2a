"""The PostgreSQL peer in the benchmarks: PostgreSQL 15 full-text search doing the service's /search work.

The job a Django or Rails newsroom would do in its own database. `PgServer` starts a private
server for the benchmark: `initdb` into a temporary directory, `postgres` on a loopback port
(its socket in the same directory), stopped at the end (`pg_ctl stop -m fast`) and removed. As
root (PostgreSQL refuses to run as root) the server runs as the `postgres` user of Debian's
package, else as `nobody`. Binaries: Debian's /usr/lib/postgresql/15/bin, else `initdb` on PATH.

Schema: `articles` with a stored, generated tsvector over title (weight A), body (B), summary (C)
and entities (D) with the `english` configuration, under a GIN index; `articles_topics` and
`articles_entities` are the facet tables (a many-to-many table each, as an ORM makes them),
indexed by article. Building goes through the service's own import steps (`_sqlite_fts.article_rows`:
read, validate, render), so every peer indexes the same text; rows are loaded with COPY.

One search does what `SearchEngine.search` does for /search?q=...&facets=topics,entities,published_at:

  1. the ids of every match (`tsv @@ websearch_to_tsquery('english', q)`; with several words and
     fewer than `fallback_min_hits` matches, any word, like the service) into a temp table, and,
     with a topic filter, the filtered ids into a second one
  2. the top 10 by `ts_rank_cd` (weights {D, C, B, A} = the service's boosts of entities, summary,
     body and title), with the stored fields of each hit
  3. `ts_headline` snippets of those 10 (body, ~35 words) and their highlighted titles, HTML-escaped
     with `<mark>` around matches
  4. facet counts by GROUP BY: topics over the matches without the topic filter (disjunctive, as
     the service counts them), entities over the filtered matches, top 10 each, a selected topic
     always listed; articles per month over the filtered matches (`date_trunc`), empty months filled
"""

from __future__ import annotations

import html
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _sqlite_fts import WORD_RE, article_rows, collect_matches, facet_counts

BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"),)
OPEN, CLOSE = "\x02", "\x03"  # match markers, turned into <mark> after HTML escaping
HEADLINE = f'StartSel="{OPEN}", StopSel="{CLOSE}", MaxWords=35, MinWords=15, MaxFragments=1'
TITLE_HEADLINE = f'StartSel="{OPEN}", StopSel="{CLOSE}", HighlightAll=true'

SCHEMA = """
CREATE TABLE articles (
    id integer PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    published_at timestamptz NOT NULL,
    lang text NOT NULL,
    title text NOT NULL,
    summary text NOT NULL,
    url text NOT NULL,
    topics jsonb NOT NULL,
    entities jsonb NOT NULL,
    entities_text text NOT NULL,
    body text NOT NULL,
    body_md text NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') ||
        setweight(to_tsvector('english', body), 'B') ||
        setweight(to_tsvector('english', summary), 'C') ||
        setweight(to_tsvector('english', entities_text), 'D')
    ) STORED
);
CREATE TABLE articles_topics (article_id integer NOT NULL, topic text NOT NULL);
CREATE TABLE articles_entities (article_id integer NOT NULL, entity text NOT NULL);
"""
INDEXES = """
CREATE INDEX articles_tsv ON articles USING gin (tsv);
CREATE INDEX articles_published_at ON articles (published_at);
CREATE INDEX articles_topics_by_article ON articles_topics (article_id, topic);
CREATE INDEX articles_entities_by_article ON articles_entities (article_id, entity);
"""


def binaries() -> Path | None:
    """The directory of Debian's PostgreSQL 15 server binaries, or of `initdb` on PATH; None without them."""
    for directory in BIN_DIRS:
        if (directory / "initdb").exists():
            return directory
    found = shutil.which("initdb")
    return Path(os.path.realpath(found)).parent if found else None


class PgServer:
    """A private PostgreSQL server in a temporary directory, for one benchmark run."""

    def __init__(self, parent: str | Path | None = None, shared_buffers_mb: int = 256) -> None:
        bin_dir = binaries()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="bench-pg-", dir=parent))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = _unprivileged_user()
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
            _traversable(self.root.parent)
        self._run("initdb", "-D", str(self.data), "-U", "bench", "-A", "trust", "-E", "UTF8", "--locale=C")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c shared_buffers={shared_buffers_mb}MB "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=4GB "
            "-c maintenance_work_mem=512MB -c work_mem=64MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=bench dbname=postgres"

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        user = self.user

        def demote() -> None:
            if user is not None:
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

        done = subprocess.run(
            [str(self.bin / program), *args], capture_output=True, text=True, preexec_fn=demote, cwd=self.root
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


def _traversable(directory: Path) -> None:
    """Let the server's user pass through `directory` and its parents (a benchmark's work dir is made
    private, 0700): search permission only, nothing becomes listable or writable."""
    for path in (directory, *directory.parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(path, stat.S_IMODE(mode) | stat.S_IXOTH)


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("no unprivileged user (postgres or nobody) to run PostgreSQL as")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(dsn: str) -> Any:
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


# -- building -------------------------------------------------------------------------------------


def build(dsn: str, paths: Iterable[str], config: Any) -> int:
    """Create the schema, COPY every article in, build the indexes; the number of articles."""
    count = 0
    with connect(dsn) as conn:
        conn.execute(SCHEMA)
        with conn.cursor() as cur:
            with cur.copy(
                "COPY articles (id, slug, published_at, lang, title, summary, url, topics, entities, "
                "entities_text, body, body_md) FROM STDIN"
            ) as articles:
                facets = []
                for row in article_rows(paths, config):
                    count += 1
                    (published, slug, lang, title, summary, url, topics, entities, body, body_md, *_) = row
                    names = json.loads(entities)
                    articles.write_row((count, slug, datetime.fromtimestamp(published, UTC), lang, title, summary,
                                        url, topics, entities, " ".join(names), body, body_md))  # fmt: skip
                    facets.append((count, json.loads(topics), names))
            with cur.copy("COPY articles_topics (article_id, topic) FROM STDIN") as out:
                for article_id, topics, _ in facets:
                    for topic in dict.fromkeys(topics):
                        out.write_row((article_id, topic))
            with cur.copy("COPY articles_entities (article_id, entity) FROM STDIN") as out:
                for article_id, _, entities in facets:
                    for entity in dict.fromkeys(entities):
                        out.write_row((article_id, entity))
        for statement in filter(str.strip, INDEXES.split(";")):
            conn.execute(statement)
        conn.execute("VACUUM ANALYZE")
    return count


def database_bytes(dsn: str) -> int:
    with connect(dsn) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


# -- searching ------------------------------------------------------------------------------------


def _marked(text: str | None) -> str:
    return html.escape(text or "", quote=False).replace(OPEN, "<mark>").replace(CLOSE, "</mark>")


def _weights(config: Any) -> list[float]:
    """ts_rank_cd weights {D, C, B, A}: entities, summary, body, title, in the ratios of the service's boosts."""
    boosts = config.search_boosts()
    weights = [boosts.get(name, 1.0) for name in ("entities__text", "summary", "body", "title")]
    top = max(weights)
    return [w / top for w in weights]  # PostgreSQL takes weights in [0, 1]: the same ratios


class PgSearch:
    def __init__(self, dsn: str, config: Any, facet_size: int = 10) -> None:
        self.conn = connect(dsn)
        self.conn.execute("CREATE TEMP TABLE m (id integer PRIMARY KEY)")
        self.conn.execute("CREATE TEMP TABLE mf (id integer PRIMARY KEY)")
        self.fallback_min_hits = config.ranking.fallback_min_hits
        self.weights = _weights(config)
        self.facet_size = facet_size

    def close(self) -> None:
        self.conn.close()

    def _collect(self, text: str | None, topics: Sequence[str]) -> int:
        match = "INSERT INTO m SELECT id FROM articles WHERE tsv @@ websearch_to_tsquery('english', %s)"
        params = (list(topics),) if topics else ()
        return collect_matches(self.conn.execute, "TRUNCATE", match, text, "t.topic = ANY(%s)", params)

    def search(self, q: str, topics: Sequence[str] = (), per_page: int = 10) -> dict[str, Any]:
        conn = self.conn
        topics = tuple(dict.fromkeys(t for t in topics if t))
        words = WORD_RE.findall(q.lower())
        text = " ".join(words) if words else None
        total = self._collect(text, topics)
        matched = "all"
        if words and len(words) > 1 and total < self.fallback_min_hits:
            text = " or ".join(words)
            total = self._collect(text, topics)
            matched = "any"
        filtered = "mf" if topics else "m"
        hits = []
        if text is not None and total:
            rows = conn.execute(
                "WITH q AS (SELECT websearch_to_tsquery('english', %s) AS q), "
                f"top AS (SELECT a.*, ts_rank_cd(%s::float4[], a.tsv, q.q) AS rank FROM {filtered} x "
                "JOIN articles a ON a.id = x.id, q ORDER BY rank DESC, a.id LIMIT %s) "
                "SELECT slug, title, summary, url, published_at, lang, topics, entities, rank, "
                "ts_headline('english', title, q.q, %s), ts_headline('english', body, q.q, %s) "
                "FROM top, q ORDER BY rank DESC, id",
                (text, self.weights, per_page, TITLE_HEADLINE, HEADLINE),
            ).fetchall()
            for slug, title, summary, url, published, lang, hit_topics, hit_entities, rank, marked, snip in rows:
                hits.append(
                    {
                        "slug": slug,
                        "title": title,
                        "summary": summary,
                        "url": url,
                        "published_at": published.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                        "lang": lang,
                        "topics": hit_topics,
                        "entities": hit_entities,
                        "score": round(rank, 4),
                        "highlights": {"title": _marked(marked), "snippet": _marked(snip)},
                    }
                )
        month = (
            "SELECT to_char(date_trunc('month', a.published_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS month, "
            f"count(*) FROM {filtered} x JOIN articles a ON a.id = x.id GROUP BY month ORDER BY month"
        )
        facets = facet_counts(conn.execute, "%s", filtered, topics, self.facet_size, month)
        return {"total": total, "matched": matched, "hits": hits, "facets": facets}


def wait_ready(dsn: str, seconds: float = 10.0) -> None:
    """Until the server accepts connections (pg_ctl -w waits already; a belt for slow machines)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            connect(dsn).close()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
