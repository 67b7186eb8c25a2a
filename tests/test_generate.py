"""scripts/generate: synthetic news in the import format, deterministic, skewed like real news, streamed."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import math
import re
import statistics
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from conftest import REPO, REUTERS, SEED, read_jsonl

from search_service.config import load_config
from search_service.ingest.article import ImportContext, parse_article

GENERATE = REPO / "scripts" / "generate"
COUNT = 3000

pytestmark = pytest.mark.skipif(not REUTERS.is_file(), reason=f"{REUTERS} (the vocabulary corpus) not found")


def load_generate() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("generate_script", str(GENERATE))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    return load_generate()


@pytest.fixture(scope="module")
def vocab(generate: ModuleType) -> object:
    return generate.Vocabulary(REUTERS)


@pytest.fixture(scope="module")
def records(generate: ModuleType, vocab: object) -> list[dict]:
    return list(generate.Generator(vocab, 7).articles(COUNT))


def run_cli(*args: str, out: Path | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(GENERATE), *args, "--vocab-corpus", str(REUTERS)]
    if out is not None:
        argv += ["--out", str(out)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def test_deterministic_for_a_seed(generate: ModuleType, vocab: object, records: list[dict]) -> None:
    again = list(generate.Generator(vocab, 7).articles(300))
    assert again == records[:300]
    other = list(generate.Generator(vocab, 8).articles(300))
    assert other != again
    assert len({r["title"] for r in other} & {r["title"] for r in again}) < 10


def test_cli_writes_the_generator_output(generate: ModuleType, vocab: object, tmp_path: Path) -> None:
    out = tmp_path / "a.jsonl"
    done = run_cli("--count", "200", "--seed", "3", out=out)
    assert done.returncode == 0, done.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 200
    assert [json.loads(line) for line in lines] == list(generate.Generator(vocab, 3).articles(200))

    done = run_cli("--count", "5", "--seed", "3")  # to stdout; a shorter run is a prefix of a longer one
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == lines[:5]
    assert "generated 5 articles" in done.stderr

    done = run_cli("--count", "0", "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_bad_arguments_are_refused() -> None:
    assert run_cli("--count", "-1").returncode == 2
    assert run_cli("--count", "3", "--seed", "-4").returncode == 2
    done = subprocess.run(
        [sys.executable, str(GENERATE), "--count", "1", "--vocab-corpus", "/nonexistent.jsonl"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "not found" in done.stderr


def test_same_keys_as_reuters_and_every_record_is_imported(records: list[dict]) -> None:
    reuters_keys = set(json.loads(REUTERS.open(encoding="utf-8").readline()))
    assert len(reuters_keys) == 12
    limits = load_config().limits
    for record in records[:500]:
        assert set(record) == reuters_keys
        context = ImportContext(limits)
        article = parse_article(json.loads(json.dumps(record)), context)
        assert context.warnings == []
        assert article.slug == record["slug"]


def test_slugs_unique(records: list[dict]) -> None:
    slugs = [r["slug"] for r in records]
    assert len(set(slugs)) == len(slugs)


def test_topics_and_entities_are_skewed(records: list[dict]) -> None:
    for key in ("topics", "entities"):
        counts = Counter(value for r in records for value in r[key])
        top = counts.most_common(1)[0][1]
        assert len(counts) > 100, key
        assert top >= 20 * statistics.median(counts.values()), (key, counts.most_common(3))
    # Reuters names are reused, synthetic ones added: the number of distinct values grows with N.
    topics = Counter(t for r in records for t in r["topics"])
    assert "earn" in topics and any("-" in t and t not in ("money-fx",) for t in topics)
    fewer = {t for r in records[:300] for t in r["topics"]}
    assert len(topics) > 1.5 * len(fewer)
    assert sum(1 for r in records if r["topics"]) > 0.8 * len(records)


def test_dates_in_range_with_weekly_rhythm(generate: ModuleType, records: list[dict]) -> None:
    low = datetime(2015, 1, 1, tzinfo=UTC)
    high = datetime.combine(generate.END, datetime.max.time(), UTC)
    published = [datetime.fromisoformat(r["published_at"]) for r in records]
    assert all(low <= p <= high for p in published)
    assert len({p.year for p in published}) >= 10
    for record, when in zip(records, published, strict=True):
        assert datetime.fromisoformat(record["updated_at"]) >= when
    weekdays = Counter(p.weekday() for p in published)
    assert weekdays[6] < 0.7 * weekdays[2]  # fewer on Sundays than on Wednesdays
    hours = Counter(p.hour for p in published)
    assert hours[10] > 3 * hours[2]  # a daily rhythm


def test_realistic_lengths_and_language(records: list[dict]) -> None:
    titles = [len(r["title"].split()) for r in records]
    assert min(titles) >= 5 and max(titles) <= 12
    bodies = [len(r["body_md"]) for r in records]
    assert 400 <= statistics.median(bodies) <= 750  # Reuters: 554
    assert max(bodies) > 5000  # a long tail
    langs = Counter(r["lang"] for r in records)
    assert langs["en"] > 0.9 * len(records) and len(langs) > 1
    for record in records:  # the first sentence of the body, like Reuters' summaries
        summary = record["summary"].removesuffix("…")
        assert summary in record["body_md"], record["slug"]


def test_vocabulary_grows_with_n(records: list[dict]) -> None:
    def words(rs: list[dict]) -> set[str]:
        return {w for r in rs for w in r["body_md"].lower().split()}

    assert len(words(records)) > 1.3 * len(words(records[: COUNT // 3]))


def test_memory_stays_constant(tmp_path: Path) -> None:
    """Peak RSS of a run does not grow with --count: records are streamed, never collected."""

    def peak_mb(count: int) -> float:
        out = tmp_path / f"{count}.jsonl"
        done = run_cli("--count", str(count), out=out)  # reports its own VmHWM, not wait4's (seeded by ours)
        assert done.returncode == 0, done.stderr
        assert len(read_jsonl(out)) == count
        match = re.search(r"peak RSS (\d+) MB", done.stderr)
        if match is None:
            pytest.skip("no /proc/self/status here")
        return float(match.group(1))

    small, large = peak_mb(500), peak_mb(15_000)
    assert large < 200
    assert large - small < 20  # 30x the articles, at most 20 MB more


# -- --shape seed: the publisher's long markdown tech news ---------------------------------------

SEED_COUNT = 1500


@pytest.fixture(scope="module")
def seed_records(generate: ModuleType, vocab: object) -> list[dict]:
    return list(generate.SeedGenerator(vocab, 7).articles(SEED_COUNT))


def test_seed_shape_is_deterministic_and_a_prefix_of_longer_runs(
    generate: ModuleType, vocab: object, seed_records: list[dict]
) -> None:
    assert list(generate.SeedGenerator(vocab, 7).articles(200)) == seed_records[:200]
    other = list(generate.SeedGenerator(vocab, 8).articles(200))
    assert [r["body_md"] for r in other] != [r["body_md"] for r in seed_records[:200]]
    assert len({r["title"] for r in other} & {r["title"] for r in seed_records[:200]}) < 10


def test_seed_shape_body_lengths_are_log_normal_around_the_seed(seed_records: list[dict]) -> None:
    lengths = [len(r["body_md"]) for r in seed_records]
    median = statistics.median(lengths)
    assert 5000 <= median <= 6000  # the seed record's body: 5,386 characters
    logs = [math.log(n) for n in lengths]
    # Log-normal: the log lengths are symmetric around the log of the median, with the fitted spread.
    assert abs(statistics.fmean(logs) - math.log(median)) < 0.12
    assert 0.35 <= statistics.stdev(logs) <= 0.6
    ordered = sorted(lengths)
    assert ordered[int(0.9 * len(ordered))] > 1.5 * median  # a tail...
    assert max(lengths) > 15_000 and max(lengths) <= 30_000  # ...up to 30 KB
    assert min(lengths) >= 1500


def test_seed_shape_articles_are_structured_like_the_seed(generate: ModuleType, seed_records: list[dict]) -> None:
    for record in seed_records:
        body = record["body_md"]
        assert body.startswith(f"# {record['title']}\n\n")
        headings = re.findall(r"^### (.+)$", body, re.MULTILINE)
        assert len(headings) >= 4 and headings[0] == "What happened" and headings[-1] == "Bottom line"
        assert "What to watch" in headings and re.search(r"^- •\S", body, re.MULTILINE)
        assert body.count("## Scoring Rationale") == 1
        tail = body.split("\n\n## Scoring Rationale\n\n", 1)[1]
        assert tail.endswith("\n\n" + generate.SEED_PROMO)
        bold = set(re.findall(r"\*\*([^*]+)\*\*", body))
        assert bold & set(record["entities"]), record["slug"]  # companies and people in bold
        assert "**" not in record["summary"] and "](" not in record["summary"]
        assert 3 <= len(record["topics"]) <= 6 and len(set(record["topics"])) == len(record["topics"])
        assert 5 <= len(record["entities"]) <= 10 and len(set(record["entities"])) == len(record["entities"])
    linked = sum(1 for r in seed_records if re.search(r"\]\(https://[^)]+\)", r["body_md"]))
    assert linked > 0.75 * len(seed_records)
    assert len({r["slug"] for r in seed_records}) == len(seed_records)


def test_seed_shape_promo_is_the_feeds_own() -> None:
    """Every generated article ends with exactly the promo that closes the publisher's record."""
    if not SEED.is_file():
        pytest.skip(f"{SEED} not found")
    generate = load_generate()
    seed = json.loads(SEED.read_text(encoding="utf-8"))
    assert seed["body_md"].endswith("\n\n" + generate.SEED_PROMO)
    assert "\n\n## Scoring Rationale\n\n" in seed["body_md"]


def test_seed_shape_vocabulary_is_tech_news_and_skewed(seed_records: list[dict]) -> None:
    topics = Counter(t for r in seed_records for t in r["topics"])
    entities = Counter(e for r in seed_records for e in r["entities"])
    assert topics.most_common(1)[0][0] == "artificial-intelligence"
    assert {"Microsoft", "OpenAI", "ByteDance"} <= set(entities)
    for counts in (topics, entities):
        assert len(counts) > 100
        assert counts.most_common(1)[0][1] >= 20 * statistics.median(counts.values())
        assert counts.most_common(1)[0][1] < 0.6 * len(seed_records)  # no value on (nearly) every article
    fewer = {e for r in seed_records[:300] for e in r["entities"]}
    assert len(entities) > 1.5 * len(fewer)  # synthetic companies and people: distinct values grow with N


def test_seed_shape_records_are_imported_without_warnings(seed_records: list[dict]) -> None:
    limits = load_config().limits
    for record in seed_records[:300]:
        context = ImportContext(limits)
        article = parse_article(json.loads(json.dumps(record)), context)
        assert context.warnings == []
        assert article.slug == record["slug"] and article.body_md == record["body_md"]


def test_cli_seed_shape_streams_the_generator_output(generate: ModuleType, vocab: object, tmp_path: Path) -> None:
    def run(count: int) -> tuple[list[str], float]:
        out = tmp_path / f"seed-{count}.jsonl"
        done = run_cli("--shape", "seed", "--count", str(count), "--seed", "5", out=out)
        assert done.returncode == 0, done.stderr
        match = re.search(r"peak RSS (\d+) MB", done.stderr)
        return out.read_text(encoding="utf-8").splitlines(), float(match.group(1)) if match else math.nan

    lines, small = run(100)
    assert [json.loads(line) for line in lines] == list(generate.SeedGenerator(vocab, 5).articles(100))
    more, large = run(4000)  # ~23 MB of JSON Lines: written as made, never held
    assert more[:100] == lines
    if not math.isnan(small):
        assert large - small < 20
    assert run_cli("--shape", "wires", "--count", "1").returncode == 2
