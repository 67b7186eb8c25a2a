"""`search-service`: reindex, delete, stats, serve. Errors become a message and an exit code here."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from tqdm import tqdm

from .config import load_config
from .errors import InputError, ServiceError
from .indexer import Hooks, ImportReport, Indexer, IndexerOptions, Reject
from .settings import Settings
from .store import IndexStore

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Search service for news articles.")

IndexDir = Annotated[
    Path | None,
    typer.Option("--index-dir", help="Index location (default: $SEARCH_INDEX_DIR, else ./data/index)."),
]
ConfigPath = Annotated[
    Path | None, typer.Option("--config", help="Index config file (default: index_config/schema.toml).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]
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
) -> None:
    """Import articles: a full rebuild switched in atomically, or --incremental upserts."""

    def action() -> int:
        settings = _settings(index_dir, config)
        index_config = load_config(settings.config_path)
        with ExitStack() as stack:
            reject_file = stack.enter_context(_open_for_writing(rejects)) if rejects else None
            log = RejectLog(reject_file)
            stack.callback(log.close)
            bar = stack.enter_context(tqdm(unit=" records", file=sys.stderr, disable=None, leave=False))
            hooks = Hooks(
                on_reject=log,
                on_warning=lambda source, line, msg: tqdm.write(f"warning {source}:{line}: {msg}", file=sys.stderr),
                on_progress=lambda n: bar.update(1),
            )
            options = IndexerOptions(
                heap_bytes=settings.writer_heap_mb * 1024 * 1024,
                threads=settings.writer_threads,
                max_rejects=max_rejects,
            )
            indexer = Indexer(IndexStore(settings.index_dir), index_config, options, hooks)
            report = indexer.upsert(paths) if incremental else indexer.rebuild(paths)
        _print_report(report, as_json)
        return 0

    _run(action)


@app.command()
def delete(
    slugs: Annotated[list[str], typer.Argument(help="Slugs of the articles to remove.")],
    index_dir: IndexDir = None,
    config: ConfigPath = None,
    as_json: AsJson = False,
) -> None:
    """Remove articles by slug (unknown slugs are counted as skipped)."""

    def action() -> int:
        settings = _settings(index_dir, config)
        indexer = Indexer(IndexStore(settings.index_dir), load_config(settings.config_path))
        _print_report(indexer.delete(slugs), as_json)
        return 0

    _run(action)


@app.command()
def embed(index_dir: IndexDir = None, config: ConfigPath = None, as_json: AsJson = False) -> None:
    """Embed the live articles that have no vector yet ([semantic]); safe to kill and run again."""

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
def stats(index_dir: IndexDir = None, config: ConfigPath = None, as_json: AsJson = False) -> None:
    """Document count, segments, size on disk, config version and last commit of the live index."""

    def action() -> int:
        from .reader import index_stats

        settings = _settings(index_dir, config)
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
        from .evaluate import evaluate_corpus

        if not corpus and index_dir is None:
            raise InputError("give --corpus ARTICLES (indexed into a temporary index) or --index-dir DIR")
        if semantic not in (None, "on", "off"):
            raise InputError(f"--semantic must be on or off (got {semantic!r})")
        settings = _settings(None, config)
        use = None if semantic is None else semantic == "on"
        result = evaluate_corpus(load_config(settings.config_path), queries, qrels, corpus, index_dir, typos, use)
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
    uvicorn.run(
        "search_service.api:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=count,
        timeout_graceful_shutdown=10,
        log_level="warning",
        access_log=False,  # the app writes its own JSON access log with request ids
    )


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
    typer.echo(
        f"{report.mode}: read {report.read}, indexed {report.indexed} "
        f"({report.new} new / {report.updated} updated), deleted {report.deleted}, "
        f"rejected {report.rejected}, skipped {report.skipped}, warnings {report.warnings}; "
        f"{report.seconds:.2f} s, {report.docs_per_s:,.0f} docs/s; "
        f"index now holds {report.documents} articles ({report.generation})"
    )


def main() -> None:
    app()
