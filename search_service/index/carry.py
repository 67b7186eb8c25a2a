"""What a writer knows of the index it replaces or changes: the live generation's slugs and dates, its
articles read back, and each slug's state in the generation being written.

A rebuild asks the live generation whether a slug was there (new or updated?); a migration to
another config reads every live article back a page at a time and indexes it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import tantivy

from search_service.config import IndexConfig, load_config
from search_service.errors import ConfigError
from search_service.index.document import stored_article
from search_service.index.store import Generation
from search_service.ingest.article import Article

# Live articles read back per search when a migration carries them over: each page is a search from
# the top skipping the pages before it, so pages much smaller make 1M articles slow (10k: 3.3 s of
# searching, 50k: 0.7 s); each hit costs ~150 bytes while its page is held.
CARRY_PAGE = 20_000


class PreviousKeys:
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
        return self._searcher is not None and is_live(self._searcher, self._schema, self.key, slug)

    def updated_at(self, slug: str) -> datetime | None:
        """The live article's updated_at; None when the slug is not live (or the old index has no such field)."""
        if self._searcher is None:
            return None
        query = tantivy.Query.term_query(self._schema, self.key, slug)
        hits = self._searcher.search(query, 1, count=False).hits
        if not hits:
            return None
        values = self._searcher.doc(hits[0][1]).to_dict().get("updated_at") or [None]
        value = values[0]
        if not isinstance(value, datetime):
            return datetime.min.replace(tzinfo=UTC)  # live, but with no date to compare: never stale
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def close(self) -> None:
        """Unmap the pages the lookups touched (~60 MB at 1M) before the final merge maps every segment."""
        self._searcher = None


def is_live(searcher: tantivy.Searcher, schema: tantivy.Schema, key: str, slug: str) -> bool:
    # Not doc_freq: it still counts deleted documents until their segment is merged.
    query = tantivy.Query.term_query(schema, key, slug)
    return bool(searcher.search(query, 1, count=False).hits)


def live_values(generation: Generation, config: IndexConfig) -> Iterator[dict[str, Any]]:
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


class LiveState:
    """What each slug holds in the generation being written: its committed document, unless a
    journal entry applied earlier in this same writer changed it (the searcher cannot see that
    until the commit). Only journal writes are remembered, so memory stays bounded by them."""

    def __init__(self, config: IndexConfig, schema: tantivy.Schema, key: str, searcher: tantivy.Searcher) -> None:
        self._config, self._schema, self._key = config, schema, key
        self._searcher = searcher
        self._changed: dict[str, dict[str, Any] | None] = {}

    def get(self, slug: str) -> dict[str, Any] | None:
        """The stored article's values by attribute name, or None when the slug is not live."""
        if slug in self._changed:
            return self._changed[slug]
        query = tantivy.Query.term_query(self._schema, self._key, slug)
        hits = self._searcher.search(query, 1, count=False).hits
        return stored_article(self._config, self._searcher.doc(hits[0][1])) if hits else None

    def updated_at(self, slug: str) -> datetime | None:
        """The live version's updated_at; None when there is none to read (not live, or stored by
        another config's fields: a delete from an index built by another config)."""
        try:
            stored = self.get(slug)
        except (ValueError, KeyError, TypeError):
            return None
        value = stored.get("updated_at") if stored is not None else None
        return value if isinstance(value, datetime) else None

    def exists(self, slug: str) -> bool:
        if slug in self._changed:
            return self._changed[slug] is not None
        return is_live(self._searcher, self._schema, self._key, slug)

    def remember(self, slug: str, article: Article | None) -> None:
        self._changed[slug] = None if article is None else dict(article.__dict__)


_ARTICLE_FIELDS = frozenset(Article.model_fields)


def carried_config(generation: Generation) -> IndexConfig:
    """The config that built `generation`, once one of its articles was read back whole with it."""
    config_file = generation.path / "index_config.toml"
    if not config_file.is_file():
        raise ConfigError(f"{generation.path} does not record the config that built it: run a full reindex")
    old_config = load_config(config_file, recorded=True)
    searcher = generation.open(old_config).searcher()
    for _, address in searcher.search(tantivy.Query.all_query(), 1, count=False).hits:
        _stored(old_config, searcher.doc(address))
    return old_config


def stored_articles(generation: Generation, config: IndexConfig) -> Iterator[Article]:
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
