"""Writes journaled while the writer lock was busy, in-process: replayed by rebuilds before they
switch, by the next writer otherwise, never half and never harmfully twice; and the staleness
rule shared by the HTTP API and `reindex --incremental` (--force)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE, BuiltIndex, load_seed, read_jsonl, read_pointer, stored_by_slug, write_jsonl
from typer.testing import CliRunner

from search_service.cli import app
from search_service.errors import IndexLockedError, IndexWriteError
from search_service.index.indexer import Indexer
from search_service.index.journal import UNREADABLE_DIR, Journal
from search_service.index.report import Hooks, IndexerOptions
from search_service.ingest.sources import Item


def seed(slug: str, **changes: Any) -> dict[str, Any]:
    return load_seed() | {"slug": slug} | changes


def state(built: BuiltIndex) -> dict[str, dict[str, Any]]:
    return stored_by_slug(built.open(), built.config)


def test_an_upsert_waits_for_the_lock_no_longer_than_told(sample_index: BuiltIndex):
    options = IndexerOptions(lock_wait_s=0.3)
    with sample_index.store.writer_lock():
        indexer = Indexer(sample_index.store, sample_index.config, options)
        with pytest.raises(IndexLockedError):
            indexer.upsert_records([Item("<request>", 1, seed("locked-out"))])
    assert "locked-out" not in state(sample_index)


def test_a_rebuild_applies_the_journal_to_its_new_generation_before_the_switch(sample_index: BuiltIndex):
    journal = Journal(sample_index.index_dir)
    first = read_jsonl(SAMPLE)[0]
    journal.append("upsert", [seed("journaled-new"), first | {"title": "Journaled correction"}])
    journal.append("delete", [read_jsonl(SAMPLE)[1]["slug"], "never-existed"])
    applied = []
    hooks = Hooks(on_journal=lambda entry, counts: applied.append((entry.op, counts.indexed, counts.deleted)))

    report = Indexer(sample_index.store, sample_index.config, hooks=hooks).rebuild([str(SAMPLE)])

    docs = state(sample_index)
    assert report.journal == 2
    assert applied == [("upsert", 2, 0), ("delete", 0, 1)]
    assert docs[first["slug"]]["title"] == "Journaled correction"
    assert "journaled-new" in docs and read_jsonl(SAMPLE)[1]["slug"] not in docs
    assert report.documents == len(docs) == 40
    assert journal.names() == []


def test_a_rebuild_that_fails_before_the_switch_leaves_the_journal_to_the_next_writer(
    sample_index: BuiltIndex, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    journal = Journal(sample_index.index_dir)
    journal.append("upsert", [seed("survives-a-failed-rebuild")])
    live = read_pointer(sample_index.index_dir)["generation"]

    def disk_full(generation: Any) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(sample_index.store.__class__, "publish", lambda self, generation: disk_full(generation))
        with pytest.raises(IndexWriteError):
            Indexer(sample_index.store, sample_index.config).rebuild([str(SAMPLE)])

    assert read_pointer(sample_index.index_dir)["generation"] == live
    assert len(journal.names()) == 1
    assert "survives-a-failed-rebuild" not in state(sample_index)
    report = Indexer(sample_index.store, sample_index.config).apply_journal()
    assert report is not None and report.journal == 1
    assert "survives-a-failed-rebuild" in state(sample_index)
    assert journal.names() == []
    assert Indexer(sample_index.store, sample_index.config).apply_journal() is None


def test_replaying_entries_already_applied_changes_nothing(sample_index: BuiltIndex):
    # A writer killed between its commit and removing the entries leaves them for the next writer,
    # which applies them again before anything newer: the result must be the same.
    sample = read_jsonl(SAMPLE)
    entries = [
        ("upsert", [seed("replayed", title="First", updated_at="2026-05-01T00:00:00+00:00")], False),
        ("upsert", [seed("replayed", title="Older", updated_at="2026-04-01T00:00:00+00:00")], False),
        ("delete", [sample[0]["slug"]], False),
        ("upsert", [sample[0] | {"title": "Back again"}], False),
        ("upsert", [sample[1] | {"title": "Forced older", "updated_at": "1990-01-01T00:00:00+00:00"}], True),
        ("delete", ["replayed"], False),
        ("upsert", [seed("replayed", title="Last", updated_at="2026-03-01T00:00:00+00:00")], False),
    ]
    journal = Journal(sample_index.index_dir)
    indexer = Indexer(sample_index.store, sample_index.config)
    for op, values, force in entries:
        journal.append(op, values, force)
    indexer.apply_journal()
    once = state(sample_index)
    for op, values, force in entries:
        journal.append(op, values, force)
    indexer.apply_journal()

    assert state(sample_index) == once
    assert once["replayed"]["title"] == "Last"
    assert once[sample[0]["slug"]]["title"] == "Back again"
    assert once[sample[1]["slug"]]["title"] == "Forced older"


def test_the_next_write_applies_the_journal_first_in_its_own_commit(sample_index: BuiltIndex):
    journal = Journal(sample_index.index_dir)
    journal.append("upsert", [seed("ordered", title="Queued", updated_at="2026-05-01T00:00:00+00:00")])
    newer = seed("ordered", title="Direct", updated_at="2026-05-02T00:00:00+00:00")
    report = Indexer(sample_index.store, sample_index.config).upsert_records([Item("<request>", 1, newer)])
    assert (report.journal, report.updated, report.new) == (1, 1, 0)
    assert state(sample_index)["ordered"]["title"] == "Direct"


def test_an_unreadable_entry_is_set_aside_and_the_rest_applied(sample_index: BuiltIndex):
    journal = Journal(sample_index.index_dir)
    journal.append("upsert", [seed("readable-entry")])
    (journal.dir / "00000000000000000001-1-000000.json").write_bytes(b'{"op": "upsert", "values": [')
    report = Indexer(sample_index.store, sample_index.config).apply_journal()
    assert report is not None and report.journal == 1
    assert "readable-entry" in state(sample_index)
    assert journal.names() == []
    assert [p.name for p in (journal.dir / UNREADABLE_DIR).iterdir()] == ["00000000000000000001-1-000000.json"]


# == staleness in the CLI =======================================================================


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_incremental_reindex_skips_older_and_unchanged_articles_and_force_writes_them(
    sample_index: BuiltIndex, tmp_path: Path
):
    records = read_jsonl(SAMPLE)
    older = records[0] | {"title": "An older version", "updated_at": "2000-01-01T00:00:00+00:00"}
    newer = records[1] | {"title": "A newer version", "updated_at": "2030-01-01T00:00:00+00:00"}
    path = write_jsonl(tmp_path / "changes.jsonl", [older, newer, records[2]])

    plain = invoke("reindex", "--incremental", "--json", "--index-dir", sample_index.index_dir, path)
    summary = json.loads(plain.stdout)
    docs = state(sample_index)
    forced = invoke("reindex", "--incremental", "--force", "--json", "--index-dir", sample_index.index_dir, path)
    forced_summary = json.loads(forced.stdout)
    human = invoke("reindex", "--incremental", "--index-dir", sample_index.index_dir, path)
    rebuild_force = invoke("reindex", "--force", "--index-dir", sample_index.index_dir, path)

    assert plain.exit_code == 0, plain.output
    assert (summary["indexed"], summary["updated"], summary["stale"], summary["unchanged"]) == (1, 1, 1, 1)
    assert docs[records[0]["slug"]]["title"] == records[0]["title"]
    assert docs[records[1]["slug"]]["title"] == "A newer version"
    assert (forced_summary["updated"], forced_summary["stale"], forced_summary["unchanged"]) == (3, 0, 0)
    assert state(sample_index)[records[0]["slug"]]["title"] == "An older version"
    assert "stale 0, unchanged 3" in human.stdout
    assert rebuild_force.exit_code == 2
    assert "--force applies to --incremental" in rebuild_force.output
