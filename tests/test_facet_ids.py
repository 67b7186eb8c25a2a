"""Facet values counted by their ids (search/facet_ids.py): the same counts as by name, named back
to the right values, on the real Reuters index and on values no one would pick as test data."""

from __future__ import annotations

import json
from pathlib import Path

import tantivy
from conftest import BuiltIndex, build_index, engine_for, facet_counts, load_seed

from search_service.index.document import value_id
from search_service.index.schema import value_ids_field
from search_service.search.engine import SearchRequest
from search_service.search.facet_ids import FacetIds


def test_counting_ids_gives_every_values_count_by_name(reuters_index: BuiltIndex) -> None:
    index = engine_for(reuters_index.index_dir, reuters_index.config).reader.current().index
    searcher = index.searcher()
    ids = FacetIds(index.schema)
    for field in ("topics", "entities"):
        by_name = facet_counts(searcher, field)
        found = searcher.aggregate(tantivy.Query.all_query(), {field: FacetIds.agg(field, len(by_name) + 10)})
        named = ids.named(searcher, field, found[field])
        assert {b["key"]: b["doc_count"] for b in named["buckets"]} == by_name, field
        assert [b["doc_count"] for b in named["buckets"]] == sorted(by_name.values(), reverse=True)


def test_ids_are_named_back_to_their_values_whatever_their_characters(tmp_path: Path) -> None:
    odd = ["Zürich", "İstanbul", "C++", "AT&T", "東京", "a b", "x" * 190]
    records = []
    for i, entity in enumerate(odd):
        record = load_seed() | {"slug": f"odd-{i}", "entities": [entity, "Shared"], "topics": [f"t{i % 2}"]}
        records.append(record)
    path = tmp_path / "odd.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    built = build_index(tmp_path / "index", [path])
    engine = engine_for(built.index_dir, built.config)
    index = engine.reader.current().index
    searcher = index.searcher()
    ids = FacetIds(index.schema)
    for entity in [*odd, "Shared"]:
        assert ids.name(searcher, "entities", value_id(entity)) == entity
    assert ids.name(searcher, "entities", value_id("nobody")) is None
    found = engine.search(SearchRequest(q="", facets=("entities", "topics"), facet_size=100))["facets"]
    assert found["entities"][0] == {"value": "Shared", "count": len(odd)}
    assert sorted(v["value"] for v in found["entities"][1:]) == sorted(odd)
    assert found["topics"] == [{"value": "t0", "count": 4}, {"value": "t1", "count": 3}]


def test_every_facet_has_an_id_column_and_other_keywords_do_not(reuters_index: BuiltIndex) -> None:
    schema = engine_for(reuters_index.index_dir, reuters_index.config).reader.current().index.schema
    has_ids = {}
    for field in reuters_index.config.fields.values():
        if field.kind == "keyword":
            try:
                tantivy.Query.term_query(schema, value_ids_field(field.name), 1)
                has_ids[field.name] = True
            except ValueError:
                has_ids[field.name] = False
    assert has_ids == {f.name: f.facet for f in reuters_index.config.fields.values() if f.kind == "keyword"}
    assert has_ids["entities"] and not has_ids["lang"]
