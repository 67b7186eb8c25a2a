"""Import into a real Tantivy index: corpus counts, bad.jsonl verdicts, upsert/delete, atomic
switches, crash and lock safety, config migration and the `search-service` CLI."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import tantivy
from conftest import (
    BAD,
    BAD_EXPECTED,
    CLI,
    REUTERS,
    REUTERS_DOCUMENTS,
    SAMPLE,
    SHIPPED_CONFIG,
    BuiltIndex,
    build_index,
    cli_env,
    doc_count,
    facet_counts,
    generation_names,
    iter_jsonl,
    live_slugs,
    oracle_counts,
    read_jsonl,
    read_pointer,
    stored_by_slug,
    term_count,
    write_jsonl,
)
from typer.testing import CliRunner, Result

from search_service.cli import app
from search_service.config import load_config
from search_service.errors import ConfigError, IndexLockedError, TooManyRejectsError
from search_service.index import carry as indexer_module
from search_service.index.indexer import Indexer
from search_service.index.ledger import SlugLedger
from search_service.index.reader import IndexReader
from search_service.index.report import Hooks, IndexerOptions
from search_service.index.store import IndexStore

SAMPLE_DOCUMENTS = len(read_jsonl(SAMPLE))


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


# == Reuters-21578: the whole corpus ============================================================


def test_reuters_rebuild_indexes_every_article_once(reuters_index: BuiltIndex):
    report = reuters_index.report
    assert (report.read, report.indexed, report.rejected, report.skipped) == (
        REUTERS_DOCUMENTS,
        REUTERS_DOCUMENTS,
        0,
        0,
    )
    assert sum(1 for _ in iter_jsonl(REUTERS)) == REUTERS_DOCUMENTS
    searcher = reuters_index.searcher()
    assert searcher.num_docs == report.documents == REUTERS_DOCUMENTS
    slugs = searcher.terms_with_prefix("slug", "")
    assert len(slugs) == REUTERS_DOCUMENTS
    assert {count for _, count in slugs} == {1}


def test_reuters_document_count_per_topic_equals_the_jsonl(reuters_index: BuiltIndex):
    expected = oracle_counts(REUTERS, "topics")
    assert len(expected) == 119
    assert facet_counts(reuters_index.searcher(), "topics") == dict(expected)


def test_reuters_document_count_per_entity_equals_the_jsonl(reuters_index: BuiltIndex):
    expected = oracle_counts(REUTERS, "entities")
    assert len(expected) == 325
    assert facet_counts(reuters_index.searcher(), "entities") == dict(expected)


def test_reuters_topic_term_queries_count_like_the_aggregation(reuters_index: BuiltIndex):
    index = reuters_index.open()
    expected = oracle_counts(REUTERS, "topics")
    for topic in ("earn", "acq", "money-fx", "crude", "grain"):
        assert term_count(index, "topics", topic) == expected[topic]
    assert term_count(index, "entities", "USA") == 12_481


# == bad.jsonl: the verdict table ===============================================================

VERDICT_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*\**([A-Z+]+)\**\s*\|")
TOTALS = re.compile(r"Totals: ACCEPT (\d+), ACCEPT\+NORMALIZE (\d+), REJECT (\d+), SKIP (\d+)\.")


def expected_verdicts() -> dict[int, str]:
    """Line -> verdict, parsed from the markdown table of bad.expected.md."""
    text = BAD_EXPECTED.read_text(encoding="utf-8")
    verdicts = {}
    for row in text.splitlines():
        match = VERDICT_ROW.match(row)
        if match:
            verdicts[int(match.group(1))] = match.group(2)
    return verdicts


def lines_with(*verdicts: str) -> set[int]:
    return {line for line, verdict in expected_verdicts().items() if verdict in verdicts}


def bad_raw_records() -> dict[int, dict[str, Any]]:
    """The lines of bad.jsonl that are valid JSON objects, decoded with the stdlib."""
    records = {}
    for number, raw in enumerate(BAD.read_bytes().split(b"\n"), start=1):
        try:
            value = json.loads(raw.decode("utf-8-sig").rstrip("\r"))
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(value, dict):
            records[number] = value
    return records


def docs_by_line(built: BuiltIndex) -> dict[int, dict[str, Any]]:
    """Stored documents of the bad.jsonl index by their source line (slugs are `bad-NN-...`)."""
    docs = stored_by_slug(built.open(), built.config)
    return {int(slug.split("-")[1]): doc for slug, doc in docs.items()}


def test_verdict_table_is_complete_and_matches_its_totals():
    verdicts = expected_verdicts()
    assert sorted(verdicts) == list(range(1, 51))
    totals = TOTALS.search(BAD_EXPECTED.read_text(encoding="utf-8"))
    assert totals is not None
    accept, normalize, reject, skip = map(int, totals.groups())
    assert len(lines_with("ACCEPT")) == accept == 12
    assert len(lines_with("ACCEPT+NORMALIZE")) == normalize == 9
    assert len(lines_with("REJECT")) == reject == 28
    assert len(lines_with("SKIP")) == skip == 1


def test_bad_jsonl_totals_hold(bad_index: BuiltIndex):
    report = bad_index.report
    assert report.read == 50
    assert report.indexed == len(lines_with("ACCEPT", "ACCEPT+NORMALIZE")) == 21
    assert report.rejected == len(lines_with("REJECT")) == 28
    assert report.skipped == len(lines_with("SKIP")) == 1
    assert bad_index.searcher().num_docs == 21


def test_bad_jsonl_every_rejected_line_is_reported_at_its_line(bad_index: BuiltIndex):
    lines = [reject.line for reject in bad_index.rejects]
    assert len(lines) == len(set(lines)), "a line was rejected twice"
    assert set(lines) == lines_with("REJECT")
    assert {reject.source for reject in bad_index.rejects} == {str(BAD)}
    assert all(reject.reason for reject in bad_index.rejects)


def test_bad_jsonl_exactly_the_accepted_lines_are_indexed(bad_index: BuiltIndex):
    assert set(docs_by_line(bad_index)) == lines_with("ACCEPT", "ACCEPT+NORMALIZE")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (3, ["invalid JSON"]),
        (6, ["record must be a JSON object"]),
        (7, ["invalid JSON"]),
        (8, ["missing required keys: slug"]),
        (12, ["topics", "list"]),
        (18, ["ISO 8601 with offset"]),
        (19, ["published_at", "ISO 8601"]),
        (26, ["body_md", "bytes", "limit"]),
        (28, ["invalid JSON", "control character"]),
        (29, ["invalid UTF-8"]),
        (30, ["invalid Unicode"]),
        (35, ["duplicate slug in batch, first seen on line 2"]),
        (36, ["slug"]),
        (40, ["too many entities (5000 > limit 500)"]),
        (44, ["lang"]),
        (45, ["url", "javascript:"]),
        (47, ["alternates"]),
        (50, ["summary", "lang", "alternates"]),
    ],
)
def test_bad_jsonl_reject_reason_names_the_problem(bad_index: BuiltIndex, line: int, words: list[str]):
    reason = next(reject.reason for reject in bad_index.rejects if reject.line == line)
    for word in words:
        assert word in reason


def test_bad_jsonl_blank_line_is_skipped_not_rejected(bad_index: BuiltIndex):
    (skip_line,) = lines_with("SKIP")
    assert skip_line not in {reject.line for reject in bad_index.rejects}


def test_bad_jsonl_naive_date_is_reported_as_a_warning(bad_index: BuiltIndex):
    warned = {(line, message.split()[0]) for _, line, message in bad_index.warnings}
    assert (23, "published_at") in warned
    assert {line for _, line, _ in bad_index.warnings} == {23}
    assert docs_by_line(bad_index)[23]["published_at"] == datetime(1987, 2, 26, 15, 17, 11, tzinfo=UTC)


def test_bad_jsonl_accepted_lines_are_stored_unchanged(bad_index: BuiltIndex):
    raw = bad_raw_records()
    docs = docs_by_line(bad_index)
    for line in lines_with("ACCEPT"):
        record, doc = raw[line], docs[line]
        for key in ("slug", "title", "summary", "body_md", "url", "canonical_source", "lang", "topics", "entities"):
            assert doc[key] == record[key], (line, key)
        assert doc["alternates"] == record["alternates"], line
        assert doc["published_at"] == datetime.fromisoformat(record["published_at"]), line


def test_bad_jsonl_dates_are_stored_in_utc(bad_index: BuiltIndex):
    docs = docs_by_line(bad_index)
    assert docs[20]["published_at"] == datetime(1987, 3, 9, 4, 48, 52, tzinfo=UTC)
    assert docs[21]["published_at"] == datetime(1987, 2, 26, 16, 35, 16, 20000, tzinfo=UTC)
    assert docs[22]["published_at"] == datetime(1987, 2, 26, 3, 10, 44, 600000, tzinfo=UTC)
    assert docs[22]["published_at"].date() == date(1987, 2, 26)
    for line in (20, 21, 22):
        assert docs[line]["published_at"].utcoffset().total_seconds() == 0


def test_bad_jsonl_utc_date_filter_buckets_by_the_utc_day(bad_index: BuiltIndex):
    index = bad_index.open()
    day = tantivy.Query.range_query(
        index.schema,
        "published_at",
        tantivy.FieldType.Date,
        datetime(1987, 2, 26, tzinfo=UTC),
        datetime(1987, 2, 27, tzinfo=UTC),
        include_lower=True,
        include_upper=False,
    )
    result = index.searcher().search(day, limit=50)
    slugs = {index.searcher().doc(address)["slug"][0] for _, address in result.hits}
    assert any(slug.startswith("bad-22-") for slug in slugs)
    assert not any(slug.startswith("bad-20-") for slug in slugs)


def test_bad_jsonl_control_characters_are_stripped_from_the_title(bad_index: BuiltIndex):
    assert docs_by_line(bad_index)[27]["title"] == "STANDARD OIL <SRD> TO FORM FINANCIAL[31m UNIT"


def test_bad_jsonl_crlf_line_is_indexed_without_the_carriage_return(bad_index: BuiltIndex):
    doc = docs_by_line(bad_index)[31]
    assert not any(isinstance(v, str) and v.endswith("\r") for v in doc.values())


def test_bad_jsonl_entities_are_nfc_trimmed_and_without_zero_width_characters(bad_index: BuiltIndex):
    assert docs_by_line(bad_index)[39]["entities"] == ["Standard Oil", "BP North America", "Café"]
    assert facet_counts(bad_index.searcher(), "entities")["Café"] == 1


def test_bad_jsonl_facet_values_are_trimmed_deduplicated_and_counted_once(bad_index: BuiltIndex):
    doc = docs_by_line(bad_index)[41]
    assert doc["topics"] == ["grain", "wheat", "corn"]
    assert doc["entities"] == ["USA"]
    index = bad_index.open()
    slug_query = tantivy.Query.term_query(index.schema, "slug", doc["slug"])
    assert facet_counts(index.searcher(), "topics", slug_query) == {"grain": 1, "wheat": 1, "corn": 1}
    assert facet_counts(index.searcher(), "entities", slug_query) == {"USA": 1}


def test_bad_jsonl_topic_with_a_slash_stays_one_value(bad_index: BuiltIndex):
    assert "economy/new-zealand" in docs_by_line(bad_index)[42]["topics"]
    index = bad_index.open()
    assert term_count(index, "topics", "economy/new-zealand") == 1
    assert term_count(index, "topics", "economy") == 0
    assert term_count(index, "topics", "new-zealand") == 0
    assert facet_counts(index.searcher(), "topics")["economy/new-zealand"] == 1


def test_bad_jsonl_upper_case_lang_is_normalized(bad_index: BuiltIndex):
    assert docs_by_line(bad_index)[43]["lang"] == "en"
    assert term_count(bad_index.open(), "lang", "EN") == 0


def test_bad_jsonl_chinese_title_is_findable_by_a_substring(bad_index: BuiltIndex):
    doc = docs_by_line(bad_index)[37]
    assert doc["title"] == bad_raw_records()[37]["title"]
    index = bad_index.open()
    # CJK text is indexed character by character in the `cjk` field: any substring is a phrase match.
    for fragment in ("可可周报", "干旱缓解", "伊亚"):
        assert fragment in doc["title"]
        result = index.searcher().search(index.parse_query(fragment, ["cjk"]), limit=5)
        slugs = [index.searcher().doc(address)["slug"][0] for _, address in result.hits]
        assert slugs == [doc["slug"]], fragment
    # characters that are in the title, but not next to each other, are no phrase match
    assert index.searcher().search(index.parse_query("巴可", ["cjk"]), limit=5).count == 0


def test_bad_jsonl_html_in_title_is_stored_literally(bad_index: BuiltIndex):
    title = docs_by_line(bad_index)[32]["title"]
    assert title.startswith("<script>alert(1)</script>")
    assert "<SRD>" in title


def test_bad_jsonl_base64_blob_is_not_indexed_as_a_token(bad_index: BuiltIndex):
    assert len(docs_by_line(bad_index)[49]["body_md"]) > 100_000
    searcher = bad_index.searcher()
    longest = max(len(term) for term, _ in searcher.terms_with_prefix("body", ""))
    assert longest < 40


# == rebuild, upsert, delete ====================================================================


def test_rebuilding_the_same_corpus_again_gives_the_same_count(sample_index: BuiltIndex):
    assert sample_index.report.indexed == SAMPLE_DOCUMENTS
    report = Indexer(sample_index.store, sample_index.config).rebuild([str(SAMPLE)])
    assert report.documents == doc_count(sample_index.index_dir) == SAMPLE_DOCUMENTS
    assert (report.new, report.updated, report.deleted) == (0, SAMPLE_DOCUMENTS, 0)
    assert report.generation != sample_index.report.generation


def test_rebuild_with_fewer_articles_reports_the_dropped_ones_as_deleted(sample_index: BuiltIndex, tmp_path: Path):
    fewer = write_jsonl(tmp_path / "fewer.jsonl", read_jsonl(SAMPLE)[:30])
    report = Indexer(sample_index.store, sample_index.config).rebuild([str(fewer)])
    assert (report.indexed, report.deleted, report.documents) == (30, SAMPLE_DOCUMENTS - 30, 30)


def test_rebuild_counts_new_updated_and_deleted_against_the_live_index(
    sample_index: BuiltIndex, tmp_path: Path, seed_record
):
    kept = read_jsonl(SAMPLE)[:30]
    path = write_jsonl(tmp_path / "next.jsonl", [*kept, seed_record])
    report = Indexer(sample_index.store, sample_index.config).rebuild([str(path)])
    assert (report.indexed, report.new, report.updated, report.deleted) == (31, 1, 30, SAMPLE_DOCUMENTS - 30)
    assert report.documents == doc_count(sample_index.index_dir) == 31


def test_rebuild_counts_a_slug_deleted_from_the_live_index_as_new(sample_index: BuiltIndex):
    # The deleted document stays in its segment until a merge: only live documents count as old.
    slug = read_jsonl(SAMPLE)[0]["slug"]
    indexer = Indexer(sample_index.store, sample_index.config)
    indexer.delete([slug])
    report = indexer.rebuild([str(SAMPLE)])
    assert (report.new, report.updated, report.deleted) == (1, SAMPLE_DOCUMENTS - 1, 0)
    # The input's version is the one deleted (not newer): the deletion is carried over (test_rebuild_writes.py).
    assert report.carried == 1 and term_count(sample_index.open(), "slug", slug) == 0
    assert term_count(indexer.rebuild([str(SAMPLE)], exact=True) and sample_index.open(), "slug", slug) == 1


def test_incremental_upsert_replaces_a_changed_title(sample_index: BuiltIndex, tmp_path: Path):
    record = read_jsonl(SAMPLE)[0]
    old_title = record["title"]
    changed = write_jsonl(tmp_path / "changed.jsonl", [record | {"title": "Quokka zyzzyva headline"}])

    report = Indexer(sample_index.store, sample_index.config).upsert([str(changed)])

    assert (report.mode, report.indexed, report.updated, report.new) == ("incremental", 1, 1, 0)
    assert report.generation == sample_index.report.generation  # no new generation
    index = sample_index.open()
    assert index.searcher().num_docs == report.documents == SAMPLE_DOCUMENTS
    assert term_count(index, "slug", record["slug"]) == 1
    found = index.searcher().search(index.parse_query("quokka", ["title"]), limit=5)
    assert [index.searcher().doc(a)["slug"][0] for _, a in found.hits] == [record["slug"]]
    old_phrase = index.parse_query(f'"{old_title}"', ["title"])
    assert index.searcher().search(old_phrase, limit=5).count == 0
    assert stored_by_slug(index, sample_index.config)[record["slug"]]["title"] == "Quokka zyzzyva headline"


def test_incremental_upsert_of_a_new_slug_adds_one(sample_index: BuiltIndex, tmp_path: Path, seed_record):
    added = write_jsonl(tmp_path / "new.jsonl", [seed_record])
    report = Indexer(sample_index.store, sample_index.config).upsert([str(added)])
    assert (report.indexed, report.new, report.updated) == (1, 1, 0)
    index = sample_index.open()
    assert index.searcher().num_docs == SAMPLE_DOCUMENTS + 1
    assert term_count(index, "slug", seed_record["slug"]) == 1


def test_incremental_upsert_reports_rejects_and_keeps_the_good_records(
    sample_index: BuiltIndex, tmp_path: Path, seed_record
):
    rejects = []
    path = write_jsonl(tmp_path / "mixed.jsonl", [seed_record, seed_record | {"slug": "Bad Slug"}])
    report = Indexer(sample_index.store, sample_index.config, hooks=Hooks(on_reject=rejects.append)).upsert([str(path)])
    assert (report.indexed, report.rejected) == (1, 1)
    assert [(r.line, r.slug) for r in rejects] == [(2, "Bad Slug")]
    assert doc_count(sample_index.index_dir) == SAMPLE_DOCUMENTS + 1


def test_delete_removes_articles_and_counts_unknown_slugs_as_skipped(sample_index: BuiltIndex):
    slugs = [r["slug"] for r in read_jsonl(SAMPLE)[:2]]
    report = Indexer(sample_index.store, sample_index.config).delete([*slugs, "no-such-article", slugs[0]])
    assert (report.read, report.deleted, report.skipped) == (3, 2, 1)
    index = sample_index.open()
    assert index.searcher().num_docs == report.documents == SAMPLE_DOCUMENTS - 2
    for slug in slugs:
        assert term_count(index, "slug", slug) == 0
    assert live_slugs(sample_index.index_dir) == {r["slug"] for r in read_jsonl(SAMPLE)[2:]}


def test_cli_delete_removes_an_article(sample_index: BuiltIndex):
    slug = read_jsonl(SAMPLE)[0]["slug"]
    result = invoke("delete", "--index-dir", sample_index.index_dir, "--json", slug, "unknown-slug")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["deleted"], report["skipped"], report["documents"]) == (1, 1, SAMPLE_DOCUMENTS - 1)


# Not strict: when Tantivy happens to merge the segments, the deleted document is purged and the
# miscount does not show.
def test_deleting_an_already_deleted_slug_counts_it_as_skipped(sample_index: BuiltIndex):
    slug = read_jsonl(SAMPLE)[0]["slug"]
    indexer = Indexer(sample_index.store, sample_index.config)
    indexer.delete([slug])
    report = indexer.delete([slug])
    assert (report.deleted, report.skipped) == (0, 1)


# Not strict: when Tantivy happens to merge the segments, the deleted document is purged and the
# miscount does not show.
def test_upserting_a_deleted_slug_again_counts_it_as_new(sample_index: BuiltIndex, tmp_path: Path):
    record = read_jsonl(SAMPLE)[0]
    indexer = Indexer(sample_index.store, sample_index.config)
    indexer.delete([record["slug"]])
    report = indexer.upsert([str(write_jsonl(tmp_path / "again.jsonl", [record]))])
    assert (report.new, report.updated) == (1, 0)


# == slugs seen in one run ======================================================================


def test_duplicate_slug_in_a_later_file_is_rejected_naming_the_file_and_line_it_was_first_read(tmp_path: Path):
    first, second, third = read_jsonl(SAMPLE)[:3]
    a = write_jsonl(tmp_path / "a.jsonl", [first, second])
    b = write_jsonl(tmp_path / "b.jsonl", [third, second | {"title": "Later copy"}, first, third])
    rejects = []
    built = Indexer(IndexStore(tmp_path / "index"), load_config(), hooks=Hooks(on_reject=rejects.append))
    report = built.rebuild([str(a), str(b)])
    assert (report.read, report.indexed, report.rejected) == (6, 3, 3)
    assert [(r.source, r.line, r.slug, r.reason) for r in rejects] == [
        (str(b), 2, second["slug"], f"duplicate slug in batch, first seen on {a} line 2"),
        (str(b), 3, first["slug"], f"duplicate slug in batch, first seen on {a} line 1"),
        (str(b), 4, third["slug"], "duplicate slug in batch, first seen on line 1"),
    ]
    docs = stored_by_slug(IndexStore(tmp_path / "index").current().open(load_config()), load_config())
    assert docs[second["slug"]]["title"] == second["title"]  # the first one read is kept


@pytest.mark.parametrize(
    "hash_slug", [hash, lambda slug: 7, lambda slug: -len(slug)], ids=["builtin", "one-hash", "negative-few"]
)
def test_slug_ledger_is_exact_whatever_slugs_share_a_hash(hash_slug):
    ledger = SlugLedger(hash_slug)
    slugs = [f"article-{n}" for n in range(300)]
    for n, slug in enumerate(slugs):
        assert ledger.add(slug, f"file-{n % 3}.jsonl", n + 1) is None
    assert len(ledger) == 300
    for n, slug in enumerate(slugs):
        assert slug in ledger
        assert ledger.add(slug, "later.jsonl", 1_000) == (f"file-{n % 3}.jsonl", n + 1)
    assert "article-300" not in ledger
    assert "article" not in ledger
    assert len(ledger) == 300
    ledger.clear()
    assert len(ledger) == 0
    assert slugs[0] not in ledger


def test_slug_ledger_keeps_non_ascii_slugs_and_large_line_numbers_apart():
    ledger = SlugLedger(lambda slug: 0)
    assert ledger.add("café", "a", 2**40 + 3) is None
    assert ledger.add("cafe", "a", 1) is None
    assert ledger.add("café", "b", 5) == ("a", 2**40 + 3)


# == atomic switch ==============================================================================


@pytest.fixture
def reuters_part(tmp_path: Path) -> Path:
    """A few thousand Reuters articles: a corpus disjoint from the sample one."""
    return write_jsonl(tmp_path / "reuters-part.jsonl", itertools.islice(iter_jsonl(REUTERS), 3000))


def test_full_rebuild_is_invisible_to_readers_until_it_is_published(sample_index: BuiltIndex, reuters_part: Path):
    store, config = sample_index.store, sample_index.config
    reader = IndexReader(store, config, interval=0)
    opened_before = sample_index.open()
    assert reader.searcher().num_docs == SAMPLE_DOCUMENTS
    seen_during: list[int] = []

    def on_progress(count: int) -> None:
        if count % 200 == 0:
            seen_during.append(reader.searcher().num_docs)

    report = Indexer(store, config, hooks=Hooks(on_progress=on_progress)).rebuild([str(reuters_part)])

    assert len(seen_during) == 15
    assert set(seen_during) == {SAMPLE_DOCUMENTS}
    assert reader.searcher().num_docs == report.documents == 3000
    assert reader.current().generation.name == report.generation
    # an index opened before the switch keeps serving the old corpus: the previous generation stays
    opened_before.reload()
    assert opened_before.searcher().num_docs == SAMPLE_DOCUMENTS
    assert read_pointer(store.root)["previous"] == sample_index.report.generation


def test_reader_during_a_rebuild_sees_the_old_corpus_or_the_new_one_never_a_mix(
    sample_index: BuiltIndex, reuters_part: Path
):
    store, config = sample_index.store, sample_index.config
    old_slug = read_jsonl(SAMPLE)[0]["slug"]
    new_slug = next(iter_jsonl(reuters_part))["slug"]
    old_state, new_state = (SAMPLE_DOCUMENTS, 1, 0), (3000, 0, 1)
    reader = IndexReader(store, config, interval=0)
    failure: list[BaseException] = []

    def rebuild() -> None:
        try:
            Indexer(store, config).rebuild([str(reuters_part)])
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    states = []
    thread = threading.Thread(target=rebuild)
    thread.start()
    while thread.is_alive():
        index = reader.current().index
        searcher = index.searcher()
        states.append((searcher.num_docs, term_count(index, "slug", old_slug), term_count(index, "slug", new_slug)))
        time.sleep(0.002)
    thread.join()
    assert not failure
    index = reader.current().index
    states.append((index.searcher().num_docs, term_count(index, "slug", old_slug), term_count(index, "slug", new_slug)))

    assert set(states) <= {old_state, new_state}
    assert states[0] == old_state and states[-1] == new_state
    first_new = states.index(new_state)
    assert set(states[first_new:]) == {new_state}, "the reader went back to the old corpus"


# == crash and lock safety ======================================================================


def test_killed_rebuild_keeps_the_previous_index_and_the_next_run_needs_no_clean_up(sample_index: BuiltIndex):
    index_dir = sample_index.index_dir
    live = sample_index.report.generation
    process = subprocess.Popen(
        [*CLI, "reindex", "--index-dir", str(index_dir), str(REUTERS)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while not generation_names(index_dir) - {live}:
            assert process.poll() is None, "reindex ended before a new generation appeared"
            assert time.monotonic() < deadline, "no new generation appeared"
            time.sleep(0.005)
        time.sleep(0.2)  # well inside the ~2.5 s the full corpus takes
        assert process.poll() is None, "reindex finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL

    killed = generation_names(index_dir) - {live}
    assert killed, "the half-built generation should still be on disk"
    assert read_pointer(index_dir)["generation"] == live
    assert doc_count(index_dir) == SAMPLE_DOCUMENTS
    assert IndexReader(IndexStore(index_dir), load_config(), interval=0).searcher().num_docs == SAMPLE_DOCUMENTS

    result = invoke("reindex", "--index-dir", index_dir, "--json", BAD)
    assert result.exit_code == 0, result.output
    pointer = read_pointer(index_dir)
    assert pointer["previous"] == live
    assert generation_names(index_dir) == {pointer["generation"], live}
    assert doc_count(index_dir) == json.loads(result.stdout)["documents"] == 21


def test_reindex_with_no_lock_wait_fails_fast_while_another_process_holds_the_writer_lock(sample_index: BuiltIndex):
    index_dir = sample_index.index_dir
    pointer = read_pointer(index_dir)
    generations = generation_names(index_dir)
    with sample_index.store.writer_lock():
        started = time.monotonic()
        process = subprocess.run(
            [*CLI, "reindex", "--lock-wait", "0", "--index-dir", str(index_dir), str(BAD)],
            capture_output=True,
            text=True,
            timeout=60,
            env=cli_env(),
        )
        elapsed = time.monotonic() - started
    assert elapsed < 5
    assert process.returncode == IndexLockedError.exit_code != 0
    assert "another reindex" in process.stderr
    assert f"pid {os.getpid()}" in process.stderr
    assert read_pointer(index_dir) == pointer
    assert generation_names(index_dir) == generations
    assert doc_count(index_dir) == SAMPLE_DOCUMENTS


@pytest.mark.parametrize("command", [["reindex", "--incremental", str(BAD)], ["delete", "some-slug"]])
def test_upsert_and_delete_with_no_lock_wait_refuse_while_the_writer_lock_is_held(
    sample_index: BuiltIndex, command: list[str]
):
    with sample_index.store.writer_lock():
        result = invoke(command[0], "--lock-wait", "0", "--index-dir", sample_index.index_dir, *command[1:])
    assert result.exit_code == IndexLockedError.exit_code
    assert "another reindex" in result.stderr
    assert doc_count(sample_index.index_dir) == SAMPLE_DOCUMENTS


def test_writer_lock_is_released_after_a_run(sample_index: BuiltIndex):
    with sample_index.store.writer_lock():
        pass
    Indexer(sample_index.store, sample_index.config).delete(["unknown"])  # does not raise IndexLockedError


# == config change ==============================================================================


def test_upsert_with_a_changed_analyzer_migrates_everything_into_a_new_generation(
    sample_index: BuiltIndex, tmp_path: Path, seed_record
):
    text = SHIPPED_CONFIG.read_text(encoding="utf-8")
    stemmer = ', "stemmer:english"]'
    assert text.count(stemmer) == 1
    config_path = tmp_path / "schema.toml"
    config_path.write_text(text.replace(stemmer, "]"), encoding="utf-8")
    new_config = load_config(config_path)
    assert new_config.fingerprint != sample_index.config.fingerprint

    store = sample_index.store
    old_generation = store.current_name()
    old_index = sample_index.open()
    old_docs = stored_by_slug(old_index, sample_index.config)
    # "agrees" and "agree" in two sample titles: the shipped analyzer stems both to "agre"
    assert (term_count(old_index, "title", "agre"), term_count(old_index, "title", "agrees")) == (2, 0)

    added = write_jsonl(tmp_path / "new.jsonl", [seed_record])
    report = Indexer(store, new_config).upsert([str(added)])

    assert (report.mode, report.indexed, report.new, report.updated) == ("incremental", 1, 1, 0)
    pointer = read_pointer(store.root)
    assert pointer == {"generation": report.generation, "previous": old_generation}
    assert report.generation != old_generation
    generation = store.current()
    assert generation.fingerprint == new_config.fingerprint
    assert json.loads((generation.path / "build.json").read_text())["config_fingerprint"] == new_config.fingerprint
    assert (generation.path / "index_config.toml").read_text(encoding="utf-8") == config_path.read_text(
        encoding="utf-8"
    )

    index = generation.open(new_config)
    assert index.searcher().num_docs == report.documents == SAMPLE_DOCUMENTS + 1
    new_docs = stored_by_slug(index, new_config)
    assert set(new_docs) == set(old_docs) | {seed_record["slug"]}
    for slug, doc in old_docs.items():
        assert new_docs[slug] == doc, slug
    # re-analyzed with the new analyzer: no stemming any more
    assert term_count(index, "title", "agrees") == term_count(index, "title", "agree") == 1
    assert term_count(index, "title", "agre") == 0
    # a reader running the new config serves it; one running the old config refuses it
    assert IndexReader(store, new_config, interval=0).searcher().num_docs == SAMPLE_DOCUMENTS + 1
    old_reader = IndexReader(store, sample_index.config, interval=0)
    with pytest.raises(Exception, match="another index config"):
        old_reader.searcher()


def test_upsert_with_an_unchanged_config_writes_into_the_live_generation(
    sample_index: BuiltIndex, tmp_path: Path, seed_record
):
    same = tmp_path / "schema.toml"
    same.write_text(SHIPPED_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    added = write_jsonl(tmp_path / "new.jsonl", [seed_record])
    report = Indexer(sample_index.store, load_config(same)).upsert([str(added)])
    assert report.generation == sample_index.report.generation
    assert generation_names(sample_index.index_dir) == {sample_index.report.generation}


def changed_config(tmp_path: Path, old: str, new: str):
    """The shipped config with one edit, written where `load_config` records it."""
    text = SHIPPED_CONFIG.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / "changed-schema.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return load_config(path)


def test_migration_carries_every_live_article_page_by_page_and_applies_the_upserts(
    sample_index: BuiltIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed_record
):
    store, config = sample_index.store, sample_index.config
    records = read_jsonl(SAMPLE)
    indexer = Indexer(store, config)
    # a second segment, a replaced document and a deleted one in the generation to carry over
    indexer.upsert([str(write_jsonl(tmp_path / "same.jsonl", [records[1] | {"title": "Second title"}]))])
    indexer.delete([records[2]["slug"]])
    old_docs = stored_by_slug(sample_index.open(), config)
    assert len(old_docs) == SAMPLE_DOCUMENTS - 1
    monkeypatch.setattr(indexer_module, "CARRY_PAGE", 7)

    new_config = changed_config(tmp_path, ', "stemmer:english"]', "]")
    upserts = write_jsonl(tmp_path / "upserts.jsonl", [records[0] | {"title": "Quokka zyzzyva headline"}, seed_record])
    report = Indexer(store, new_config).upsert([str(upserts)])

    assert (report.mode, report.indexed, report.new, report.updated) == ("incremental", 2, 1, 1)
    index = store.current().open(new_config)
    assert index.searcher().num_docs == report.documents == SAMPLE_DOCUMENTS
    new_docs = stored_by_slug(index, new_config)
    assert set(new_docs) == set(old_docs) | {seed_record["slug"]}
    assert new_docs[records[0]["slug"]]["title"] == "Quokka zyzzyva headline"
    assert new_docs[records[1]["slug"]]["title"] == "Second title"
    for slug, doc in old_docs.items():
        if slug != records[0]["slug"]:
            assert new_docs[slug] == doc, slug
    for slug in new_docs:
        assert term_count(index, "slug", slug) == 1, slug


def test_migration_from_an_index_that_does_not_store_whole_articles_fails_before_reading_input(
    tmp_path: Path, seed_record
):
    unstored = changed_config(tmp_path, 'analyzer = "text"\nstored = true\n# Boosts', 'analyzer = "text"\n# Boosts')
    built = build_index(tmp_path / "index", [SAMPLE], config=unstored)
    pointer = read_pointer(built.index_dir)
    read = []
    upserts = write_jsonl(tmp_path / "new.jsonl", [seed_record])
    indexer = Indexer(built.store, load_config(), hooks=Hooks(on_progress=read.append))
    with pytest.raises(ConfigError, match="does not store title"):
        indexer.upsert([str(upserts)])
    assert read == []
    assert read_pointer(built.index_dir) == pointer
    assert generation_names(built.index_dir) == {pointer["generation"]}


# == CLI ========================================================================================


def test_cli_reindex_json_prints_one_report_object(tmp_path: Path):
    result = invoke("reindex", "--index-dir", tmp_path / "index", "--json", BAD)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert {"read", "indexed", "rejected", "skipped", "seconds"} <= report.keys()
    assert (report["read"], report["indexed"], report["rejected"], report["skipped"]) == (50, 21, 28, 1)
    assert isinstance(report["seconds"], float) and report["seconds"] >= 0
    assert report["documents"] == doc_count(tmp_path / "index") == 21


def test_cli_reindex_without_json_prints_a_summary(tmp_path: Path):
    result = invoke("reindex", "--index-dir", tmp_path / "index", SAMPLE)
    assert result.exit_code == 0, result.output
    assert f"indexed {SAMPLE_DOCUMENTS}" in result.stdout


def test_cli_rejects_file_lists_every_reject_as_json_lines(tmp_path: Path):
    rejects_file = tmp_path / "rejects.jsonl"
    result = invoke("reindex", "--index-dir", tmp_path / "index", "--rejects", rejects_file, BAD)
    assert result.exit_code == 0, result.output
    rejects = read_jsonl(rejects_file)
    assert all(set(reject) == {"source", "line", "slug", "reason"} for reject in rejects)
    assert sorted(reject["line"] for reject in rejects) == sorted(lines_with("REJECT"))
    assert {reject["source"] for reject in rejects} == {str(BAD)}
    by_line = {reject["line"]: reject for reject in rejects}
    assert by_line[3]["slug"] is None
    assert by_line[35]["slug"] == "bad-02-reuters-9-champion-products-ch-approves-stock-split"
    assert by_line[35]["reason"] == "duplicate slug in batch, first seen on line 2"
    # stderr names the first rejects with file and line, then points at the file for the rest
    assert f"rejected {BAD}:3:" in result.stderr
    assert "more rejected records (all in the --rejects file)" in result.stderr


def test_cli_unwritable_rejects_file_is_an_error_message(sample_index: BuiltIndex, tmp_path: Path):
    result = invoke(
        "reindex", "--index-dir", sample_index.index_dir, "--rejects", tmp_path / "no-dir" / "rejects.jsonl", SAMPLE
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stderr.startswith("error:")
    assert doc_count(sample_index.index_dir) == SAMPLE_DOCUMENTS


def test_cli_reindex_of_an_unreadable_path_fails_and_changes_nothing(sample_index: BuiltIndex, tmp_path: Path):
    pointer = read_pointer(sample_index.index_dir)
    result = invoke("reindex", "--index-dir", sample_index.index_dir, SAMPLE, tmp_path / "absent.jsonl")
    assert result.exit_code != 0
    assert "cannot read" in result.stderr and "absent.jsonl" in result.stderr
    assert read_pointer(sample_index.index_dir) == pointer
    assert doc_count(sample_index.index_dir) == SAMPLE_DOCUMENTS


@pytest.mark.parametrize("mode", [[], ["--incremental"]], ids=["rebuild", "incremental"])
def test_cli_max_rejects_exits_non_zero_and_leaves_the_previous_index_unchanged(
    sample_index: BuiltIndex, mode: list[str]
):
    index_dir = sample_index.index_dir
    pointer = read_pointer(index_dir)
    slugs = live_slugs(index_dir)
    result = invoke("reindex", *mode, "--index-dir", index_dir, "--max-rejects", 5, BAD)
    assert result.exit_code == TooManyRejectsError.exit_code != 0
    assert "more than 5 records rejected" in result.stderr
    assert read_pointer(index_dir) == pointer
    assert doc_count(index_dir) == SAMPLE_DOCUMENTS
    assert live_slugs(index_dir) == slugs


def test_max_rejects_option_aborts_the_indexer_after_the_limit(sample_index: BuiltIndex):
    rejects = []
    indexer = Indexer(
        sample_index.store, sample_index.config, IndexerOptions(max_rejects=5), Hooks(on_reject=rejects.append)
    )
    with pytest.raises(TooManyRejectsError):
        indexer.rebuild([str(BAD)])
    assert len(rejects) == 6


def test_cli_stats_json_describes_the_live_index(sample_index: BuiltIndex):
    result = invoke("stats", "--index-dir", sample_index.index_dir, "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert {"documents", "segments", "size_bytes", "config_version", "last_commit"} <= stats.keys()
    assert stats["documents"] == SAMPLE_DOCUMENTS
    assert isinstance(stats["segments"], int) and stats["segments"] >= 1
    assert stats["size_bytes"] > 0
    assert stats["config_version"] == sample_index.config.fingerprint
    last_commit = datetime.fromisoformat(stats["last_commit"])
    assert last_commit.tzinfo is not None
    assert abs((datetime.now(UTC) - last_commit).total_seconds()) < 600
    assert stats["generation"] == sample_index.report.generation


def test_cli_stats_without_an_index_fails(tmp_path: Path):
    result = invoke("stats", "--index-dir", tmp_path / "empty")
    assert result.exit_code != 0
    assert "no index" in result.stderr
