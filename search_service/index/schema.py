"""Tantivy schema and analyzers, built from the index config."""

from __future__ import annotations

import tantivy

from search_service.config import IndexConfig, build_analyzer
from search_service.semantic.registry import EMBEDDING_FIELD

_BUILTIN_TOKENIZERS = {"raw": "raw"}
# Every article's sample key: a hash of its slug into SAMPLE_SLOTS slots (search/counting.py
# estimates counts over the articles of slots 0..m-1, a uniform sample the engine intersects
# like any filter). Indexed, so that a range of slots is a posting-list union that can lead an
# intersection; fast, so that a sample's size is one value_count aggregation.
SAMPLE_FIELD = "_sample"
SAMPLE_SLOTS = 1024


def value_ids_field(name: str) -> str:
    """The column of a keyword facet's values as 64-bit ids (index/document.py value_id): counting
    ids needs no term dictionary, whose cost per segment grows with the distinct values of the
    index (search/facet_ids.py). Indexed, so that an id leads to an article holding its value."""
    return f"_{name}_ids"


def analyzer_name(name: str) -> str:
    # Prefixed so a config analyzer never shadows one of tantivy's built-ins.
    return f"cfg_{name}"


def build_analyzers(config: IndexConfig) -> dict[str, tantivy.TextAnalyzer]:
    return {name: build_analyzer(spec) for name, spec in config.analyzers.items()}


def field_tokenizer(config: IndexConfig, analyzer: str | None) -> str:
    spec = config.analyzers.get(analyzer or "")
    if spec is not None and spec.tokenizer == "raw" and not spec.filters:
        return "raw"
    return analyzer_name(analyzer) if analyzer else "raw"


def build_schema(config: IndexConfig) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    # By name, as the config fingerprint sees them: moving a field within schema.toml must not
    # change the schema of an index whose fingerprint still matches.
    for f in sorted(config.fields.values(), key=lambda f: f.name):
        if f.kind == "text":
            builder.add_text_field(f.name, stored=f.stored, tokenizer_name=field_tokenizer(config, f.analyzer))
        elif f.kind == "keyword":
            builder.add_text_field(f.name, stored=f.stored, fast=f.facet, tokenizer_name="raw", index_option="basic")
            if f.facet:
                builder.add_unsigned_field(value_ids_field(f.name), indexed=True, fast=True)
            if f.search_field:
                builder.add_text_field(f.search_field, tokenizer_name=field_tokenizer(config, f.analyzer))
        elif f.kind == "date":
            builder.add_date_field(f.name, stored=f.stored, indexed=True, fast=True)
            builder.add_integer_field(f.seconds_field, fast=True)
        else:
            # Stored-only values are kept as JSON bytes: a text field would index them as one term.
            builder.add_bytes_field(f.name, stored=True, indexed=False)
    builder.add_unsigned_field(SAMPLE_FIELD, indexed=True, fast=True)
    if config.semantic.enabled:
        builder.add_unsigned_field(EMBEDDING_FIELD, indexed=True, fast=True)
    return builder.build()


def register_analyzers(index: tantivy.Index, config: IndexConfig) -> None:
    """Every Index object that opens the index needs the custom analyzers, readers included."""
    for name, analyzer in build_analyzers(config).items():
        index.register_tokenizer(analyzer_name(name), analyzer)
