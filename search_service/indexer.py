"""Import operations: full rebuild, incremental upsert, delete. The only code holding an IndexWriter."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import tantivy

from .article import Article, ImportContext, RecordRejected, parse_article
from .config import IndexConfig, load_config
from .document import document_builder, stored_article
from .errors import ConfigError, IndexNotReadyError, IndexWriteError, TooManyRejectsError
from .schema import build_schema
from .sources import Item, read_items
from .store import Generation, IndexStore, write_last_run

# Tantivy refuses a writer whose memory arena per indexing thread is smaller than this.
MIN_HEAP_PER_THREAD = 15_000_000


@dataclass(frozen=True)
class Reject:
    source: str
    line: int
    reason: str
    slug: str | None = None


@dataclass
class ImportReport:
    mode: str
    read: int = 0
    indexed: int = 0
    new: int = 0
    updated: int = 0
    deleted: int = 0
    rejected: int = 0
    skipped: int = 0
    warnings: int = 0
    seconds: float = 0.0
    documents: int = 0
    generation: str | None = None

    @property
    def docs_per_s(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"docs_per_s": round(self.docs_per_s, 1), "seconds": round(self.seconds, 3)}


@dataclass
class Hooks:
    """How a caller hears about progress; all optional."""

    on_reject: Callable[[Reject], None] = lambda reject: None
    on_warning: Callable[[str, int, str], None] = lambda source, line, message: None
    on_progress: Callable[[int], None] = lambda count: None


@dataclass
class IndexerOptions:
    heap_bytes: int = 256 * 1024 * 1024
    threads: int = 2
    # Abort, leaving the live index untouched, once more records than this are rejected.
    max_rejects: int | None = None


@dataclass
class _Batch:
    """State of one run over the input: which slugs it has seen, and where."""

    report: ImportReport
    seen: dict[str, tuple[str, int]] = field(default_factory=dict)


class Indexer:
    def __init__(
        self, store: IndexStore, config: IndexConfig, options: IndexerOptions | None = None, hooks: Hooks | None = None
    ) -> None:
        self.store = store
        self.config = config
        self.options = options or IndexerOptions()
        self.hooks = hooks or Hooks()
        self.key = config.key_field.name
        self.schema = build_schema(config)
        self._build = document_builder(config)

    # -- operations -------------------------------------------------------------------------

    def rebuild(self, paths: Iterable[str]) -> ImportReport:
        """Index everything in `paths` into a new generation and switch to it atomically."""
        with self.store.writer_lock(), self._write_errors():
            started = time.perf_counter()
            self.store.remove_stale()
            previous = self.store.current()
            old_keys = _keys_of(previous, self.key)
            with self._new_generation() as (generation, index, writer):
                batch = _Batch(ImportReport("rebuild", generation=generation.name))
                for article in self._articles(read_items(paths), batch):
                    writer.add_document(self._build(article))
                    self._count(batch, article.slug in old_keys)
                writer.commit()
                writer.wait_merging_threads()
            # Every old key seen again was counted as updated (slugs are unique in a batch).
            batch.report.deleted = len(old_keys) - batch.report.updated
            self.store.publish(generation)
            return self._finish(batch.report, index, started)

    def upsert(self, paths: Iterable[str]) -> ImportReport:
        """Add or replace articles by slug in the live index; one commit at the end."""
        with self.store.writer_lock(), self._write_errors():
            started = time.perf_counter()
            self.store.remove_stale()
            current = self.store.current()
            if current is None or current.fingerprint != self.config.fingerprint:
                return self._migrate_and_upsert(current, paths, started)
            batch = _Batch(ImportReport("incremental", generation=current.name))
            index = current.open(self.config)
            searcher = index.searcher()
            writer = self._writer(index)
            try:
                for article in self._articles(read_items(paths), batch):
                    existed = self._exists(searcher, article.slug)
                    writer.delete_documents_by_term(self.key, article.slug)
                    writer.add_document(self._build(article))
                    self._count(batch, existed)
                writer.commit()
                writer.wait_merging_threads()
            except BaseException:
                _abandon(writer)
                raise
            return self._finish(batch.report, index, started)

    def delete(self, slugs: Iterable[str]) -> ImportReport:
        with self.store.writer_lock(), self._write_errors():
            started = time.perf_counter()
            current = self.store.current()
            if current is None:
                raise IndexNotReadyError(f"there is no index in {self.store.root} to delete from")
            report = ImportReport("delete", generation=current.name)
            index = current.open(self.config)
            searcher = index.searcher()
            writer = self._writer(index)
            for slug in dict.fromkeys(slugs):
                report.read += 1
                if self._exists(searcher, slug):
                    writer.delete_documents_by_term(self.key, slug)
                    report.deleted += 1
                else:
                    report.skipped += 1
            writer.commit()
            writer.wait_merging_threads()
            return self._finish(report, index, started)

    # -- steps ------------------------------------------------------------------------------

    def _migrate_and_upsert(self, current: Generation | None, paths: Iterable[str], started: float) -> ImportReport:
        """The live index was built by another config (or there is none): carry its articles over
        into a new generation built by this config, apply the upserts there, then switch."""
        carried = list(_stored_articles(current)) if current else []
        with self._new_generation() as (generation, index, writer):
            batch = _Batch(ImportReport("incremental", generation=generation.name))
            incoming = {}
            for article in self._articles(read_items(paths), batch):
                incoming[article.slug] = article
            old_keys = set()
            for article in carried:
                old_keys.add(article.slug)
                if article.slug not in incoming:
                    writer.add_document(self._build(article))
            for article in incoming.values():
                writer.add_document(self._build(article))
                self._count(batch, article.slug in old_keys)
            writer.commit()
            writer.wait_merging_threads()
        self.store.publish(generation)
        return self._finish(batch.report, index, started)

    @contextmanager
    def _write_errors(self) -> Iterator[None]:
        """Tantivy reports a failed write (a full disk, most often) as a ValueError from its writer
        thread; say what happened and how much room is left instead of a traceback."""
        try:
            yield
        except (ValueError, OSError) as exc:
            try:
                free = f"{shutil.disk_usage(self.store.root).free / 2**20:,.1f} MB of disk space free"
            except OSError:
                free = "free space unknown"
            raise IndexWriteError(
                f"could not write the index in {self.store.root} ({free}; is the disk full?): {exc}. "
                "The live index was not changed."
            ) from exc

    @contextmanager
    def _new_generation(self) -> Iterator[tuple[Generation, tantivy.Index, tantivy.IndexWriter]]:
        """A fresh generation with its writer; removed again, writer stopped first, if the block fails."""
        generation = self.store.new_generation(self.config)
        writer = None
        try:
            index = generation.open(self.config)
            writer = self._writer(index)
            yield generation, index, writer
        except BaseException:
            if writer is not None:
                _abandon(writer)
            self.store.discard(generation)
            raise

    def _articles(self, items: Iterator[Item], batch: _Batch) -> Iterator[Article]:
        report = batch.report
        for item in items:
            report.read += 1
            self.hooks.on_progress(report.read)
            if item.skipped:
                report.skipped += 1
                continue
            if item.error is not None:
                self._reject(report, Reject(item.source, item.line, item.error))
                continue
            context = ImportContext(self.config.limits)
            try:
                article = parse_article(item.value, context)
            except RecordRejected as exc:
                self._reject(report, Reject(item.source, item.line, exc.reason, exc.slug))
                continue
            first = batch.seen.get(article.slug)
            if first is not None:
                where = f"line {first[1]}" if first[0] == item.source else f"{first[0]} line {first[1]}"
                self._reject(
                    report,
                    Reject(item.source, item.line, f"duplicate slug in batch, first seen on {where}", article.slug),
                )
                continue
            batch.seen[article.slug] = (item.source, item.line)
            for message in context.warnings:
                report.warnings += 1
                self.hooks.on_warning(item.source, item.line, message)
            yield article

    def _reject(self, report: ImportReport, reject: Reject) -> None:
        report.rejected += 1
        self.hooks.on_reject(reject)
        limit = self.options.max_rejects
        if limit is not None and report.rejected > limit:
            raise TooManyRejectsError(
                f"more than {limit} records rejected (--max-rejects); nothing was changed in the index"
            )

    @staticmethod
    def _count(batch: _Batch, existed: bool) -> None:
        batch.report.indexed += 1
        if existed:
            batch.report.updated += 1
        else:
            batch.report.new += 1

    def _writer(self, index: tantivy.Index) -> tantivy.IndexWriter:
        per_thread = self.options.heap_bytes // max(self.options.threads, 1)
        if per_thread < MIN_HEAP_PER_THREAD:
            raise ConfigError(
                f"the writer heap ({self.options.heap_bytes // 2**20} MB) is too small for {self.options.threads} "
                f"threads: tantivy needs at least {MIN_HEAP_PER_THREAD // 10**6} MB per thread "
                "(raise SEARCH_WRITER_HEAP_MB or lower SEARCH_WRITER_THREADS)"
            )
        return index.writer(heap_size=self.options.heap_bytes, num_threads=self.options.threads)

    def _exists(self, searcher: tantivy.Searcher, slug: str) -> bool:
        # Not doc_freq: it still counts deleted documents until their segment is merged.
        query = tantivy.Query.term_query(self.schema, self.key, slug)
        return searcher.search(query, 1, count=True).count > 0

    def _finish(self, report: ImportReport, index: tantivy.Index, started: float) -> ImportReport:
        index.reload()
        report.documents = index.searcher().num_docs
        report.seconds = time.perf_counter() - started
        write_last_run(self.store, report.as_dict() | {"finished_at": datetime.now(UTC).isoformat()})
        return report


def _abandon(writer: tantivy.IndexWriter) -> None:
    """Drop uncommitted work and wait for the writer's threads, so its files can be removed."""
    try:
        writer.rollback()
        writer.wait_merging_threads()
    except (ValueError, RuntimeError):
        pass


def _keys_of(generation: Generation | None, key: str) -> set[str]:
    """Every live key in a generation, read from its term dictionary (whatever config built it)."""
    if generation is None:
        return set()
    try:
        searcher = tantivy.Index.open(str(generation.path)).searcher()
        terms = searcher.terms_with_prefix(key, "", tantivy.Query.all_query())
    except ValueError:
        return set()
    return {term for term, count in terms if count > 0}


def _stored_articles(generation: Generation) -> Iterator[Article]:
    config_file = generation.path / "index_config.toml"
    if not config_file.is_file():
        raise ConfigError(f"{generation.path} does not record the config that built it: run a full reindex")
    old_config = load_config(config_file)
    index = generation.open(old_config)
    searcher = index.searcher()
    result = searcher.search(tantivy.Query.all_query(), limit=max(searcher.num_docs, 1))
    needed = set(Article.model_fields)
    for _, address in result.hits:
        values = stored_article(old_config, searcher.doc(address))
        missing = needed - values.keys()
        if missing:
            raise ConfigError(
                f"the index config changed and the live index does not store {', '.join(sorted(missing))}: "
                "run a full `search-service reindex` over all articles"
            )
        yield Article.model_construct(**{k: values[k] for k in needed})
