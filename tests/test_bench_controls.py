"""bench_controls' newsroom synonym sets: valid sets of the size the target is stated for, no group a
no-op (no timing)."""

from __future__ import annotations

import sys

import pytest
from conftest import REPO

from search_service.editorial.synonyms import SynonymLimits, SynonymSetIn, validate_synonyms
from search_service.index.schema import build_schema
from search_service.search.controls import EditorialControls
from search_service.search.query import QueryBuilder
from search_service.search.synonyms import compile_synonyms

sys.path.insert(0, str(REPO / "scripts"))
import _bench

bench_controls = _bench.load_script("bench_controls")


@pytest.mark.parametrize("shape", ["reuters", "seed"])
def test_each_shape_has_a_newsroom_set_of_as_many_groups_as_the_heavy_one(shipped_config, tmp_path, shape) -> None:
    builder = QueryBuilder(shipped_config, build_schema(shipped_config))
    tokenize = EditorialControls(tmp_path, builder, shipped_config, 0.25).tokenize
    groups = bench_controls.NEWSROOM[shape]
    stored = validate_synonyms(SynonymSetIn.model_validate({"synonyms": groups}), SynonymLimits(), tokenize)
    assert len(stored) == bench_controls.GROUPS
    assert any("root" in g for g in stored) and any("root" not in g for g in stored)
    # No group is a no-op (words the analyzer makes one): every word a group searches from widens.
    expansions = compile_synonyms(stored, tokenize).expansions
    for group in stored:
        sources = [group["root"]] if "root" in group else group["words"]
        assert all(tuple(tokenize(word)) in expansions for word in sources), group
