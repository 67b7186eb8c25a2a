"""Tantivy schema and analyzers, built from the index config."""

from __future__ import annotations

import tantivy

from search_service.config import IndexConfig, build_analyzer
from search_service.semantic.registry import EMBEDDING_FIELD

_BUILTIN_TOKENIZERS = {"raw": "raw"}
# Every article's sample key: a hash of its slug into SAMPLE_SLOTS slots (search/counting.py
# estimates counts over the articles of slots 0..m-1, a uniform sample the engine intersects
# like any filter). Fast, so that a sample's size is one value_count aggregation.
SAMPLE_FIELD = "_sample"
SAMPLE_SLOTS = 1024
# The samples as single terms: an article holds level k (1..SAMPLE_LEVELS) when its key is below
# SAMPLE_SLOTS >> k, so the sample of the first SAMPLE_SLOTS >> k slots is one posting list. A
# range of the keys' own terms is a union of m posting lists, which cost more than the unrestricted
# query once m reached a few hundred (18 ms for 532 of 1,024 slots at 1M seed-shaped articles).
SAMPLE_LEVELS_FIELD = "_sample_in"
SAMPLE_LEVELS = SAMPLE_SLOTS.bit_length() - 1


def sample_levels(key: int) -> range:
    """The levels an article of sample key `key` holds: k where key < SAMPLE_SLOTS >> k."""
    return range(1, SAMPLE_LEVELS + 1 if key == 0 else (SAMPLE_SLOTS // (key + 1)).bit_length())


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
    builder.add_unsigned_field(SAMPLE_LEVELS_FIELD, indexed=True)
    if config.semantic.enabled:
        builder.add_unsigned_field(EMBEDDING_FIELD, indexed=True, fast=True)
    return builder.build()


def register_analyzers(index: tantivy.Index, config: IndexConfig) -> None:
    """Every Index object that opens the index needs the custom analyzers, readers included."""
    for name, analyzer in build_analyzers(config).items():
        index.register_tokenizer(analyzer_name(name), analyzer)
