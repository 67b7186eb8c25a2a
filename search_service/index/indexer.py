"""Import operations: full rebuild, incremental upsert, delete. The only code holding an IndexWriter."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import tantivy

from search_service.config import IndexConfig
from search_service.errors import ConfigError, IndexNotReadyError, TooManyRejectsError
from search_service.index.carry import LiveState, PreviousKeys, carried_config, live_values, stored_articles
from search_service.index.document import document_builder
from search_service.index.journal import Entry, Journal
from search_service.index.ledger import SlugLedger
from search_service.index.report import Hooks, ImportReport, IndexerOptions, Reject
from search_service.index.schema import build_schema
from search_service.index.store import Generation, IndexStore, write_last_run
from search_service.index.writelog import CARRIED, LogFile, WriteLog, deleted_at
from search_service.ingest.article import Article, ImportContext, RecordRejected, parse_article
from search_service.ingest.sources import Item, read_items

log = logging.getLogger("search_service.indexer")

# Tantivy refuses a writer whose memory arena per indexing thread is smaller than this.
MIN_HEAP_PER_THREAD = 15_000_000


@dataclass
class _Batch:
    """State of one run over the input: which slugs it has seen, and where."""

    report: ImportReport
    seen: SlugLedger = field(default_factory=SlugLedger)
    max_rejects: int | None = None


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
        self.journal = Journal(store.root)
        self.writelog = WriteLog(store.root)
        self._embedder: Any = None
        if config.semantic.enabled:
            from search_service.semantic.embedder import check_available

            check_available()

    # -- operations -------------------------------------------------------------------------

    def rebuild(self, paths: Iterable[str], exact: bool = False) -> ImportReport:
        """Index everything in `paths` into a new generation and switch to it atomically.

        Writes made since the last rebuild that included them (the write log) are replayed over
        the input, newest updated_at winning (writelog.py); `exact` leaves them out and reports them."""
        with self._locked(), self.store.write_errors():
            started = time.perf_counter()
            self.store.remove_stale()
            live = self.store.current()
            previous = PreviousKeys(live, self.key)
            with (
                self._new_generation() as (generation, index, writer),
                self._vectors(generation, live) as (build, vectors),
            ):
                report = ImportReport("rebuild", generation=generation.name)
                batch = _Batch(report, max_rejects=self.options.max_rejects)
                for article in self._articles(read_items(paths), batch):
                    writer.add_document(build(article))
                    self._count(report, previous.exists(article.slug))
                # The final merge reads every new segment through mapped pages: the peak of a
                # large build. Nothing else need be held by then.
                previous.close()
                batch.seen.clear()
                _sync_vectors(vectors, batch.report)
                writer.commit()
                replay = (generation, index, writer, batch.report, build, vectors, live, exact)
                applied, through = self._replay_writes(*replay)
                writer.wait_merging_threads()
                self._update_graph(generation, live, batch.report)
            # Every old key seen again was counted as updated (slugs are unique in a batch).
            batch.report.deleted = previous.total - batch.report.updated
            self.store.publish(generation)
            self.writelog.remove_through(through)
            self.journal.remove(applied)
            return self._finish(batch.report, index, started)

    def upsert(self, paths: Iterable[str], force: bool = False) -> ImportReport:
        """Add or replace articles by slug in the live index; one commit at the end.

        An article whose updated_at is older than the stored one's is skipped as stale, and one
        identical to the stored one as unchanged, unless `force`."""
        return self._upsert(lambda: read_items(paths), force)

    def upsert_records(self, items: Iterable[Item], force: bool = False) -> ImportReport:
        """upsert() of records already decoded (the HTTP write API): the same validation, rejects,
        staleness rule and single commit, so a batch is applied whole or not at all."""
        return self._upsert(lambda: iter(items), force)

    def check_records(self, items: Iterable[Item]) -> tuple[list[Any], ImportReport]:
        """The records of `items` that an upsert would accept, as given, and the report of checking
        them (rejects go to the hooks, max_rejects applies); nothing is written."""
        batch = _Batch(ImportReport("check"), max_rejects=self.options.max_rejects)
        accepted = [item.value for item, _ in self._parsed(iter(items), batch)]
        return accepted, batch.report

    def delete(self, slugs: Iterable[str]) -> ImportReport:
        with self._locked(), self.store.write_errors():
            started = time.perf_counter()
            current = self.store.current()
            if current is None:
                raise IndexNotReadyError(f"there is no index in {self.store.root} to delete from")
            report = ImportReport("delete", generation=current.name)
            index = current.open(self.config)
            writer = self._writer(index)
            log = self.writelog.entry(current.path)
            try:
                live = self._live(index.searcher())
                # Journal upserts are built by this config: only into a generation it built.
                applied = []
                if self._builds(current):
                    with self._vectors(current, None) as (build, vectors):
                        applied = self._apply_journal(writer, live, report, build, log)
                        _sync_vectors(vectors, report)
                for slug in dict.fromkeys(slugs):
                    report.read += 1
                    if self._delete(writer, live, slug, log):
                        report.deleted += 1
                    else:
                        report.skipped += 1
                        self.hooks.on_missing(slug)
                self._commit(writer, log)
                writer.wait_merging_threads()
            except BaseException:
                log.discard()
                _abandon(writer)
                raise
            self.journal.remove(applied)
            self.writelog.compact(current.path)
            if applied:  # journaled upserts may have added vectors
                self._update_graph(current, None, report)
            return self._finish(report, index, started)

    def apply_journal(self) -> ImportReport | None:
        """Apply the journal's pending writes to the live index now; None when there were none."""
        if not self.journal.names():
            return None
        return self._upsert(lambda: iter(()), False, journal_only=True)

    # -- steps ------------------------------------------------------------------------------

    def _upsert(
        self, items: Callable[[], Iterator[Item]], force: bool, journal_only: bool = False
    ) -> ImportReport | None:
        with self._locked(), self.store.write_errors():
            started = time.perf_counter()
            self.store.remove_stale()
            current = self.store.current()
            if not self._builds(current):
                if current is not None and not self.options.migrate:
                    raise IndexNotReadyError(
                        f"the live index {current.name} was built by another index config "
                        f"({current.fingerprint}, this process runs {self.config.fingerprint}): "
                        "run `search-service reindex`"
                    )
                return self._migrate_and_upsert(current, items(), force, started)
            batch = _Batch(ImportReport("incremental", generation=current.name), max_rejects=self.options.max_rejects)
            index = current.open(self.config)
            writer = self._writer(index)
            log = self.writelog.entry(current.path)
            try:
                live = self._live(index.searcher())
                with self._vectors(current, None) as (build, vectors):
                    applied = self._apply_journal(writer, live, batch.report, build, log)
                    if journal_only and not applied:  # another writer applied them meanwhile
                        _abandon(writer)
                        return None
                    for item, article in self._parsed(items(), batch):
                        self._put(writer, live, article, force, batch.report, build, log=log, record=item.value)
                    batch.seen.clear()
                    _sync_vectors(vectors, batch.report)
                self._commit(writer, log)
                writer.wait_merging_threads()
            except BaseException:
                log.discard()
                _abandon(writer)
                raise
            self.journal.remove(applied)
            self.writelog.compact(current.path)
            self._update_graph(current, None, batch.report)
            return self._finish(batch.report, index, started)

    def _live(self, searcher: tantivy.Searcher) -> LiveState:
        return LiveState(self.config, self.schema, self.key, searcher)

    def _builds(self, generation: Generation | None) -> bool:
        return generation is not None and generation.fingerprint == self.config.fingerprint

    def _put(
        self,
        writer: tantivy.IndexWriter,
        live: LiveState,
        article: Article,
        force: bool,
        report: ImportReport,
        build: Callable[[Article], tantivy.Document],
        remember: bool = False,
        log: LogFile | None = None,
        record: Any = None,
    ) -> None:
        """Write one article unless the stored one is newer (stale) or the same (unchanged); what is
        written goes to `log` too (the record as received)."""
        stored = live.get(article.slug)
        if stored is not None and not force:
            updated_at = stored.get("updated_at")
            if updated_at is not None and article.updated_at < updated_at:
                report.stale += 1
                return
            if _same(stored, article):
                report.unchanged += 1
                return
        writer.delete_documents_by_term(self.key, article.slug)
        writer.add_document(build(article))
        self._count(report, stored is not None)
        if remember:
            live.remember(article.slug, article)
        if log is not None:
            log.article(article.slug, record)

    def _delete(self, writer: tantivy.IndexWriter, live: LiveState, slug: str, log: LogFile | None) -> bool:
        """Delete one slug if live, leaving a tombstone in `log`; whether it was there."""
        if not (isinstance(slug, str) and live.exists(slug)):
            return False
        updated_at = live.updated_at(slug)
        writer.delete_documents_by_term(self.key, slug)
        live.remember(slug, None)
        if log is not None:
            log.tombstone(slug, deleted_at(updated_at))
        return True

    def _commit(self, writer: tantivy.IndexWriter, log: LogFile) -> None:
        """The log entry on disk first, then the commit: whatever a commit holds is in the log."""
        try:
            log.seal()
            writer.commit()
        except BaseException:
            log.discard()  # never committed, never acknowledged: not a write to carry over
            raise

    def _replay_journal(
        self,
        index: tantivy.Index,
        writer: tantivy.IndexWriter,
        report: ImportReport,
        build: Callable[[Article], tantivy.Document],
        vectors: Any,
        log: LogFile,
    ) -> list[str]:
        """Apply the pending journal to a new generation just committed, and commit again."""
        if not self.journal.names():
            self._commit(writer, log)  # the migration's own upserts, if any, are in the log
            return []
        index.reload()
        applied = self._apply_journal(writer, self._live(index.searcher()), report, build, log)
        _sync_vectors(vectors, report)
        self._commit(writer, log)
        return applied

    def _replay_writes(
        self,
        generation: Generation,
        index: tantivy.Index,
        writer: tantivy.IndexWriter,
        report: ImportReport,
        build: Callable[[Article], tantivy.Document],
        vectors: Any,
        previous: Generation | None,
        exact: bool,
    ) -> tuple[list[str], str]:
        """Over the input just committed: the write log (newest updated_at wins; a tombstone wins
        over a version not newer than it), then the journal; one commit. What is kept becomes the
        new generation's carried.jsonl. Returns the journal entries applied and the last log entry covered."""
        latest, through = self.writelog.latest(previous.path if previous else None)
        index.reload()
        live = self._live(index.searcher())
        carried = self.writelog.carried(generation.path, through)
        try:
            for slug, where in latest.items():
                state = self.writelog.read(where)
                if exact:
                    report.dropped += 1
                    self.hooks.on_dropped(slug, "deleted_at" in state)
                elif self._carry(writer, live, slug, state, build, report, where.path.name):
                    carried.raw(orjson.dumps(state))
            applied = self._apply_journal(writer, live, report, build, carried)
            _sync_vectors(vectors, report)
            carried.seal(always=True)
        except BaseException:
            carried.discard()
            raise
        writer.commit()
        return applied, through

    def _carry(
        self,
        writer: tantivy.IndexWriter,
        live: LiveState,
        slug: str,
        state: dict[str, Any],
        build: Callable[[Article], tantivy.Document],
        report: ImportReport,
        source: str,
    ) -> bool:
        """Apply one logged state over the input unless the input supersedes it; whether it was kept."""
        stored = live.get(slug)
        stored_at = stored.get("updated_at") if stored is not None else None
        if "deleted_at" in state:
            if stored is None or (stored_at is not None and stored_at > datetime.fromisoformat(state["deleted_at"])):
                report.superseded += 1  # the input holds a newer version, or agrees the article is gone
                return False
            writer.delete_documents_by_term(self.key, slug)
            live.remember(slug, None)
            report.carried += 1
            return True
        counts = ImportReport("carry")
        article = next(self._articles(iter([Item(f"write log {source}", 1, state["article"])]), _Batch(counts)), None)
        report.rejected += counts.rejected  # valid when written: only a changed config rejects it now
        if article is None:
            return False
        # A tie in updated_at goes to the write, unless the input holds the very same article.
        if (
            stored is not None
            and stored_at is not None
            and (stored_at > article.updated_at or (stored_at == article.updated_at and _same(stored, article)))
        ):
            report.superseded += 1
            return False
        writer.delete_documents_by_term(self.key, slug)
        writer.add_document(build(article))
        live.remember(slug, article)
        report.carried += 1
        return True

    def _apply_journal(
        self,
        writer: tantivy.IndexWriter,
        live: LiveState,
        report: ImportReport,
        build: Callable[[Article], tantivy.Document],
        log: LogFile,
    ) -> list[str]:
        """Apply every pending journal entry in order (uncommitted); returns the names applied."""
        entries = self.journal.pending()
        for entry in entries:
            self._apply_entry(writer, live, entry, report, build, log)
        report.journal += len(entries)
        return [entry.name for entry in entries]

    def _apply_entry(
        self,
        writer: tantivy.IndexWriter,
        live: LiveState,
        entry: Entry,
        report: ImportReport,
        build: Callable[[Article], tantivy.Document],
        log: LogFile,
    ) -> None:
        # Counted apart from the run's own records, whose counts its caller reports.
        counts = ImportReport("journal")
        if entry.op == "delete":
            for slug in entry.values:
                counts.read += 1
                if self._delete(writer, live, slug, log):
                    counts.deleted += 1
                else:
                    counts.skipped += 1
        else:
            # Checked when accepted: a reject here means the config changed since (reported, never fatal).
            batch = _Batch(counts)
            items = (Item(f"journal {entry.name}", number, value) for number, value in enumerate(entry.values, 1))
            for item, article in self._parsed(items, batch):
                self._put(writer, live, article, entry.force, counts, build, remember=True, log=log, record=item.value)
        self.hooks.on_journal(entry, counts)

    def embed_missing(self, on_progress: Callable[[int, int], None] = lambda seen, embedded: None) -> ImportReport:
        """Embed every live article of the current generation that has no vector yet.

        Each batch is on disk before the next starts, so a killed run loses at most one batch
        and the next run carries on where it stopped."""
        from search_service.semantic.vectors import ImportVectors, embeddings_dir

        with self._locked(), self.store.write_errors():
            started = time.perf_counter()
            current = self.store.current()
            if current is None or current.fingerprint != self.config.fingerprint:
                raise IndexNotReadyError(
                    f"there is no index built by this config in {self.store.root}: run `search-service reindex`"
                )
            if not self.config.semantic.enabled:
                raise ConfigError("[semantic] is not enabled in the index config: there is nothing to embed")
            report = ImportReport("embed", generation=current.name)
            directory = embeddings_dir(current.path)
            vectors = ImportVectors(self.config.semantic, directory, self._load_embedder)
            try:
                for values in live_values(current, self.config):
                    before = vectors.embedded
                    vectors.key(values)
                    report.read += 1
                    if vectors.embedded != before:
                        vectors.writer.sync()
                    on_progress(report.read, vectors.embedded)
                vectors.sync()
                on_progress(report.read, vectors.embedded)
            finally:
                report.embedded = vectors.embedded
                vectors.close()
            self._update_graph(current, None, report)
            index = current.open(self.config)
            return self._finish(report, index, started)

    # -- steps ------------------------------------------------------------------------------

    @contextmanager
    def _vectors(
        self, generation: Generation, previous: Generation | None
    ) -> Iterator[tuple[Callable[[Article], tantivy.Document], Any]]:
        """The document builder of one run, and with [semantic] enabled the run's vectors."""
        if not self.config.semantic.enabled:
            yield self._build, None
            return
        from search_service.semantic.vectors import ImportVectors, embeddings_dir

        vectors = ImportVectors(
            self.config.semantic,
            embeddings_dir(generation.path),
            self._load_embedder,
            embeddings_dir(previous.path) if previous is not None else None,
            embed=self.options.embed,
        )
        try:
            yield document_builder(self.config, vectors.key), vectors
        finally:
            vectors.close()

    def _update_graph(self, generation: Generation, previous: Generation | None, report: ImportReport) -> None:
        """The ANN graph brought up to date with the vectors just synced (ann.update_graph).

        Never fatal: it runs after the commit (the write is made and must be acknowledged) and
        the graph is only a faster way to the same candidates, so a failure is logged and
        searches stay exact until a later run builds it."""
        if not self.config.semantic.enabled:
            return
        from search_service.semantic.ann import GraphRun, GraphUnavailableError, update_graph
        from search_service.semantic.registry import MODELS
        from search_service.semantic.vectors import embeddings_dir, whole_rows

        dimension = MODELS[self.config.semantic.model].dimension
        directory = embeddings_dir(generation.path)
        try:
            run = update_graph(
                directory,
                self.config.semantic,
                dimension,
                whole_rows(directory, dimension),
                embeddings_dir(previous.path) if previous is not None else None,
                threads=self.options.threads,
            )
        except (GraphUnavailableError, OSError, ValueError, RuntimeError, MemoryError) as exc:
            log.warning("ann graph not updated: searches stay exact", extra={"fields": {"error": str(exc)}})
            run = GraphRun("failed")
        report.ann, report.ann_rows, report.ann_seconds = run.action, run.rows, round(run.seconds, 3)

    def _load_embedder(self) -> Any:
        """The model, loaded on the first text to embed and kept for the Indexer's later runs."""
        if self._embedder is None:
            from search_service.semantic.embedder import Embedder
            from search_service.semantic.registry import MODELS

            semantic = self.config.semantic
            self._embedder = Embedder(MODELS[semantic.model], semantic.max_tokens, semantic.threads)
        return self._embedder

    def _migrate_and_upsert(
        self, current: Generation | None, items: Iterator[Item], force: bool, started: float
    ) -> ImportReport:
        """The live index was built by another config (or there is none): build a new generation by
        this config from the upserts, then from the live articles they do not replace, and switch.

        Streamed, for any size: of the upserts only their slugs are kept (in the batch's ledger),
        and the live articles are read back a page at a time."""
        # Checked now, before any input is read: whether the live articles can be read back whole.
        carried = stored_articles(current, carried_config(current)) if current else iter(())
        previous = PreviousKeys(current, self.key)
        # Upserts not newer than the live article: the live one is carried over instead.
        kept: set[str] = set()
        log = self.writelog.entry(current.path if current else None)
        with (
            self._new_generation() as (generation, index, writer),
            self._vectors(generation, current) as (build, vectors),
        ):
            if current is not None and (current.path / CARRIED).is_file():  # the log carried so far stays
                shutil.copyfile(current.path / CARRIED, generation.path / CARRIED)
            report = ImportReport("incremental", generation=generation.name)
            batch = _Batch(report, max_rejects=self.options.max_rejects)
            for item, article in self._parsed(items, batch):
                stored = previous.updated_at(article.slug)
                if stored is not None and not force and article.updated_at < stored:
                    report.stale += 1
                    kept.add(article.slug)
                    continue
                writer.add_document(build(article))
                self._count(report, stored is not None)
                log.article(article.slug, item.value)
            previous.close()
            for article in carried:
                if article.slug not in batch.seen or article.slug in kept:
                    writer.add_document(build(article))
            batch.seen.clear()
            _sync_vectors(vectors, batch.report)
            writer.commit()
            applied = self._replay_journal(index, writer, report, build, vectors, log)
            writer.wait_merging_threads()
            self._update_graph(generation, current, report)
        self.store.publish(generation)
        self.journal.remove(applied)
        return self._finish(batch.report, index, started)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The writer lock, waited for as the options say; a write refused first when the disk is
        nearly full, before it can fail half-way."""
        options = self.options
        with self.store.writer_lock(
            options.lock_wait_s,
            announce=options.announce_wait,
            defer=options.defer_to_waiting,
            on_wait=self.hooks.on_lock_wait,
        ):
            self.store.check_free_space(options.min_free_bytes)
            yield

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
        for _, article in self._parsed(items, batch):
            yield article

    def _parsed(self, items: Iterator[Item], batch: _Batch) -> Iterator[tuple[Item, Article]]:
        """Each accepted record with the item it was read from; rejects reported and counted."""
        report = batch.report
        for item in items:
            report.read += 1
            self.hooks.on_progress(report.read)
            if item.skipped:
                report.skipped += 1
                continue
            if item.error is not None:
                self._reject(batch, Reject(item.source, item.line, item.error))
                continue
            context = ImportContext(self.config.limits)
            try:
                article = parse_article(item.value, context)
            except RecordRejected as exc:
                self._reject(batch, Reject(item.source, item.line, exc.reason, exc.slug))
                continue
            first = batch.seen.add(article.slug, item.source, item.line)
            if first is not None:
                where = f"line {first[1]}" if first[0] == item.source else f"{first[0]} line {first[1]}"
                self._reject(
                    batch,
                    Reject(item.source, item.line, f"duplicate slug in batch, first seen on {where}", article.slug),
                )
                continue
            for message in context.warnings:
                report.warnings += 1
                self.hooks.on_warning(item.source, item.line, message)
            yield item, article

    def _reject(self, batch: _Batch, reject: Reject) -> None:
        batch.report.rejected += 1
        self.hooks.on_reject(reject)
        limit = batch.max_rejects
        if limit is not None and batch.report.rejected > limit:
            raise TooManyRejectsError(
                f"more than {limit} records rejected (max rejects {limit}); nothing was changed in the index"
            )

    @staticmethod
    def _count(report: ImportReport, existed: bool) -> None:
        report.indexed += 1
        if existed:
            report.updated += 1
        else:
            report.new += 1

    def _writer(self, index: tantivy.Index) -> tantivy.IndexWriter:
        per_thread = self.options.heap_bytes // max(self.options.threads, 1)
        if per_thread < MIN_HEAP_PER_THREAD:
            raise ConfigError(
                f"the writer heap ({self.options.heap_bytes // 2**20} MB) is too small for {self.options.threads} "
                f"threads: tantivy needs at least {MIN_HEAP_PER_THREAD // 10**6} MB per thread "
                "(raise SEARCH_WRITER_HEAP_MB or lower SEARCH_WRITER_THREADS)"
            )
        return index.writer(heap_size=self.options.heap_bytes, num_threads=self.options.threads)

    def _finish(self, report: ImportReport, index: tantivy.Index, started: float) -> ImportReport:
        index.reload()
        report.documents = index.searcher().num_docs
        report.seconds = time.perf_counter() - started
        if self.options.record_runs:
            write_last_run(self.store, report.as_dict() | {"finished_at": datetime.now(UTC).isoformat()})
        return report


def _sync_vectors(vectors: Any, report: ImportReport) -> None:
    """Vectors on disk before the commit that makes their documents visible; counts in the report."""
    if vectors is None:
        return
    vectors.sync()
    report.embedded, report.vectors_reused, report.vectors_missing = vectors.embedded, vectors.reused, vectors.missing


def _abandon(writer: tantivy.IndexWriter) -> None:
    """Drop uncommitted work and wait for the writer's threads, so its files can be removed."""
    try:
        writer.rollback()
        writer.wait_merging_threads()
    except (ValueError, RuntimeError):
        pass


def _same(stored: dict[str, Any], article: Article) -> bool:
    return all(stored.get(name, _MISSING) == value for name, value in article.__dict__.items())


_MISSING = object()
