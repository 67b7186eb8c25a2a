"""A running API picks up a full rebuild or an incremental upsert without a restart."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REUTERS, SAMPLE, BuiltIndex, api_client, build_index, iter_jsonl, read_jsonl, write_jsonl

from search_service.index.indexer import Indexer
from search_service.index.store import IndexStore

RELOAD_INTERVAL_S = 0.05
DEADLINE_S = 3.0


def wait_for(check: Callable[[], Any], deadline: float = DEADLINE_S) -> Any:
    """Poll until `check()` is truthy; return its last value either way."""
    stop = time.monotonic() + deadline
    value = check()
    while not value and time.monotonic() < stop:
        time.sleep(0.02)
        value = check()
    return value


def total(client: Any, **params: Any) -> int:
    response = client.get("/search", params={"facets": "", **params})
    assert response.status_code == 200, response.text
    return response.json()["total"]


@pytest.fixture
def sample(tmp_path: Path) -> BuiltIndex:
    return build_index(tmp_path / "index", [SAMPLE])


@pytest.fixture
def live_client(sample: BuiltIndex) -> Iterator[Any]:
    with api_client(sample.index_dir, reload_interval_s=RELOAD_INTERVAL_S) as client:
        yield client


def reuters_head(count: int) -> list[dict[str, Any]]:
    out = []
    for record in iter_jsonl(REUTERS):
        out.append(record)
        if len(out) == count:
            return out
    raise AssertionError("corpus too short")


def test_full_rebuild_becomes_visible_without_restart(live_client: Any, sample: BuiltIndex, tmp_path: Path) -> None:
    sample_records = read_jsonl(SAMPLE)
    assert total(live_client) == len(sample_records)
    before = live_client.get("/ready").json()
    extra = reuters_head(5)
    corpus = write_jsonl(tmp_path / "next.jsonl", [*sample_records[:30], *extra])

    report = Indexer(IndexStore(sample.index_dir), sample.config).rebuild([str(corpus)])
    assert report.documents == 35

    assert wait_for(lambda: total(live_client) == 35), total(live_client)
    assert total(live_client, q='"bahia cocoa review"') == 1
    assert total(live_client, q=f'title:"{sample_records[35]["title"]}"', typos="false") == 0
    after = live_client.get("/ready").json()
    assert after["documents"] == 35
    assert after["generation"] != before["generation"]


def test_incremental_upsert_becomes_visible_without_restart(
    live_client: Any, sample: BuiltIndex, tmp_path: Path
) -> None:
    records = read_jsonl(SAMPLE)
    changed = dict(records[0], title="Zanzibarquux pipeline deal signed")
    assert total(live_client, q="zanzibarquux") == 0
    corpus = write_jsonl(tmp_path / "upsert.jsonl", [changed])

    report = Indexer(IndexStore(sample.index_dir), sample.config).upsert([str(corpus)])
    assert (report.updated, report.new) == (1, 0)

    assert wait_for(lambda: total(live_client, q="zanzibarquux") == 1)
    hits = live_client.get("/search", params={"q": "zanzibarquux"}).json()["hits"]
    assert [hit["slug"] for hit in hits] == [changed["slug"]]
    assert hits[0]["highlights"]["title"] == "<mark>Zanzibarquux</mark> pipeline deal signed"
    assert live_client.get(f"/articles/{changed['slug']}").json()["title"] == changed["title"]
    assert total(live_client) == len(records)  # replaced, not added


def test_incremental_new_article_and_delete_become_visible(
    live_client: Any, sample: BuiltIndex, tmp_path: Path
) -> None:
    records = read_jsonl(SAMPLE)
    indexer = Indexer(IndexStore(sample.index_dir), sample.config)
    indexer.upsert([str(write_jsonl(tmp_path / "new.jsonl", reuters_head(1)))])
    assert wait_for(lambda: total(live_client) == len(records) + 1)
    assert live_client.get("/articles/reuters-1-bahia-cocoa-review").status_code == 200
    assert wait_for(
        lambda: any(
            v["value"] == "cocoa" for v in live_client.get("/facets/topics", params={"prefix": "coc"}).json()["values"]
        )
    )

    indexer.delete(["reuters-1-bahia-cocoa-review"])
    assert wait_for(lambda: total(live_client) == len(records))
    assert live_client.get("/articles/reuters-1-bahia-cocoa-review").status_code == 404
