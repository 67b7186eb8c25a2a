"""Import operations: full rebuild, incremental upsert, delete. The only code holding an IndexWriter."""

from __future__ import annotations

import shutil
import time
from array import array
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
# Live articles read back per search when a migration carries them over: each page is a search from
# the top skipping the pages before it, so pages much smaller make 1M articles slow (10k: 3.3 s of
# searching, 50k: 0.7 s); each hit costs ~150 bytes while its page is held.
CARRY_PAGE = 20_000


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
    # Semantic ranking ([semantic] enabled): vectors computed, copied from the previous
    # generation (text unchanged), and left for `search-service embed` (IndexerOptions.embed off).
    embedded: int = 0
    vectors_reused: int = 0
    vectors_missing: int = 0

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
    # With [semantic] enabled: embed new and changed articles now (else `search-service embed` does).
    embed: bool = True


class SlugLedger:
    """The slugs accepted in one run and where each was read: ~40 bytes a slug plus its UTF-8.

    A dict of str -> (source, line) takes ~230 bytes a slug (of ~57 characters): at 1M articles
    that was what pushed a rebuild past 2 GB. Here the slugs are packed as UTF-8 into one
    bytearray and found through an open-addressing table of their hashes; a hash match is
    confirmed against the packed bytes, so the answer is exact even for two slugs that share a
    hash. `hash_slug` must return a signed 64-bit int (the builtin hash does; tests pass a
    colliding one).
    """

    def __init__(self, hash_slug: Callable[[str], int] = hash) -> None:
        self._hash = hash_slug
        self.clear()

    def clear(self) -> None:
        """Forget every slug: the arrays go back to the system, before the final merge needs the memory."""
        self._sources: list[str] = []  # distinct source names; entries keep an index into it
        self._source_ids: dict[str, int] = {}
        self._text = bytearray()  # every slug's UTF-8, back to back
        self._ends = array("Q")  # entry i's slug ends at _ends[i], and starts where entry i - 1 ends
        self._hashes = array("q")
        self._source = array("I")
        self._line = array("Q")
        self._slots = array("i", [-1]) * 16  # entry numbers at their hash (linear probing); -1 is free
        self._room = 8  # entries left before the table is half full

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, slug: str) -> bool:
        return self._entry(slug, self._hash(slug))[1] >= 0

    def add(self, slug: str, source: str, line: int) -> tuple[str, int] | None:
        """Record where `slug` was read, or, if it was recorded before, keep that and return it."""
        hashed = self._hash(slug)
        slot, entry = self._entry(slug, hashed)
        if entry >= 0:
            return self._sources[self._source[entry]], self._line[entry]
        self._slots[slot] = len(self._hashes)
        self._hashes.append(hashed)
        self._text += slug.encode()
        self._ends.append(len(self._text))
        self._source.append(self._source_id(source))
        self._line.append(line)
        self._room -= 1
        if not self._room:
            self._grow()
        return None

    def _entry(self, slug: str, hashed: int) -> tuple[int, int]:
        """(slot, entry number) of `slug`, or (the free slot it would take, -1)."""
        slots, hashes, mask = self._slots, self._hashes, len(self._slots) - 1
        slot = hashed & mask
        while (entry := slots[slot]) >= 0:
            if hashes[entry] == hashed and self._slug_bytes(entry) == slug.encode():
                return slot, entry
            slot = (slot + 1) & mask
        return slot, -1

    def _slug_bytes(self, entry: int) -> bytearray:
        start = self._ends[entry - 1] if entry else 0
        return self._text[start : self._ends[entry]]

    def _source_id(self, source: str) -> int:
        source_id = self._source_ids.get(source)
        if source_id is None:
            source_id = self._source_ids[source] = len(self._sources)
            self._sources.append(source)
        return source_id

    def _grow(self) -> None:
        size = 2 * len(self._slots)
        slots, mask = array("i", [-1]) * size, size - 1
        for entry, hashed in enumerate(self._hashes):
            slot = hashed & mask
            while slots[slot] >= 0:
                slot = (slot + 1) & mask
            slots[slot] = entry
        self._slots = slots
        self._room = size // 2 - len(self._hashes)


@dataclass
class _Batch:
    """State of one run over the input: which slugs it has seen, and where."""

    report: ImportReport
    seen: SlugLedger = field(default_factory=SlugLedger)


class _PreviousKeys:
    """Whether a slug is live in the generation that a rebuild or migration replaces, asked of that
    index itself: ~6 us a slug and no memory, where a set of every old slug took ~230 MB at 1M
    articles. Opened by the schema it records (meta.json), whatever config built it."""

    def __init__(self, generation: Generation | None, key: str) -> None:
        self.key = key
        # Live documents; slugs are unique in every generation (a rebuild rejects duplicates, an
        # upsert deletes the slug first), so this is also the number of live slugs.
        self.total = 0
        self._searcher: tantivy.Searcher | None = None
        if generation is None:
            return
        try:
            index = tantivy.Index.open(str(generation.path))
            self._schema = index.schema
            tantivy.Query.term_query(self._schema, key, "")  # raises if the key is no string field there
            self._searcher = index.searcher()
        except ValueError:
            return
        self.total = self._searcher.num_docs

    def exists(self, slug: str) -> bool:
        return self._searcher is not None and _is_live(self._searcher, self._schema, self.key, slug)

    def close(self) -> None:
        """Unmap the pages the lookups touched (~60 MB at 1M) before the final merge maps every segment."""
        self._searcher = None


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
        self._embedder: Any = None
        if config.semantic.enabled:
            from .semantic import check_available

            check_available()

    # -- operations -------------------------------------------------------------------------

    def rebuild(self, paths: Iterable[str]) -> ImportReport:
        """Index everything in `paths` into a new generation and switch to it atomically."""
        with self.store.writer_lock(), self._write_errors():
            started = time.perf_counter()
            self.store.remove_stale()
            previous = _PreviousKeys(self.store.current(), self.key)
            with (
                self._new_generation() as (generation, index, writer),
                self._vectors(generation, self.store.current()) as (build, vectors),
            ):
                batch = _Batch(ImportReport("rebuild", generation=generation.name))
                for article in self._articles(read_items(paths), batch):
                    writer.add_document(build(article))
                    self._count(batch, previous.exists(article.slug))
                # The final merge reads every new segment through mapped pages: the peak of a
                # large build. Nothing else need be held by then.
                previous.close()
                batch.seen.clear()
                _sync_vectors(vectors, batch.report)
                writer.commit()
                writer.wait_merging_threads()
            # Every old key seen again was counted as updated (slugs are unique in a batch).
            batch.report.deleted = previous.total - batch.report.updated
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
                with self._vectors(current, None) as (build, vectors):
                    for article in self._articles(read_items(paths), batch):
                        existed = self._exists(searcher, article.slug)
                        writer.delete_documents_by_term(self.key, article.slug)
                        writer.add_document(build(article))
                        self._count(batch, existed)
                    batch.seen.clear()
                    _sync_vectors(vectors, batch.report)
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

    def embed_missing(self, on_progress: Callable[[int, int], None] = lambda seen, embedded: None) -> ImportReport:
        """Embed every live article of the current generation that has no vector yet.

        Each batch is on disk before the next starts, so a killed run loses at most one batch
        and the next run carries on where it stopped."""
        from .embeddings import ImportVectors, embeddings_dir

        with self.store.writer_lock(), self._write_errors():
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
                for values in _live_values(current, self.config):
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
        from .embeddings import ImportVectors, embeddings_dir

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

    def _load_embedder(self) -> Any:
        """The model, loaded on the first text to embed and kept for the Indexer's later runs."""
        if self._embedder is None:
            from .semantic import MODELS, Embedder

            semantic = self.config.semantic
            self._embedder = Embedder(MODELS[semantic.model], semantic.max_tokens, semantic.threads)
        return self._embedder

    def _migrate_and_upsert(self, current: Generation | None, paths: Iterable[str], started: float) -> ImportReport:
        """The live index was built by another config (or there is none): build a new generation by
        this config from the upserts, then from the live articles they do not replace, and switch.

        Streamed, for any size: of the upserts only their slugs are kept (in the batch's ledger),
        and the live articles are read back a page at a time."""
        # Checked now, before any input is read: whether the live articles can be read back whole.
        carried = _stored_articles(current, _carried_config(current)) if current else iter(())
        previous = _PreviousKeys(current, self.key)
        with (
            self._new_generation() as (generation, index, writer),
            self._vectors(generation, current) as (build, vectors),
        ):
            batch = _Batch(ImportReport("incremental", generation=generation.name))
            for article in self._articles(read_items(paths), batch):
                writer.add_document(build(article))
                self._count(batch, previous.exists(article.slug))
            previous.close()
            for article in carried:
                if article.slug not in batch.seen:
                    writer.add_document(build(article))
            batch.seen.clear()
            _sync_vectors(vectors, batch.report)
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
            first = batch.seen.add(article.slug, item.source, item.line)
            if first is not None:
                where = f"line {first[1]}" if first[0] == item.source else f"{first[0]} line {first[1]}"
                self._reject(
                    report,
                    Reject(item.source, item.line, f"duplicate slug in batch, first seen on {where}", article.slug),
                )
                continue
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
        return _is_live(searcher, self.schema, self.key, slug)

    def _finish(self, report: ImportReport, index: tantivy.Index, started: float) -> ImportReport:
        index.reload()
        report.documents = index.searcher().num_docs
        report.seconds = time.perf_counter() - started
        write_last_run(self.store, report.as_dict() | {"finished_at": datetime.now(UTC).isoformat()})
        return report


def _is_live(searcher: tantivy.Searcher, schema: tantivy.Schema, key: str, slug: str) -> bool:
    # Not doc_freq: it still counts deleted documents until their segment is merged.
    query = tantivy.Query.term_query(schema, key, slug)
    return bool(searcher.search(query, 1, count=False).hits)


def _sync_vectors(vectors: Any, report: ImportReport) -> None:
    """Vectors on disk before the commit that makes their documents visible; counts in the report."""
    if vectors is None:
        return
    vectors.sync()
    report.embedded, report.vectors_reused, report.vectors_missing = vectors.embedded, vectors.reused, vectors.missing


def _live_values(generation: Generation, config: IndexConfig) -> Iterator[dict[str, Any]]:
    """Every live document of `generation` as stored values by article attribute, a page at a time."""
    offset = 0
    while True:
        searcher = generation.open(config).searcher()
        hits = searcher.search(tantivy.Query.all_query(), limit=CARRY_PAGE, offset=offset, count=False).hits
        for _, address in hits:
            yield stored_article(config, searcher.doc(address))
        if len(hits) < CARRY_PAGE:
            return
        offset += len(hits)


def _abandon(writer: tantivy.IndexWriter) -> None:
    """Drop uncommitted work and wait for the writer's threads, so its files can be removed."""
    try:
        writer.rollback()
        writer.wait_merging_threads()
    except (ValueError, RuntimeError):
        pass


_ARTICLE_FIELDS = frozenset(Article.model_fields)


def _carried_config(generation: Generation) -> IndexConfig:
    """The config that built `generation`, once one of its articles was read back whole with it."""
    config_file = generation.path / "index_config.toml"
    if not config_file.is_file():
        raise ConfigError(f"{generation.path} does not record the config that built it: run a full reindex")
    old_config = load_config(config_file)
    searcher = generation.open(old_config).searcher()
    for _, address in searcher.search(tantivy.Query.all_query(), 1, count=False).hits:
        _stored(old_config, searcher.doc(address))
    return old_config


def _stored_articles(generation: Generation, config: IndexConfig) -> Iterator[Article]:
    """Every live article of `generation`, read a page at a time.

    Each page is read through a searcher of its own: the pages of the old doc store that it mapped
    in (as large as the new index's, ~0.8 GB at 1M) are let go of with it, not held to the end.
    """
    offset, last = 0, (-1, -1)
    while True:
        searcher = generation.open(config).searcher()
        hits = searcher.search(tantivy.Query.all_query(), limit=CARRY_PAGE, offset=offset, count=False).hits
        for _, address in hits:
            # Paging by offset holds only while tantivy orders equal scores by address (it does):
            # check it, rather than carry an article twice and lose another.
            here = (address.segment_ord, address.doc)
            if here <= last:
                raise RuntimeError(f"live articles of {generation.path} came back out of order: nothing was changed")
            last = here
            yield _stored(config, searcher.doc(address))
        if len(hits) < CARRY_PAGE:
            return
        offset += len(hits)


def _stored(config: IndexConfig, doc: tantivy.Document) -> Article:
    """A stored document as the article it was built from (already validated when it was imported)."""
    values = stored_article(config, doc)
    missing = _ARTICLE_FIELDS - values.keys()
    if missing:
        raise ConfigError(
            f"the index config changed and the live index does not store {', '.join(sorted(missing))}: "
            "run a full `search-service reindex` over all articles"
        )
    return Article.model_construct(**{k: values[k] for k in _ARTICLE_FIELDS})
