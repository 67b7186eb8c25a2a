"""A generation is warmed before it serves, and requests never wait for a switch in progress."""

from __future__ import annotations

from pathlib import Path

from conftest import SAMPLE, build_index

from search_service.index.reader import IndexReader


def test_a_generation_is_warmed_before_it_is_served_and_again_after_a_switch(tmp_path: Path) -> None:
    built = build_index(tmp_path / "index", [SAMPLE])
    reader = IndexReader(built.store, built.config, interval=0.0, warm=True)
    first = reader.current()
    assert reader.warmed["generation"] == first.generation.name
    assert reader.warmed["documents"] == first.index.searcher().num_docs > 0
    assert reader.warmed["words"] > 0 and reader.warmed["ms"] >= 0
    build_index(tmp_path / "index", [SAMPLE])  # a full rebuild: a new generation
    second = reader.current()
    assert second.generation.name != first.generation.name
    assert reader.warmed["generation"] == second.generation.name


def test_requests_serve_the_open_generation_while_another_thread_switches(tmp_path: Path) -> None:
    built = build_index(tmp_path / "index", [SAMPLE])
    reader = IndexReader(built.store, built.config, interval=0.0, warm=True)
    first = reader.current()
    build_index(tmp_path / "index", [SAMPLE])
    with reader._lock:  # as while the server's refresher thread opens and warms the new generation
        assert reader.current().generation.name == first.generation.name
    assert reader.current().generation.name != first.generation.name


def test_readers_warm_only_when_asked(tmp_path: Path) -> None:
    built = build_index(tmp_path / "index", [SAMPLE])
    reader = IndexReader(built.store, built.config)
    reader.current()
    assert reader.warmed == {}
