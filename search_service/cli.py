"""`search-service`: reindex, delete, stats, serve, analytics. Errors become a message and an exit code here."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from tqdm import tqdm

from search_service.config import load_config
from search_service.errors import InputError, ServiceError
from search_service.index.indexer import Indexer
from search_service.index.report import Hooks, ImportReport, IndexerOptions, Reject
from search_service.index.store import IndexStore
from search_service.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Search service for news articles.")

IndexDir = Annotated[
    Path | None,
    typer.Option("--index-dir", help="Index location (default: $SEARCH_INDEX_DIR, else ./data/index)."),
]
ConfigPath = Annotated[
    Path | None, typer.Option("--config", help="Index config file (default: index_config/schema.toml).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]
LockWait = Annotated[
    float | None,
    typer.Option(
        "--lock-wait", min=0, help="Seconds to wait for another writer (default: $SEARCH_REINDEX_LOCK_WAIT_S, 600)."
    ),
]
STDERR_REJECT_CAP = 20


def _settings(index_dir: Path | None, config: Path | None = None) -> Settings:
    overrides: dict[str, Any] = {}
    if index_dir is not None:
        overrides["index_dir"] = index_dir
    if config is not None:
        overrides["config_path"] = config
    return Settings(**overrides)


def _run(action: Callable[[], int | None]) -> None:
    try:
        code = action()
    except ServiceError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(exc.exit_code) from None
    raise typer.Exit(code or 0)


class RejectLog:
    """Rejected records to a JSON Lines file and, up to a cap, to stderr."""

    def __init__(self, file: TextIO | None, cap: int = STDERR_REJECT_CAP) -> None:
        self.file = file
        self.cap = cap
        self.count = 0

    def __call__(self, reject: Reject) -> None:
        self.count += 1
        if self.file is not None:
            record = {"source": reject.source, "line": reject.line, "slug": reject.slug, "reason": reject.reason}
            self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.count <= self.cap:
            tqdm.write(f"rejected {reject.source}:{reject.line}: {reject.reason}", file=sys.stderr)

    def close(self) -> None:
        if self.count > self.cap:
            more = self.count - self.cap
            where = " (all in the --rejects file)" if self.file else ""
            typer.echo(f"... and {more} more rejected records{where}", err=True)


@app.command()
def reindex(
    paths: Annotated[list[str], typer.Argument(help="Files, directories (recursive) or - for stdin.")],
    incremental: Annotated[
        bool, typer.Option("--incremental", help="Upsert by slug instead of a full rebuild.")
    ] = False,
    index_dir: IndexDir = None,
    config: ConfigPath = None,
    as_json: AsJson = False,
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Write rejected records here (JSON Lines).")] = None,
    max_rejects: Annotated[
        int | None, typer.Option("--max-rejects", min=0, help="Fail, changing nothing, beyond this many rejects.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="With --incremental: write articles even when older (updated_at) or unchanged."),
    ] = False,
    exact: Annotated[
        bool,
        typer.Option(
            "--exact", help="Rebuild exactly this input: drop (and list) the writes made since the last rebuild."
        ),
    ] = False,
    lock_wait: LockWait = None,
) -> None:
    """Import articles: a full rebuild switched in atomically, or --incremental upserts."""

    def action() -> int:
        if force and not incremental:
            raise InputError("--force applies to --incremental upserts (a full rebuild writes every article anyway)")
        if exact and incremental:
            raise InputError("--exact applies to a full rebuild (an --incremental run only adds to the index)")
        settings = _settings(index_dir, config)
        index_config = load_config(settings.config_path)
        with ExitStack() as stack:
            reject_file = stack.enter_context(_open_for_writing(rejects)) if rejects else None
            log = RejectLog(reject_file)
            stack.callback(log.close)
            bar = stack.enter_context(tqdm(unit=" records", file=sys.stderr, disable=None, leave=False))
            dropped = DroppedLog()
            stack.callback(dropped.close)
            hooks = Hooks(
                on_reject=log,
                on_warning=lambda source, line, msg: tqdm.write(f"warning {source}:{line}: {msg}", file=sys.stderr),
                on_progress=lambda n: bar.update(1),
                on_dropped=dropped,
                on_lock_wait=_lock_waiter(settings, lock_wait),
            )
            options = _writer_options(settings, lock_wait, max_rejects=max_rejects)
            indexer = Indexer(IndexStore(settings.index_dir), index_config, options, hooks)
            report = indexer.upsert(paths, force=force) if incremental else indexer.rebuild(paths, exact=exact)
        _print_report(report, as_json)
        return 0

    _run(action)


@app.command()
def delete(
    slugs: Annotated[list[str], typer.Argument(help="Slugs of the articles to remove.")],
    index_dir: IndexDir = None,
    config: ConfigPath = None,
    as_json: AsJson = False,
    lock_wait: LockWait = None,
) -> None:
    """Remove articles by slug (unknown slugs are counted as skipped); the deletions outlast rebuilds
    from files that still hold the same or an older version."""

    def action() -> int:
        settings = _settings(index_dir, config)
        hooks = Hooks(on_lock_wait=_lock_waiter(settings, lock_wait))
        options = _writer_options(settings, lock_wait)
        indexer = Indexer(IndexStore(settings.index_dir), load_config(settings.config_path), options, hooks)
        _print_report(indexer.delete(slugs), as_json)
        return 0

    _run(action)


class DroppedLog:
    """Writes a `reindex --exact` left out, to stderr up to a cap, then how many more."""

    def __init__(self, cap: int = STDERR_REJECT_CAP) -> None:
        self.cap = cap
        self.count = 0

    def __call__(self, slug: str, deletion: bool) -> None:
        self.count += 1
        if self.count <= self.cap:
            what = "deletion of" if deletion else "write of"
            tqdm.write(f"dropped {what} {slug} (made since the last rebuild, not in this input)", file=sys.stderr)

    def close(self) -> None:
        if self.count > self.cap:
            typer.echo(f"... and {self.count - self.cap} more dropped writes", err=True)


def _writer_options(settings: Settings, lock_wait: float | None, **more: Any) -> IndexerOptions:
    """A CLI writer: it waits for the lock (announced, so HTTP writes journal meanwhile)."""
    return IndexerOptions(
        heap_bytes=settings.writer_heap_mb * 1024 * 1024,
        threads=settings.writer_threads,
        lock_wait_s=settings.reindex_lock_wait_s if lock_wait is None else lock_wait,
        announce_wait=True,
        **more,
    )


def _lock_waiter(settings: Settings, lock_wait: float | None) -> Callable[[str, float], None]:
    limit = settings.reindex_lock_wait_s if lock_wait is None else lock_wait

    def waiting(holder: str, waited: float) -> None:
        tqdm.write(
            f"waiting for the writer lock of {settings.index_dir} (held by pid {holder}): "
            f"{waited:.0f} s of at most {limit:g} s (--lock-wait)",
            file=sys.stderr,
        )

    return waiting


@app.command()
def embed(index_dir: IndexDir = None, config: ConfigPath = None, as_json: AsJson = False) -> None:
    """Embed the live articles that have no vector yet (semantic ranking enabled); safe to kill and run again."""

    def action() -> int:
        settings = _settings(index_dir, config)
        index_config = load_config(settings.config_path)
        # The bar counts articles embedded (its rate is articles/s embedded); those already done only pass by.
        with tqdm(unit=" articles", desc="embedded", file=sys.stderr, disable=None, smoothing=0.1) as bar:

            def progress(seen: int, embedded: int) -> None:
                if embedded != bar.n:
                    bar.update(embedded - bar.n)
                    bar.set_postfix(looked_at=seen, refresh=False)

            indexer = Indexer(IndexStore(settings.index_dir), index_config)
            report = indexer.embed_missing(progress)
        if as_json:
            typer.echo(json.dumps(report.as_dict()))
        else:
            rate = report.embedded / report.seconds if report.seconds else 0.0
            typer.echo(
                f"embed: {report.read} articles looked at, {report.embedded} embedded; "
                f"{report.seconds:.1f} s, {rate:,.1f} articles/s embedded ({report.generation})"
            )
        return 0

    _run(action)


@app.command()
def stats(
    index_dir: IndexDir = None,
    config: ConfigPath = None,
    as_json: AsJson = False,
    boilerplate: Annotated[
        bool, typer.Option("--boilerplate", help="List paragraphs repeated across many live articles.")
    ] = False,
    min_share: Annotated[
        float, typer.Option("--min-share", help="With --boilerplate: in at least this share of the articles.")
    ] = 0.05,
) -> None:
    """Document count, segments, size on disk, config version and last commit of the live index;
    with --boilerplate, the paragraphs repeated across at least --min-share of its articles."""

    def action() -> int:
        from search_service.index.reader import index_stats

        settings = _settings(index_dir, config)
        if boilerplate:
            _print_boilerplate(IndexStore(settings.index_dir), load_config(settings.config_path), min_share, as_json)
            return 0
        info = index_stats(IndexStore(settings.index_dir), load_config(settings.config_path))
        if as_json:
            typer.echo(json.dumps(info))
        else:
            for key, value in info.items():
                typer.echo(f"{key:>20}: {value}")
        return 0

    _run(action)


@app.command()
def evaluate(
    queries: Annotated[Path, typer.Option("--queries", help="qid<TAB>text per line.")],
    qrels: Annotated[Path, typer.Option("--qrels", help="qid<TAB>slug<TAB>grade per line.")],
    corpus: Annotated[
        list[str] | None, typer.Option("--corpus", help="Articles to index (into --index-dir, else a temp dir).")
    ] = None,
    index_dir: Annotated[Path | None, typer.Option("--index-dir", help="Use (or build into) this index.")] = None,
    config: ConfigPath = None,
    typos: Annotated[
        int | None, typer.Option("--typos", help="Seed: one typo in every query word of 5+ letters.")
    ] = None,
    freshness: Annotated[
        str, typer.Option("--freshness", help="on (the config's [ranking.freshness]) or off (relevance alone).")
    ] = "on",
    now: Annotated[
        str | None, typer.Option("--now", help="Measure articles' ages from this ISO date or datetime (UTC).")
    ] = None,
    semantic: Annotated[
        str | None,
        typer.Option(
            "--semantic",
            help="on: [semantic] enabled (the index is built with vectors); off: lexical ranking only. "
            "Default: as the config says.",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """nDCG@10, MAP@100 and Recall@100 of the /search ranking on a judged query set."""

    def action() -> int:
        from search_service.evaluate import evaluate_corpus
        from search_service.http.common import parse_when

        if not corpus and index_dir is None:
            raise InputError("give --corpus ARTICLES (indexed into a temporary index) or --index-dir DIR")
        if freshness not in ("on", "off"):
            raise InputError(f"--freshness must be on or off (got {freshness!r})")
        if semantic not in (None, "on", "off"):
            raise InputError(f"--semantic must be on or off (got {semantic!r})")
        settings = _settings(None, config)
        use = None if semantic is None else semantic == "on"
        result = evaluate_corpus(
            load_config(settings.config_path), queries, qrels, corpus, index_dir, typos,
            freshness=freshness == "on", now=parse_when("--now", now), semantic=use,
        )  # fmt: skip
        if as_json:
            typer.echo(json.dumps(result.metrics))
        else:
            typer.echo(
                f"{result.queries} queries ({result.judged} judged), {result.seconds:.1f} s, "
                f"median {result.median_query_ms:.2f} ms/query"
            )
            for name, value in result.metrics.items():
                typer.echo(f"{name:>12}: {value:.4f}")
        return 0

    _run(action)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes, each reading the same index.")] = None,
    index_dir: IndexDir = None,
    config: ConfigPath = None,
) -> None:
    """Serve the HTTP API with uvicorn."""
    import os
    import tempfile

    import uvicorn

    settings = _settings(index_dir, config)
    # Workers are separate processes that build their app from the environment: hand it down there.
    os.environ["SEARCH_INDEX_DIR"] = str(settings.index_dir.resolve())
    os.environ["SEARCH_CONFIG_PATH"] = str(Path(settings.config_path).resolve())
    count = workers or settings.workers
    if count > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker counts its own requests; /metrics adds them up from this directory.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="search-metrics-")
    bind_host, bind_port = host or settings.host, port or settings.port
    shown = f"[{bind_host}]" if ":" in bind_host else bind_host
    typer.echo(
        f"Serving http://{shown}:{bind_port}/ (search page; API docs at /docs) from {settings.index_dir.resolve()} "
        f"with {count} worker{'s' if count > 1 else ''}",
        err=True,
    )
    uvicorn.run(
        "search_service.http.app:app_from_env",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=count,
        timeout_graceful_shutdown=10,
        log_level="warning",
        access_log=False,  # the app writes its own JSON access log with request ids
    )


def _print_boilerplate(store: IndexStore, index_config: Any, min_share: float, as_json: bool) -> None:
    from search_service.index.reader import IndexReader
    from search_service.ingest.boilerplate import repeated_paragraphs

    opened = IndexReader(store, index_config).current()
    body = index_config.snippets.fields[0]
    report = repeated_paragraphs(
        opened.index.searcher(), opened.index.schema, index_config.key_field.name, body, min_share
    )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    typer.echo(
        f"{len(report.paragraphs)} paragraphs in at least {min_share:.1%} of {report.articles:,} live articles "
        f"(the {body} text as indexed, after the content rules):"
    )
    for p in report.paragraphs:
        text = p.text if len(p.text) <= 100 else p.text[:99] + "…"
        typer.echo(f"{p.count:>9,}  {p.share:>6.1%}  {text}")


synonyms_app = typer.Typer(no_args_is_help=True, help="The synonym set (kept with the index; JSON files).")
rules_app = typer.Typer(no_args_is_help=True, help="The curation rule set (kept with the index; JSON files).")
app.add_typer(synonyms_app, name="synonyms")
app.add_typer(rules_app, name="rules")
SetFile = Annotated[
    Path, typer.Argument(help='JSON as PUT /admin/... takes ({"synonyms": [...]} or {"rules": [...]}); - for stdin.')
]


def _editorial_command(kind: str, action: str, index_dir: Path | None, config: Path | None, file: Path | None) -> None:
    def run() -> int:
        from search_service.editorial.store import EditorialStore

        settings = _settings(index_dir, config)
        store = EditorialStore(settings.index_dir)
        if action == "get":
            result = store.read(kind).as_dict()
        elif action == "rollback":
            result = store.rollback(kind).as_dict()
        else:
            result = _replace_editorial(kind, settings, store, _read_input(file))
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
        for warning in result.get("warnings", []):
            typer.echo(f"warning: {warning}", err=True)
        return 0

    _run(run)


def _replace_editorial(kind: str, settings: Settings, store: Any, raw: str) -> dict[str, Any]:
    from pydantic import ValidationError

    from search_service.editorial.rules import RuleSetIn
    from search_service.editorial.store import replace_rules, replace_synonyms, slug_checker
    from search_service.editorial.synonyms import SynonymSetIn
    from search_service.errors import IndexNotReadyError, InvalidParameterError
    from search_service.http.routes.editorial import rule_limits, synonym_limits
    from search_service.index.reader import IndexReader
    from search_service.index.schema import build_schema
    from search_service.search.query import QueryBuilder

    index_config = load_config(settings.config_path)
    model = SynonymSetIn if kind == "synonyms" else RuleSetIn
    try:
        payload = model.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or kind}: {e['msg']}" for e in exc.errors())
        raise InvalidParameterError(kind, problems) from None
    if kind == "synonyms":
        builder = QueryBuilder(index_config, build_schema(index_config))
        field = next((f.name for f in index_config.text_fields if f.boost), index_config.text_fields[0].name)
        return replace_synonyms(store, payload, synonym_limits(settings), lambda text: builder.tokens(text, field))
    try:
        reader = IndexReader(IndexStore(settings.index_dir), index_config)
        exists = slug_checker(reader.searcher(), reader.schema, index_config.key_field.name)
    except IndexNotReadyError:
        exists = None
    return replace_rules(store, payload, rule_limits(settings), index_config.filters, exists)


def _read_input(file: Path | None) -> str:
    if file is None or str(file) == "-":
        return sys.stdin.read()
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {file}: {exc}") from exc


@synonyms_app.command("get")
def synonyms_get(index_dir: IndexDir = None, config: ConfigPath = None) -> None:
    """Print the live synonym set (JSON, with its version)."""
    _editorial_command("synonyms", "get", index_dir, config, None)


@synonyms_app.command("set")
def synonyms_set(file: SetFile, index_dir: IndexDir = None, config: ConfigPath = None) -> None:
    """Validate FILE and make it the live synonym set (the old one is kept for rollback)."""
    _editorial_command("synonyms", "set", index_dir, config, file)


@synonyms_app.command("rollback")
def synonyms_rollback(index_dir: IndexDir = None, config: ConfigPath = None) -> None:
    """Make the previous synonym set live again."""
    _editorial_command("synonyms", "rollback", index_dir, config, None)


@rules_app.command("get")
def rules_get(index_dir: IndexDir = None, config: ConfigPath = None) -> None:
    """Print the live curation rules (JSON, with their version)."""
    _editorial_command("rules", "get", index_dir, config, None)


@rules_app.command("set")
def rules_set(file: SetFile, index_dir: IndexDir = None, config: ConfigPath = None) -> None:
    """Validate FILE and make it the live rule set (the old one is kept for rollback); unknown slugs warn."""
    _editorial_command("rules", "set", index_dir, config, file)


@rules_app.command("rollback")
def rules_rollback(index_dir: IndexDir = None, config: ConfigPath = None) -> None:
    """Make the previous rule set live again."""
    _editorial_command("rules", "rollback", index_dir, config, None)


analytics_app = typer.Typer(no_args_is_help=True, help="Search analytics: top queries, no-result queries, a summary.")
app.add_typer(analytics_app, name="analytics")
Since = Annotated[str, typer.Option("--since", help="From: 7d (midnight UTC 7 days ago), 12h, an ISO date.")]
Until = Annotated[str | None, typer.Option("--until", help="Before (exclusive); the same forms as --since.")]
Limit = Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many queries.")]
AnalyticsDb = Annotated[
    Path | None, typer.Option("--db", help="Analytics database (default: $SEARCH_ANALYTICS_DB, else beside the index).")
]


def _analytics_report(kind: str, since: str, until: str | None, limit: int, db: Path | None, index_dir: Path | None,
                      as_json: bool) -> None:  # fmt: skip
    def action() -> int:
        import time

        from search_service.analytics import store as analytics_store
        from search_service.analytics.recorder import database_path

        settings = _settings(index_dir)
        path = db or database_path(settings)
        span = analytics_store.window(since, until, time.time())
        try:
            if kind == "summary":
                result: Any = analytics_store.summary(path, span)
            else:
                read = analytics_store.top_queries if kind == "top" else analytics_store.no_results
                result = {**span.describe(), "rows": read(path, span, limit)}
        except analytics_store.AnalyticsUnavailableError as exc:
            raise InputError(str(exc)) from None
        if as_json:
            typer.echo(json.dumps(result))
        elif kind == "summary":
            _print_summary(result)
        else:
            _print_queries(result, "searches" if kind == "top" else "found nothing")
        return 0

    _run(action)


@analytics_app.command("top")
def analytics_top(since: Since = "7d", until: Until = None, limit: Limit = 20, db: AnalyticsDb = None,
                  index_dir: IndexDir = None, as_json: AsJson = False) -> None:  # fmt: skip
    """The most searched queries, with clicks, click-through rate and how much they found."""
    _analytics_report("top", since, until, limit, db, index_dir, as_json)


@analytics_app.command("no-results")
def analytics_no_results(since: Since = "7d", until: Until = None, limit: Limit = 20, db: AnalyticsDb = None,
                         index_dir: IndexDir = None, as_json: AsJson = False) -> None:  # fmt: skip
    """Queries that found nothing, by how often."""
    _analytics_report("no-results", since, until, limit, db, index_dir, as_json)


@analytics_app.command("summary")
def analytics_summary(since: Since = "7d", until: Until = None, db: AnalyticsDb = None, index_dir: IndexDir = None,
                      as_json: AsJson = False) -> None:  # fmt: skip
    """Searches, zero-result rate, click-through rate and mean click position, in all and per day."""
    _analytics_report("summary", since, until, 0, db, index_dir, as_json)


def _print_queries(result: dict[str, Any], counted: str) -> None:
    typer.echo(f"{counted:>13}  {'clicks':>7}  {'ctr':>6}  {'avg found':>9}  query")
    for row in result["rows"]:
        typer.echo(
            f"{row['count']:>13,}  {row['clicks']:>7,}  {row['ctr']:>6.1%}  {row['avg_total']:>9.1f}  {row['q']}"
        )
    if not result["rows"]:
        typer.echo("(none in this period)")


def _print_summary(result: dict[str, Any]) -> None:
    def line(label: str, figures: dict[str, Any]) -> str:
        position = figures["mean_click_position"]
        return (
            f"{label:>10}  {figures['searches']:>9,}  {figures['zero_result_rate']:>12.1%}  {figures['ctr']:>6.1%}  "
            f"{'-' if position is None else f'{position:.1f}':>9}"
        )

    typer.echo(f"{'day':>10}  {'searches':>9}  {'found nothing':>12}  {'ctr':>6}  {'mean pos.':>9}")
    for day in result["days"]:
        typer.echo(line(day["day"], day))
    typer.echo(line("all", result))


def _open_for_writing(path: Path) -> TextIO:
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from exc


def _print_report(report: ImportReport, as_json: bool) -> None:
    data = report.as_dict()
    if as_json:
        typer.echo(json.dumps(data))
        return
    carried = ""
    if report.mode == "rebuild":
        dropped = f", {report.dropped} dropped (--exact)" if report.dropped else ""
        carried = (
            f"writes since the last rebuild: {report.carried} carried over, "
            f"{report.superseded} superseded by this input{dropped}; "
        )
    typer.echo(
        f"{report.mode}: read {report.read}, indexed {report.indexed} "
        f"({report.new} new / {report.updated} updated), deleted {report.deleted}, "
        f"rejected {report.rejected}, skipped {report.skipped}, stale {report.stale}, unchanged {report.unchanged}, "
        f"warnings {report.warnings}, journal writes {report.journal}; {carried}"
        f"{report.seconds:.2f} s, {report.docs_per_s:,.0f} docs/s; "
        f"index now holds {report.documents} articles ({report.generation})"
        + (f"; ANN graph {report.ann}, {report.ann_rows} rows ({report.ann_seconds:.1f} s)" if report.ann else "")
    )


def main() -> None:
    app()
