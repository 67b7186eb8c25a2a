"""Article <-> Tantivy document, following the field list of the index config."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import tantivy

from search_service.config import IndexConfig
from search_service.index.schema import SAMPLE_FIELD, SAMPLE_LEVELS_FIELD, SAMPLE_SLOTS, sample_levels, value_ids_field
from search_service.ingest.article import Article
from search_service.ingest.content import ContentRules
from search_service.ingest.render import cjk_text, markdown_to_text
from search_service.semantic.registry import EMBEDDING_FIELD


def article_values(article: Article, rules: ContentRules | None = None) -> dict[str, Any]:
    """The article's attributes by the names index_config's `source` keys use; `body_text` is the
    body as plain text, after the content rules."""
    values = dict(article.__dict__)
    values["body_text"] = body = markdown_to_text(article.body_md, article.title, rules)
    values["cjk_text"] = cjk_text(article.title, article.summary, body)
    return values


def sample_key(slug: str) -> int:
    """The article's sample slot: a hash of its slug, so uniform over articles, the same in every
    rebuild and kept by an upsert (a sample never depends on import order or on chance)."""
    digest = hashlib.blake2b(slug.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % SAMPLE_SLOTS


def value_id(value: str) -> int:
    """A keyword facet value's id: a 64-bit hash, the same in every segment, rebuild and process.
    Two of 200,000 distinct values share one with probability about 1e-9."""
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


def document_builder(
    config: IndexConfig, embedding_key: Callable[[dict[str, Any]], int] | None = None
) -> Callable[[Article], tantivy.Document]:
    """A function turning an article into a document; `embedding_key` (semantic ranking) names the
    vector of the article's values, added as its `_embedding` value.

    The field plan is worked out once and grouped by kind: this runs for every imported article,
    on the same core as tantivy's indexing threads, so its loops are kept flat.
    """
    fields = list(config.fields.values())
    texts = [(f.name, f.source) for f in fields if f.kind == "text"]
    keywords = [
        (f.name, f.source, f.multi, f.search_field, value_ids_field(f.name) if f.facet else None)
        for f in fields
        if f.kind == "keyword"
    ]
    dates = [(f.name, f.source, f.seconds_field) for f in fields if f.kind == "date"]
    stored = [(f.name, f.source) for f in fields if f.kind == "stored"]
    rules = ContentRules.from_config(config.content)
    key_source = config.key_field.source

    def build(article: Article) -> tantivy.Document:
        values = article_values(article, rules)
        doc = tantivy.Document()
        add_text = doc.add_text
        for name, source in texts:
            add_text(name, values[source])
        for name, source, multi, companion, ids in keywords:
            for item in values[source] if multi else (values[source],):
                add_text(name, item)
                if companion:
                    add_text(companion, item)
                if ids:
                    doc.add_unsigned(ids, value_id(item))
        for name, source, seconds in dates:
            value = values[source]
            doc.add_date(name, value)
            doc.add_integer(seconds, int(value.timestamp()))
        for name, source in stored:
            doc.add_bytes(name, orjson.dumps(values[source]))
        key = sample_key(values[key_source])
        doc.add_unsigned(SAMPLE_FIELD, key)
        for level in sample_levels(key):
            doc.add_unsigned(SAMPLE_LEVELS_FIELD, level)
        if embedding_key is not None:
            doc.add_unsigned(EMBEDDING_FIELD, embedding_key(values))
        return doc

    return build


def stored_article(config: IndexConfig, doc: tantivy.Document) -> dict[str, Any]:
    """A stored document back as plain data, keyed by article attribute."""
    raw = doc.to_dict()
    out: dict[str, Any] = {}
    for f in config.fields.values():
        values = raw.get(f.name)
        if values is None:
            if f.multi:
                out[f.source] = []
            continue
        if f.kind == "stored":
            out[f.source] = orjson.loads(values[0])
        elif f.kind == "date":
            out[f.source] = _as_utc(values[0])
        elif f.multi:
            out[f.source] = list(values)
        else:
            out[f.source] = values[0]
    return out


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def public_article(article: dict[str, Any]) -> dict[str, Any]:
    """A stored article as the API returns it: the import format, dates in ISO 8601 UTC."""
    out = {k: v for k, v in article.items() if k != "body_text"}
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = iso(value)
    return out
